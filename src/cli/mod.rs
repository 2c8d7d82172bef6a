//! The command line: one module a group of commands. Each returns a message for the operator
//! on failure (the binary prints it and exits 1).

mod daemon_api;
mod demo;
mod hardware;
mod records;
mod run;
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
    /// The config file (default: /etc/chasti/chasti.toml if present, else config/chasti.toml).
    #[arg(long, env = "CHASTI_CONFIG", global = true)]
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
    /// Start a sale on the running daemon: shows the link and QR, waits for the outcome.
    Sale(till::SaleArgs),
    /// List orders (today's by default; a day or a range, with each day's totals).
    Orders(till::OrdersArgs),
    /// Show one order and its history (by its number from the slip, or its id).
    Status(till::OrderArgs),
    /// Cancel a sale that is not paid yet: the link stops working.
    Cancel(till::OrderArgs),
    /// Print the order's slip again.
    Reprint(till::OrderArgs),
    /// Send the order's payment link by SMS to the customer's mobile number.
    SendLink(till::SendLinkArgs),
    /// Take a held amount now (manager; for orders.deposit = "manual").
    Deposit(till::OrderArgs),
    /// Reverse an order (manager).
    Reverse(till::OrderArgs),
    /// Refund an order, all or AMOUNT roubles (manager).
    Refund(till::RefundArgs),
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
    },
    /// Print a test payment slip on a configured printer.
    PrintTest {
        /// The printer's name in the config.
        #[arg(long)]
        printer: String,
    },
    /// Write a sample slip's bytes, or draw it as a PNG, without a printer.
    Render(hardware::RenderArgs),
    /// Hash a manager page password for `[[api.people]]` (asked for twice on a terminal, or
    /// one line on standard input); prints the `password_hash = "…"` line.
    HashPassword,
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
        Command::Backup(args) => records::backup(&config, args).await,
        Command::Restore(args) => records::restore(&config, args).await,
        Command::Export(args) => records::export(&config, args).await,
        Command::CheckConfig => setup::check_config(&config),
        Command::Doctor { go_live } => setup::doctor(&config, go_live).await,
        Command::PrintTest { printer } => hardware::print_test(&config, &printer).await,
        Command::Render(args) => hardware::render(&config, args),
        Command::HashPassword => setup::hash_password(),
    }
}
