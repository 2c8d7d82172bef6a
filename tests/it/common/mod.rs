#![allow(dead_code, unused_imports)]
//! Helpers shared by the integration tests: a sandbox on 127.0.0.1, a client for it, and a
//! real HTTP receiver for the sandbox's callbacks.

pub mod atol;
pub mod browser;
mod device;
mod harness;
pub mod history;
pub mod pki;
pub mod postgres;
pub mod power_cuts;
mod process;
mod receiver;
mod till;

pub use device::{settings, FakeDevice};
pub use harness::*;
pub use process::{in_own_process, store_released, ServeProcess, BIN};
pub use receiver::{CallbackReceiver, Received};
pub use till::{EventStream, TillClient};

use std::time::Duration;

use chasti::gateway::{ClientSettings, Credentials, GatewayClient};
use chasti::sandbox::{Sandbox, SandboxSettings, DEFAULT_PASSWORD, DEFAULT_USER};
use chasti::secret::Secret;

/// A plain HTTP client for tests (reqwest needs chasti's rustls provider even for http://).
pub fn http() -> reqwest::Client {
    let tls = chasti::gateway::tls::client_config(&Default::default()).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

/// A port nothing listens on right now (bound, then let go), for servers that cannot be told
/// port 0 and report the one they took (nginx, Kannel) and for "nothing answers here".
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command to its end: whether it succeeded, and its stdout then stderr.
pub fn run_output(command: &mut std::process::Command) -> (bool, String) {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// POSTs `body` as JSON (with a bearer token when given) and reads the JSON reply.
pub async fn post_json(
    url: impl reqwest::IntoUrl,
    token: Option<&str>,
    body: &serde_json::Value,
) -> serde_json::Value {
    let mut request = http().post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// GETs `url` with a bearer token and reads the JSON reply.
pub async fn get_json(url: impl reqwest::IntoUrl, token: &str) -> serde_json::Value {
    http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn sandbox() -> Sandbox {
    sandbox_with(SandboxSettings::default()).await
}

pub async fn sandbox_with(settings: SandboxSettings) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), settings)
        .await
        .expect("sandbox starts")
}

pub fn settings_for(sandbox: &Sandbox) -> ClientSettings {
    let mut s = ClientSettings::new(
        sandbox.gateway_url(),
        Credentials::Password {
            user_name: DEFAULT_USER.into(),
            password: Secret::new(DEFAULT_PASSWORD),
        },
        "https://shop.example/paid",
    );
    s.request_timeout = Duration::from_secs(5);
    s
}

pub fn client_for(sandbox: &Sandbox) -> GatewayClient {
    GatewayClient::new(settings_for(sandbox)).expect("client builds")
}
