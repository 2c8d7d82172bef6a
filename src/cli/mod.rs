//! The command line: one module a group of commands. Each returns a message for the operator
//! on failure (the binary prints it and exits 1).

mod chain;
mod daemon_api;
mod demo;
mod hardware;
mod records;
mod run;
mod russian;
mod setup;
mod till;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chasti",
    version,
    about = "Sell through Sber's «Плати частями» (pay in installments) from a shop's till"
)]
pub struct Cli {
    /// Файл конфигурации (config file): по умолчанию /etc/chasti/chasti.toml, если он есть,
    /// иначе config/chasti.toml.
    #[arg(
        long,
        env = "CHASTI_CONFIG",
        global = true,
        help_heading = russian::HEADING,
        value_name = "ФАЙЛ",
        display_order = 100
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: order store, recovery, poller, the bank's callback route and the till
    /// API (and the embedded sandbox when gateway.environment = "sandbox").
    Serve,
    /// Run the sandbox gateway on its own (a stand-in for the bank, for tests and demos).
    Sandbox(Box<run::SandboxArgs>),
    /// Everything on loopback: the sandbox bank, the daemon, a virtual printer (slips to files
    /// and PNG) and the till API; `--walkthrough` sells, pays, deposits and reverses, then exits.
    Demo(demo::DemoArgs),
    /// Продажа частями: показывает ссылку и QR-код для покупателя и ждёт, чем кончится оплата.
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti sale <СУММА> [параметры]"
    )]
    Sale(till::SaleArgs),
    /// Заказы за сегодня (или за день, или за период) с итогами каждого дня.
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti orders [--today | --day ДД.ММ.ГГГГ | --from ДД.ММ.ГГГГ [--to ДД.ММ.ГГГГ]] [--state СОСТОЯНИЕ]"
    )]
    Orders(till::OrdersArgs),
    /// Один заказ и его история (по номеру с чека или по id).
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti status <ЗАКАЗ>"
    )]
    Status(till::OrderArgs),
    /// Отменить неоплаченную продажу: ссылка на оплату перестанет работать.
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti cancel <ЗАКАЗ>"
    )]
    Cancel(till::OrderArgs),
    /// Напечатать чек с QR-кодом заказа ещё раз.
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti reprint <ЗАКАЗ>"
    )]
    Reprint(till::OrderArgs),
    /// Отправить ссылку на оплату заказа по SMS на мобильный номер покупателя.
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti send-link <ЗАКАЗ> <ТЕЛЕФОН>"
    )]
    SendLink(till::SendLinkArgs),
    /// Списать заблокированную сумму (менеджер; при orders.deposit = "manual").
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti deposit <ЗАКАЗ> [--amount СУММА]"
    )]
    Deposit(till::DepositArgs),
    /// Отменить оплату заказа в день покупки (менеджер).
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti reverse <ЗАКАЗ>"
    )]
    Reverse(till::OrderArgs),
    /// Возврат по заказу: всей оставшейся суммы или СУММЫ в рублях (менеджер).
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti refund <ЗАКАЗ> [СУММА]"
    )]
    Refund(till::RefundArgs),
    /// Сверка итогов: итоги дня по кассам и магазину, сверка каждого заказа дня с банком,
    /// чек на принтере (менеджер).
    #[command(
        help_template = russian::HELP_TEMPLATE,
        next_help_heading = russian::HEADING,
        disable_help_flag = true,
        override_usage = "chasti close-day [--day ДЕНЬ]"
    )]
    CloseDay(till::CloseDayArgs),
    /// Copy every order into a new folder while chasti runs (manager; or straight from the
    /// store when it is stopped). The folder is a store `chasti serve` can open.
    Backup(records::BackupArgs),
    /// Put a backup in place of the store (chasti stopped); the replaced store is kept beside it.
    Restore(records::RestoreArgs),
    /// Every order of a range of days with its history, as CSV (Excel) or JSON lines.
    Export(records::ExportArgs),
    /// Check the config file and print what it resolves to (secrets hidden).
    CheckConfig,
    /// Check the set-up: config, certificates, gateway and credentials, devices, callback, clock.
    Doctor {
        /// Also what a live shop needs: what only warns otherwise fails (unsigned callbacks).
        #[arg(long)]
        go_live: bool,
        /// The secrets file systemd gives the service (default: secrets.env beside the config,
        /// as the packaged unit's EnvironmentFile); the environment's own values win.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// Print a test payment slip on a configured printer.
    PrintTest {
        /// The printer's name in the config.
        #[arg(long)]
        printer: String,
    },
    /// Write a sample slip's bytes, or draw it as a PNG, without a printer.
    Render(hardware::RenderArgs),
    /// The head office's PostgreSQL (`[replicate]`): `--init` creates or migrates chasti's
    /// tables and views there; without it, says what the head office has.
    Replicate(chain::ReplicateArgs),
    /// The head office's side: `chasti hq report --from … [--to …] [--what …]`.
    Hq(chain::HqArgs),
    /// Hash a manager page password for `[[api.people]]` (asked for twice on a terminal, or
    /// one line on standard input); prints the `password_hash = "…"` line.
    HashPassword,
}

/// The command line as typed: a till command's mistakes are told in Russian (clap's own
/// English for the integrator's commands); help and version print and exit as clap does.
pub fn parse() -> Cli {
    let args: Vec<String> = std::env::args().collect();
    match <Cli as clap::Parser>::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && russian::till_command(&args).is_some() => {
            if let Some(name) = russian::till_command(&args) {
                let _ = russian::COMMAND.set(name);
            }
            e.apply::<russian::RussianErrors>().exit()
        }
        Err(e) => e.exit(),
    }
}

pub async fn run(cli: Cli) -> Result<(), String> {
    let config = cli.config.unwrap_or_else(chasti::config::default_path);
    match cli.command {
        Command::Serve => run::serve(&config).await,
        Command::Sandbox(args) => run::sandbox(*args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Sale(args) => till::sale(&config, args).await,
        Command::Orders(args) => till::orders(&config, args).await,
        Command::Status(args) => till::status(&config, args).await,
        Command::Cancel(args) => till::cancel(&config, args).await,
        Command::Reprint(args) => till::reprint(&config, args).await,
        Command::SendLink(args) => till::send_link(&config, args).await,
        Command::Deposit(args) => till::deposit(&config, args).await,
        Command::Reverse(args) => till::reverse(&config, args).await,
        Command::Refund(args) => till::refund(&config, args).await,
        Command::CloseDay(args) => till::close_day(&config, args).await,
        Command::Backup(args) => records::backup(&config, args).await,
        Command::Restore(args) => records::restore(&config, args).await,
        Command::Export(args) => records::export(&config, args).await,
        Command::CheckConfig => setup::check_config(&config),
        Command::Doctor { go_live, env_file } => {
            setup::doctor(&config, go_live, env_file.as_deref()).await
        }
        Command::PrintTest { printer } => hardware::print_test(&config, &printer).await,
        Command::Render(args) => hardware::render(&config, args),
        Command::HashPassword => setup::hash_password(),
        Command::Replicate(args) => chain::replicate(&config, args).await,
        Command::Hq(args) => chain::hq(&config, args).await,
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's definition only when it is built: every subcommand here, so a
    /// clash (two `--help`s) fails a test instead of the user's command.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
