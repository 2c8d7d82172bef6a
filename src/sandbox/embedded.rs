//! The sandbox embedded beside a daemon whose config says `environment = "sandbox"`: its
//! users, tokens and callbacks taken from that config.

use std::net::SocketAddr;

use url::Url;

use super::{CallbackSettings, Sandbox, SandboxError, SandboxSettings};
use crate::config::Config;
use crate::gateway::Credentials;

/// The sandbox `serve`, `demo` and `doctor` start when the config says `environment =
/// "sandbox"` (the daemon itself does not know it: they hand it the sandbox's address). It
/// accepts the config's own credentials and calling back the daemon's
/// callback route (signed with the callback key) unless the config says otherwise.
pub async fn embedded(config: &Config, callback_addr: SocketAddr) -> Result<Sandbox, SandboxError> {
    let (users, tokens) = match &config.gateway.credentials {
        Credentials::Password {
            user_name,
            password,
        } => (vec![(user_name.clone(), password.clone())], Vec::new()),
        Credentials::Token(token) => (Vec::new(), vec![token.clone()]),
    };
    let own_route = Url::parse(&format!("http://{callback_addr}{}", config.callback.path)).ok();
    let settings = SandboxSettings {
        users,
        tokens,
        callbacks: CallbackSettings {
            url: config.sandbox.callback_url.clone().or(own_route),
            key: config
                .sandbox
                .callback_key
                .clone()
                .or_else(|| config.callback.key.clone()),
            // The ecom gateway calls back with unsigned JSON, whatever the legacy setting says.
            method: match config.gateway.dialect {
                crate::gateway::Dialect::Ecom => crate::config::CallbackMethod::Json,
                crate::gateway::Dialect::Legacy => config.sandbox.callback_method,
            },
            ..CallbackSettings::default()
        },
        tls: None,
    };
    Sandbox::start(config.sandbox.listen, settings).await
}
