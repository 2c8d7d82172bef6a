//! The `chasti` binary: the daemon, the sandbox, and the command line of a till.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    let args = cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chasti: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chasti: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `CHASTI_LOG=debug`, or per target: `CHASTI_LOG=info,chasti::gateway=debug`.
    let wanted = std::env::var("CHASTI_LOG").unwrap_or_else(|_| "info".into());
    let filter = wanted.parse::<Targets>().unwrap_or_else(|e| {
        eprintln!("chasti: CHASTI_LOG={wanted:?} is not a log filter ({e}); allowed: a level (error, warn, info, debug, trace) or target=level pairs joined by commas; logging at info");
        Targets::new().with_default(tracing::Level::INFO)
    });
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr),
        )
        .with(filter)
        .init();
}
