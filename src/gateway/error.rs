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
    /// The connection could not even be opened: the request was never sent.
    #[error("{method}: cannot reach {host}: {detail}")]
    Unreachable {
        method: Method,
        host: String,
        detail: String,
    },
    /// The connection broke after it was open: the request may have been sent.
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

    /// What the cashier is told, in Russian: what happened and what to do.
    pub fn cashier_text(&self) -> String {
        match self {
            GatewayError::Refused { code, message, .. } => refused_text(*code, message),
            GatewayError::Unreachable { .. } => UNREACHABLE.into(),
            GatewayError::Tls { .. } | GatewayError::Settings(_) => SETUP.into(),
            GatewayError::Timeout { .. }
            | GatewayError::HttpStatus { .. }
            | GatewayError::UnreadableReply { .. }
            | GatewayError::Connection { .. } => NO_ANSWER.into(),
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

/// What the cashier is told when the bank could not be reached (the request was never sent).
pub const UNREACHABLE: &str = "Не удалось связаться с банком: продажа не создана. Проверьте подключение к интернету и повторите.";
/// ... when chasti's own set-up (TLS trust, settings) stopped the call.
pub const SETUP: &str = "Касса не настроена: не удаётся установить защищённое соединение с банком. Обратитесь к администратору.";
/// ... when no usable answer came (the call may have taken effect).
pub const NO_ANSWER: &str = "Банк не ответил вовремя; статус операции уточняется автоматически.";

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

/// The bank's refusal in the cashier's words. A set-up fault (credentials, environment,
/// currency, a missing parameter, features) is said as such: the cashier cannot fix it.
pub fn refused_text(code: ErrorCode, message: &str) -> String {
    let setup = "Касса не настроена: обратитесь к администратору";
    let said = if message.trim().is_empty() {
        String::new()
    } else {
        format!(" (банк: «{}»)", message.trim())
    };
    match code {
        ErrorCode::WrongValueOrAccessDenied
            if message.to_lowercase().contains("access denied")
                || message.to_lowercase().contains("доступ") =>
        {
            format!("{setup} — банк не принял логин кассы (тестовые и боевые данные не взаимозаменяемы).")
        }
        ErrorCode::UnknownCurrency
        | ErrorCode::MissingParameter
        | ErrorCode::FeaturesNotAllowed
        | ErrorCode::FeaturesMalformed => format!("{setup}{said}."),
        ErrorCode::WrongValueOrAccessDenied => format!("Банк отказал: неверное значение{said}."),
        ErrorCode::Declined => format!("Банк отклонил оплату{said}."),
        ErrorCode::NumberUsed => format!("Банк отказал: такой номер заказа уже был{said}."),
        ErrorCode::UnknownOrder => format!("Банк не нашёл этот заказ{said}."),
        ErrorCode::NotAllowedNow => {
            format!("Банк сейчас не может выполнить операцию{said}. Повторите позже.")
        }
        ErrorCode::CartMismatch => format!("Банк отказал: состав заказа не совпадает{said}."),
        ErrorCode::EmptyAmount => format!("Банк отказал: не указана сумма{said}."),
        ErrorCode::Success => "Банк ответил без ошибки.".into(),
        ErrorCode::Other(n) => format!("Банк отказал (код {n}){said}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_reads_differently_and_names_what_to_do() {
        let refused = |code, message: &str| GatewayError::refused(Method::Register, code, message);
        let texts = [
            refused(5, "Access denied").cashier_text(),
            refused(5, "Wrong amount").cashier_text(),
            refused(7, "System error").cashier_text(),
            refused(4, "Password is empty").cashier_text(),
            refused(99, "").cashier_text(),
            GatewayError::Unreachable {
                method: Method::Register,
                host: "h".into(),
                detail: "refused".into(),
            }
            .cashier_text(),
            GatewayError::Timeout {
                method: Method::Register,
                after: std::time::Duration::from_secs(1),
            }
            .cashier_text(),
        ];
        assert!(texts[0].starts_with("Касса не настроена") && !texts[0].contains("Банк отказал"));
        assert!(texts[1].contains("Wrong amount"));
        assert!(texts[2].contains("Повторите позже"));
        assert!(texts[3].starts_with("Касса не настроена"));
        assert!(texts[4].contains("код 99"));
        assert!(texts[5].contains("продажа не создана"));
        assert!(texts[6].contains("не ответил вовремя"));
        let distinct: std::collections::HashSet<_> = texts.iter().collect();
        assert_eq!(distinct.len(), texts.len());
    }
}
