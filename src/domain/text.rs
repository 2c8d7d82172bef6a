//! Free text that travels to the bank and onto paper: the order's description.

use super::{string_type, Invalid};

/// The bank's limit on a description.
pub const DESCRIPTION_MAX: usize = 99;

/// What the sale is for, shown on the payment page. The bank refuses `%`, `+`, CR and LF; control
/// characters (NUL, ESC: printer commands) and bidirectional overrides (text that reads
/// differently from what it is) are refused here too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Description(String);

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

impl Description {
    pub fn parse(text: &str) -> Result<Description, Invalid> {
        let length = text.chars().count();
        if length > DESCRIPTION_MAX {
            return Err(Invalid::new(
                text,
                format!("at most {DESCRIPTION_MAX} characters (found {length})"),
                format!("{length} символов, допустимо не более {DESCRIPTION_MAX}"),
            ));
        }
        if let Some(c) = text.chars().find(|c| matches!(c, '%' | '+')) {
            return Err(Invalid::new(
                text,
                format!("text without % and + (the bank refuses {c:?})"),
                format!("символ «{c}» не принимается банком (нельзя % и +)"),
            ));
        }
        if let Some(c) = text.chars().find(|c| c.is_control() || is_bidi_control(*c)) {
            return Err(Invalid::new(
                text,
                format!(
                    "text without control or direction characters (found U+{:04X})",
                    c as u32
                ),
                format!(
                    "недопустимый управляющий символ U+{:04X} (перевод строки, ESC, смена направления текста)",
                    c as u32
                ),
            ));
        }
        Ok(Description(text.to_string()))
    }
}

string_type!(
    Description,
    "What the sale is for: at most 99 characters, no %, +, line breaks or control characters.",
    99,
    None
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banks_rules_and_control_characters() {
        assert!(Description::parse("Кофемашина «Утро», 2 шт.").is_ok());
        assert!(Description::parse(&"я".repeat(99)).is_ok());
        let cases = [
            ("я".repeat(100), "100 символов"),
            ("50% off".into(), "«%»"),
            ("a+b".into(), "«+»"),
            ("a\nb".into(), "U+000A"),
            ("a\rb".into(), "U+000D"),
            ("a\u{0}b".into(), "U+0000"),
            ("\u{1b}@".into(), "U+001B"),
            ("evil\u{202E}gpj.exe".into(), "U+202E"),
        ];
        for (text, needle) in cases {
            let e = Description::parse(&text).unwrap_err();
            assert!(e.ru.contains(needle), "{text:?}: {}", e.ru);
        }
    }
}
