//! The `chasti` binary: the daemon and its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "chasti",
    version,
    about = "Sell through Sber's «Плати частями» (pay in installments) from a shop's till"
)]
struct Cli {
    /// The config file (default: /etc/chasti/chasti.toml if present, else config/chasti.toml).
    #[arg(long, env = "CHASTI_CONFIG", global = true)]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sandbox gateway on its own (a stand-in for the bank, for tests and demos).
    Sandbox(Box<cli::SandboxArgs>),
    /// Everything on loopback: the sandbox bank, the daemon, a virtual printer (slips to files
    /// and PNG) and the till API; `--walkthrough` sells, pays, deposits and reverses, then exits.
    Demo(cli::DemoArgs),
    /// Check the config file and print what it resolves to (secrets hidden).
    CheckConfig,
    /// Print a test payment slip on a configured printer.
    PrintTest {
        /// The printer's name in the config.
        #[arg(long)]
        printer: String,
    },
    /// Write a sample slip's bytes, or draw it as a PNG, without a printer.
    Render {
        /// A configured printer's name, or a profile name (e.g. epson-tm-t20iii).
        #[arg(long)]
        printer: String,
        /// Which slip.
        #[arg(long, value_enum, default_value = "payment")]
        slip: cli::SlipKind,
        /// Write the ESC/POS bytes here.
        #[arg(long, required_unless_present = "png")]
        out: Option<PathBuf>,
        /// Draw the slip as the printer would print it.
        #[arg(long)]
        png: Option<PathBuf>,
    },
    /// Start a sale on the running daemon: shows the link and QR, waits for the outcome.
    Sale {
        /// Roubles: 1499, 1499.50, "1 499,50".
        #[arg(allow_hyphen_values = true)]
        amount: String,
        /// Two-stage: hold, then deposit.
        #[arg(long)]
        preauth: bool,
        #[arg(long)]
        till: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// List orders (today's by default).
    Orders {
        #[arg(long)]
        today: bool,
        /// YYYY-MM-DD (Moscow day).
        #[arg(long, conflicts_with = "today")]
        day: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// Show one order and its history.
    Status {
        id: String,
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// Reverse an order (manager).
    Reverse {
        id: String,
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// Refund an order, all or AMOUNT roubles (manager).
    Refund {
        id: String,
        #[arg(allow_hyphen_values = true)]
        amount: Option<String>,
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// Check the set-up: config, certificates, gateway and credentials, devices, callback, clock.
    Doctor,
    /// Run the daemon: order store, recovery, poller and the bank's callback route
    /// (and the embedded sandbox when gateway.environment = "sandbox").
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chasti: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config_path = cli.config.unwrap_or_else(chasti::config::default_path);
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Sandbox(args) => cli::sandbox(*args).await,
            Command::Demo(args) => cli::demo(args).await,
            Command::CheckConfig => cli::check_config(&config_path),
            Command::Serve => cli::serve(&config_path).await,
            Command::Sale {
                amount,
                preauth,
                till,
                description,
                api,
            } => {
                let client = cli::api_client(&config_path, &api, chasti::config::Role::Cashier)?;
                match client
                    .sale(&amount, preauth, till.as_deref(), description.as_deref())
                    .await?
                {
                    true => Ok(()),
                    false => Err("продажа не оплачена".to_string()),
                }
            }
            Command::Orders {
                today: _,
                day,
                state,
                api,
            } => {
                cli::api_client(&config_path, &api, chasti::config::Role::Cashier)?
                    .orders(day.as_deref(), state.as_deref())
                    .await
            }
            Command::Status { id, api } => {
                cli::api_client(&config_path, &api, chasti::config::Role::Cashier)?
                    .status(&id)
                    .await
            }
            Command::Reverse { id, api } => {
                cli::api_client(&config_path, &api, chasti::config::Role::Manager)?
                    .reverse(&id)
                    .await
            }
            Command::Refund { id, amount, api } => {
                cli::api_client(&config_path, &api, chasti::config::Role::Manager)?
                    .refund(&id, amount.as_deref())
                    .await
            }
            Command::Doctor => cli::doctor(&config_path).await,
            Command::PrintTest { printer } => cli::print_test(&config_path, &printer).await,
            Command::Render {
                printer,
                slip,
                out,
                png,
            } => cli::render(&config_path, &printer, slip, out, png),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chasti: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHASTI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
