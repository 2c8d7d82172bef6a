//! The cashier's commands speak Russian in their help and their mistakes, as everything else
//! a cashier reads does: clap's help template and headings are set per command, and its
//! errors go through `RussianErrors` (clap's `ErrorFormatter`). The integrator's commands
//! (serve, doctor, …) keep clap's English.

use clap::error::{ContextKind, ContextValue, ErrorFormatter, ErrorKind};

/// The help of a cashier's command: what it does, how to call it, its arguments.
pub const HELP_TEMPLATE: &str =
    "{about-with-newline}\nИспользование: {usage}\n\n{all-args}{after-help}\n";

/// The heading of a command's arguments and options.
pub const HEADING: &str = "Параметры";

/// The commands a cashier (or a manager at the till) types; their errors are in Russian.
pub const TILL_COMMANDS: &[&str] = &[
    "sale",
    "cancel",
    "orders",
    "status",
    "reprint",
    "send-link",
    "deposit",
    "reverse",
    "refund",
];

/// The subcommand `args` (the process's arguments, program name first) runs, when it is one of
/// the till's: the first argument that is not an option or an option's value.
pub fn till_command(args: &[String]) -> Option<&'static str> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "--config" {
            rest.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        return TILL_COMMANDS.iter().copied().find(|c| c == arg);
    }
    None
}

/// clap's errors, said in Russian with what to type instead.
pub struct RussianErrors;

/// The till command being parsed, for the «Подробнее» line of an error clap gives no usage
/// with (`ErrorFormatter` takes nothing but the error).
pub static COMMAND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

fn strings(error: &clap::error::Error<RussianErrors>, kind: ContextKind) -> Vec<String> {
    match error.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(ToString::to_string).collect(),
        Some(ContextValue::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

fn first(error: &clap::error::Error<RussianErrors>, kind: ContextKind) -> String {
    strings(error, kind).into_iter().next().unwrap_or_default()
}

/// The sentence for one error, without the usage line.
fn sentence(error: &clap::error::Error<RussianErrors>) -> String {
    let arg = first(error, ContextKind::InvalidArg);
    let value = first(error, ContextKind::InvalidValue);
    match error.kind() {
        ErrorKind::MissingRequiredArgument => {
            let missing = strings(error, ContextKind::InvalidArg).join(", ");
            format!("не указано: {missing}")
        }
        ErrorKind::UnknownArgument if !arg.starts_with('-') => {
            format!("лишний аргумент «{arg}»")
        }
        ErrorKind::UnknownArgument => {
            let mut text = format!("неизвестный параметр «{arg}»");
            let suggested = first(error, ContextKind::SuggestedArg);
            if !suggested.is_empty() {
                text.push_str(&format!(" (может быть, {suggested}?)"));
            }
            text
        }
        ErrorKind::InvalidValue if value.is_empty() => {
            let name = arg.split(' ').next().unwrap_or_default();
            format!("у параметра {arg} нет значения: укажите его после {name}")
        }
        ErrorKind::InvalidValue => {
            let allowed = strings(error, ContextKind::ValidValue).join(", ");
            if allowed.is_empty() {
                format!("недопустимое значение «{value}» у {arg}")
            } else {
                format!("недопустимое значение «{value}» у {arg}; допустимы: {allowed}")
            }
        }
        ErrorKind::ValueValidation => {
            format!(
                "недопустимое значение «{value}» у {arg}: {}",
                error_source(error)
            )
        }
        ErrorKind::ArgumentConflict => {
            let prior = strings(error, ContextKind::PriorArg).join(", ");
            format!("{arg} нельзя указывать вместе с {prior}")
        }
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            format!("лишнее или недостающее значение у {arg}: «{value}»")
        }
        ErrorKind::NoEquals => format!("у {arg} значение пишется через «=»: {arg}=…"),
        ErrorKind::InvalidUtf8 => "в параметрах есть символы не в UTF-8".into(),
        _ if !arg.is_empty() || !value.is_empty() => {
            let trailing = [arg, value]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            format!("лишний аргумент «{trailing}»")
        }
        _ => "ошибка в параметрах команды".into(),
    }
}

fn error_source(error: &clap::error::Error<RussianErrors>) -> String {
    std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
}

impl ErrorFormatter for RussianErrors {
    fn format_error(error: &clap::error::Error<Self>) -> clap::builder::StyledStr {
        let mut out = clap::builder::StyledStr::new();
        let usage = first(error, ContextKind::Usage);
        let usage = usage.trim().trim_start_matches("Usage:").trim();
        let command = match COMMAND.get() {
            Some(name) => format!("chasti {name}"),
            None => usage
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
        };
        let mut text = format!("ошибка: {}\n", sentence(error));
        if !usage.is_empty() {
            text.push_str(&format!("\nИспользование: {usage}\n"));
        }
        if !command.is_empty() {
            text.push_str(&format!("Подробнее: {command} --help\n"));
        }
        out.push_str(&text);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_till_command_is_found_past_options() {
        assert_eq!(till_command(&args(&["chasti", "sale", "10"])), Some("sale"));
        assert_eq!(
            till_command(&args(&["chasti", "--config", "x.toml", "orders"])),
            Some("orders")
        );
        assert_eq!(till_command(&args(&["chasti", "doctor"])), None);
        assert_eq!(till_command(&args(&["chasti"])), None);
    }
}
