//! The bank's way back: the callback listener, signed callbacks, and the public address the bank
//! is told, probed through the shop's proxy.

use std::time::Duration;

use super::{check, risk, Check, Verdict};
use crate::config::Config;
use crate::http::callback::PROBE_PARAM;

/// The bank must be able to call back, and callbacks should be signed (must, for go-live).
pub fn callback(config: &Config) -> Vec<Check> {
    let c = &config.callback;
    let mut out = Vec::new();
    let url = format!("http://{}{}", c.listen, c.path);
    match std::net::TcpListener::bind(c.listen) {
        Ok(_) => out.push(check("callback", Verdict::Ok, format!("{url} is free for chasti serve; in the merchant cabinet (Settings → Main → Callback) point the callback at your public HTTPS address that proxies to it"))),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => out.push(check("callback", Verdict::Ok, format!("{url} is in use (chasti serve is running?); the bank's callback must reach it through your proxy"))),
        Err(e) => out.push(check("callback", Verdict::Fail, format!("cannot listen on {}: {e}; set callback.listen", c.listen))),
    }
    if config.gateway.dialect == crate::gateway::Dialect::Ecom {
        let verdict = if c.allow.is_empty() {
            risk("callback key", "the ecom gateway's callbacks carry no checksum (each is only a hint, confirmed by a status call); set callback.allow to the bank's networks so no one else can prompt one")
        } else {
            check("callback key", Verdict::Ok, "ecom callbacks carry no checksum: each is confirmed by a status call, and only callback.allow may send one")
        };
        out.push(verdict);
    } else if c.unsigned() {
        let allowed = if c.allow_unsigned {
            " (callback.allow_unsigned = true)"
        } else {
            ""
        };
        out.push(risk("callback key", format!("no callback.key or callback.public_key_file: unsigned callbacks are accepted{allowed} (each only prompts a status call); set the key from the merchant cabinet")));
    } else {
        out.push(check(
            "callback key",
            Verdict::Ok,
            "callbacks must be signed",
        ));
    }
    out
}

/// `callback.public_url`, the address in the merchant cabinet: a probe sent there must come
/// back from this chasti's callback route, which proves DNS, the proxy's certificate, its
/// forwarding of the path, and chasti behind it. The certificate is checked as the bank would:
/// against public roots (the OS store) plus `gateway.extra_ca_files`/`extra_ca_dirs`.
pub async fn public_url(config: &Config) -> Check {
    let Some(url) = &config.callback.public_url else {
        return risk(
            "public url",
            "callback.public_url is not set: the address the bank calls back is not checked; set it to the HTTPS address given in the merchant cabinet",
        );
    };
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut probe = url.clone();
    probe.query_pairs_mut().append_pair(PROBE_PARAM, &nonce);
    let mut trust = config.gateway.trust.clone();
    trust.use_os_roots = true;
    let client = crate::gateway::tls::http_client(&trust, Duration::from_secs(10))
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        });
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            return check(
                "public url",
                Verdict::Fail,
                format!("cannot probe {url}: {e}"),
            )
        }
    };
    let reply = match client.get(probe).send().await {
        Ok(r) => r,
        Err(e) => {
            let why = crate::gateway::error_chain(&e);
            return check(
                "public url",
                Verdict::Fail,
                format!("{url} does not answer ({why}): check DNS, the proxy (nginx -t; systemctl status nginx), its certificate and the firewall"),
            );
        }
    };
    let status = reply.status();
    let body = reply.text().await.unwrap_or_default();
    let expected = format!("chasti-probe {nonce} ");
    let Some(rest) = body.strip_prefix(&expected) else {
        let hint = match status.as_u16() {
            502..=504 => "the proxy answers but chasti is not running behind it: start it (systemctl start chasti) and check the proxy's upstream is callback.listen",
            404 => "the proxy does not forward this path to chasti: the location must be callback.path",
            _ => "something other than chasti's callback route answers there",
        };
        return check(
            "public url",
            Verdict::Fail,
            format!("{url} answered {status}, not chasti's probe reply: {hint}"),
        );
    };
    let caller = rest
        .split_whitespace()
        .find_map(|w| w.strip_prefix("caller="));
    let allowed = rest.contains("allowed=yes");
    let insecure = url.scheme() != "https";
    let seen = match (caller, allowed, config.callback.allow.is_empty()) {
        (_, _, true) => "callback.allow is empty: any address may call back".to_string(),
        (Some(caller), true, false) => format!("this host's address {caller} is inside callback.allow (normally only the bank's networks)"),
        (Some(caller), false, false) => format!("chasti sees this host as {caller}, outside callback.allow as expected"),
        (None, _, false) => "the proxy sent no X-Forwarded-For, so chasti cannot tell the bank from anyone else".to_string(),
    };
    if insecure {
        risk(
            "public url",
            format!("{url} reaches chasti over plain HTTP; the bank calls HTTPS addresses only"),
        )
    } else if caller.is_none() && !config.callback.allow.is_empty() {
        check("public url", Verdict::Fail, format!("{url} reaches chasti, but {seen}: set proxy_set_header X-Forwarded-For (config/nginx/chasti.conf)"))
    } else if config.callback.allow.is_empty() {
        risk(
            "public url",
            format!(
                "{url} reaches chasti through the proxy; {seen}: set it to the bank's networks"
            ),
        )
    } else {
        check(
            "public url",
            Verdict::Ok,
            format!("{url} reaches chasti through the proxy; {seen}"),
        )
    }
}
