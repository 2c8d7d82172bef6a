//! One error type for every gateway call. Its texts name the method and the host, never
//! the credentials (they are sent in the form body, never in a URL, and never formatted).

use std::time::Duration;

use super::codes::ErrorCode;
use super::types::Method;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway answered and said no (`errorCode` ≠ 0).
    #[error("{method}: the gateway refused with errorCode {code} ({}): {message}", .code.meaning())]
    Refused {
        method: Method,
        code: ErrorCode,
        message: String,
    },
    /// An HTTP status other than 200 (a proxy's 502, a 429 from the ecom host).
    #[error("{method}: the gateway answered HTTP {status}: {excerpt}")]
    HttpStatus {
        method: Method,
        status: u16,
        excerpt: String,
    },
    /// No answer in time. The call may still have taken effect at the bank.
    #[error("{method}: no answer from the gateway within {}s; the call may still have taken effect, ask getOrderStatusExtended before trying again", .after.as_secs_f32())]
    Timeout { method: Method, after: Duration },
    /// The TLS handshake failed: almost always a chain that is not trusted.
    #[error("{method}: TLS to {host} failed: {detail}. The server's certificate chain is not trusted by chasti: the bank's hosts chain to the НУЦ Минцифры CAs bundled in certs/; for another CA add its PEM file to gateway.extra_ca_files (or its folder to gateway.extra_ca_dirs) in the config")]
    Tls {
        method: Method,
        host: String,
        detail: String,
    },
    /// The connection could not be made, or broke before the reply was read.
    #[error("{method}: connection to {host} failed: {detail}")]
    Connection {
        method: Method,
        host: String,
        detail: String,
    },
    /// A 200 reply that is not the JSON the contract promises.
    #[error("{method}: the gateway's reply is unreadable ({problem}): {excerpt}")]
    UnreadableReply {
        method: Method,
        problem: String,
        excerpt: String,
    },
    /// The client's own settings are unusable (an http:// URL to a public host, a bad CA file).
    #[error("gateway client settings: {0}")]
    Settings(String),
}

impl GatewayError {
    pub fn refused(method: Method, code: i64, message: impl Into<String>) -> GatewayError {
        GatewayError::Refused {
            method,
            code: ErrorCode::from_code(code),
            message: message.into(),
        }
    }

    /// The gateway's error code when it refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            GatewayError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the call may or may not have reached the bank: the caller must find out
    /// (getOrderStatusExtended) before repeating anything that creates or moves money.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            GatewayError::Timeout { .. }
                | GatewayError::Connection { .. }
                | GatewayError::HttpStatus { .. }
                | GatewayError::UnreadableReply { .. }
        )
    }
}

/// At most this many characters of a reply go into an error.
const EXCERPT_CHARS: usize = 160;

pub(crate) fn excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS + 1)
        .collect();
    if flat.chars().count() > EXCERPT_CHARS {
        let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
        format!("{cut}…")
    } else if flat.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        flat
    }
}
