//! `chasti serve` (the daemon) and `chasti sandbox` (the stand-in bank on its own).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chasti::config::{CallbackMethod, Config, Environment, ENV_CALLBACK_KEY};
use chasti::daemon::{shutdown_signal, BankAt, Daemon, Parts};
use chasti::sandbox::{CallbackSettings, Sandbox, SandboxSettings, DEFAULT_PASSWORD, DEFAULT_USER};
use chasti::secret::Secret;
use url::Url;

/// The daemon as `serve` and `demo` start it. With `environment = "sandbox"` the sandbox starts
/// first, beside the daemon (calling back the daemon's callback route), and is handed to the
/// daemon as its bank: the daemon itself does not know it is talking to a stand-in.
pub async fn build(config: Config, mut parts: Parts) -> Result<(Daemon, Option<Sandbox>), String> {
    let sandbox = if config.gateway.environment == Environment::Sandbox {
        let listener = match parts.callback_listener.take() {
            Some(listener) => listener,
            None => tokio::net::TcpListener::bind(config.callback.listen)
                .await
                .map_err(|e| {
                    format!(
                        "cannot listen for callbacks on {}: {e}",
                        config.callback.listen
                    )
                })?,
        };
        let callback_addr = listener.local_addr().unwrap_or(config.callback.listen);
        let sandbox = chasti::sandbox::embedded(&config, callback_addr)
            .await
            .map_err(|e| format!("the embedded sandbox: {e}"))?;
        parts.callback_listener = Some(listener);
        // The sandbox may have taken a free port: the daemon goes where it listens.
        parts.bank = Some(BankAt {
            base_url: sandbox.gateway_url(),
            payment_page_template: Some(format!("{}sandbox/pay/{{orderId}}", sandbox.url())),
        });
        Some(sandbox)
    } else {
        None
    };
    let daemon = Daemon::build_with(config, parts)
        .await
        .map_err(|e| e.to_string())?;
    Ok((daemon, sandbox))
}

/// Runs the daemon until SIGTERM or Ctrl-C, then stops it gracefully. An engine that stops on
/// its own is an error: the exit code is then 1 and systemd restarts the service.
pub async fn serve(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let (daemon, sandbox) = build(config, Parts::default()).await?;
    daemon.check_credentials_in_background();
    // Listening for SIGTERM from before the "serving" line on.
    let stop = shutdown_signal();
    let handle = daemon.handle();
    // One line on stdout when everything listens: for scripts and tests that start a daemon
    // on free ports (port 0 in the config) and need to know where.
    let mut ready = format!(
        "chasti serving: api={} callbacks={}",
        handle.api_url(),
        handle.callback_url()
    );
    if let Some(sandbox) = &sandbox {
        ready.push_str(&format!(" sandbox={}", sandbox.url()));
    }
    println!("{ready}");
    daemon.run_until(stop).await.map_err(|e| e.to_string())
}

#[derive(clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8907")]
    listen: SocketAddr,
    /// The merchant login the sandbox accepts.
    #[arg(long, default_value = DEFAULT_USER)]
    user: String,
    /// Its password.
    #[arg(long, env = "CHASTI_SANDBOX_PASSWORD", default_value = DEFAULT_PASSWORD, hide_env_values = true)]
    password: String,
    /// A token the sandbox accepts instead of login and password.
    #[arg(long, env = "CHASTI_SANDBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to send callbacks.
    #[arg(long)]
    callback_url: Option<Url>,
    /// HMAC-SHA256 key to sign callbacks with.
    #[arg(long, env = ENV_CALLBACK_KEY, hide_env_values = true)]
    callback_key: Option<String>,
    /// Send callbacks as POST forms instead of GET queries.
    #[arg(long)]
    callback_post: bool,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub async fn sandbox(args: SandboxArgs) -> Result<(), String> {
    let settings = SandboxSettings {
        users: vec![(args.user, Secret::new(args.password))],
        tokens: args.token.map(Secret::new).into_iter().collect(),
        callbacks: CallbackSettings {
            url: args.callback_url,
            key: args.callback_key.map(Secret::new),
            method: if args.callback_post {
                CallbackMethod::Post
            } else {
                CallbackMethod::Get
            },
            ..CallbackSettings::default()
        },
        tls: args.tls_cert.zip(args.tls_key),
    };
    let sandbox = Sandbox::start(args.listen, settings)
        .await
        .map_err(|e| e.to_string())?;
    println!("sandbox gateway: {}", sandbox.gateway_url());
    println!("ledger:          {}sandbox/api/ledger", sandbox.url());
    chasti::daemon::ctrl_c().await;
    Ok(())
}
