//! What the daemon sets up around the engine, and what it says when it starts: one log line
//! each for the gateway, the credentials, the callbacks and the till API.

use std::net::SocketAddr;

use super::DaemonHandle;
use crate::config::{Config, Environment};
use crate::devices::pole::Display;
use crate::devices::printer::Printer;
use crate::devices::Devices;
use crate::gateway::{ErrorCode, GatewayClient, GatewayError, OrderRef};

/// The first configured printer and display (or the caller's), each on its own thread. A
/// configured device that does not answer now is said at once, in doctor's words (the cable,
/// the path, the group), before its first slip fails; serve starts all the same, as the slip
/// is kept and printed when the printer comes back.
pub fn devices(
    config: &Config,
    printer: Option<Printer>,
    display: Option<Display>,
) -> Option<Devices> {
    let configured = (printer.is_none() && !config.devices.printers.is_empty())
        || (display.is_none() && !config.devices.displays.is_empty());
    if configured {
        // Before the workers open the ports: a serial port is opened exclusively.
        for c in crate::doctor::devices(config) {
            if c.verdict != crate::doctor::Verdict::Ok {
                tracing::warn!("{}: {}", c.name, c.detail);
            }
        }
    }
    let printer = printer.or_else(|| {
        config.devices.printers.first().map(|p| {
            tracing::info!(printer = %p.name, port = %p.port.path.display(), profile = %p.profile.name, "receipt printer");
            Printer::spawn(p.port.clone(), p.profile.clone())
        })
    });
    let display = display.or_else(|| {
        config.devices.displays.first().map(|d| {
            tracing::info!(display = %d.name, port = %d.port.path.display(), profile = %d.profile.name, "customer display");
            Display::spawn(d.port.clone(), d.profile.clone())
        })
    });
    (printer.is_some() || display.is_some())
        .then(|| Devices::new(config.devices.shop_name.clone(), printer, display))
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// One line each: the gateway, the callbacks (and whether they are signed), the till API.
pub fn announce(config: &Config, handle: &DaemonHandle) {
    let environment = match config.gateway.environment {
        Environment::Sandbox => "the embedded sandbox",
        Environment::Test => "the bank's TEST host",
        Environment::Production => "the bank's PRODUCTION host",
    };
    tracing::info!(gateway = %config.gateway.base_url, "gateway: {environment}");
    let signed = match (&config.callback.key, &config.callback.public_key) {
        (Some(_), Some(_)) => "signed (HMAC-SHA256 or RSA)",
        (Some(_), None) => "signed (HMAC-SHA256)",
        (None, Some(_)) => "signed (RSA SHA-512)",
        (None, None) => "UNSIGNED (no callback.key): each is confirmed with a status call",
    };
    tracing::info!(url = %handle.callback_url(), "bank callbacks expected here, {signed}");
    if config.callback.unsigned() && !is_loopback(&handle.callback_addr) {
        // Only with callback.allow_unsigned = true: the config refuses it otherwise.
        tracing::warn!(
            listen = %handle.callback_addr,
            "callbacks are unsigned on an address other hosts can reach (callback.allow_unsigned): set callback.key from the merchant cabinet"
        );
    }
    tracing::info!(api = %format!("{}/api/v1", handle.api_url()), tokens = config.api.tokens.len(), "till API listening");
    if config.api.tokens.is_empty() {
        tracing::warn!(
            "no [[api.tokens]] configured: every till API call will be refused with 401"
        );
    }
    tracing::info!(store = %config.store.path.display(), "order store open");
}

/// A status call for an order number that cannot exist: errorCode 6 proves the host, TLS and
/// the credentials at once.
pub async fn check_credentials(config: &Config, handle: &DaemonHandle) {
    let client = match GatewayClient::new(config.gateway.client_settings()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "credentials not checked: the gateway client cannot be built");
            return;
        }
    };
    let probe = OrderRef::OrderNumber(format!("chasti-start-{}", handle.engine.now().timestamp()));
    match client.order_status(&probe).await {
        Ok(report) if report.order_status.is_none() => tracing::warn!(
            gateway = %config.gateway.base_url,
            "the gateway answered a status call with neither an order status nor an error code: it is not the bank's gateway, and the credentials are not checked; run `chasti doctor`"
        ),
        Ok(_)
        | Err(GatewayError::Refused {
            code: ErrorCode::UnknownOrder,
            ..
        }) => tracing::info!("credentials accepted by the gateway"),
        Err(GatewayError::Refused {
            code: ErrorCode::WrongValueOrAccessDenied,
            message,
            ..
        }) => tracing::error!(
            %message,
            "the gateway REFUSED the credentials: test credentials work only on the test host and production ones only on production; run `chasti doctor`"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "the credentials could not be checked now (the gateway did not answer); sales will say so if it stays down")
        }
    }
    // The host's own clock (not the engine's, which tests may set) against the bank's `Date`:
    // orders expire and days close by it.
    let clock = crate::doctor::clock(config, chrono::Utc::now()).await;
    match clock.verdict {
        crate::doctor::Verdict::Ok => tracing::info!("clock: {}", clock.detail),
        _ => tracing::warn!("clock: {}", clock.detail),
    }
}
