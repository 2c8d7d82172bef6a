//! What can go wrong in a driver call: English for logs and the test host, Russian for the
//! cashier (the text 1C shows from `GetLastError`), and the code `GetLastError` returns.

/// A failed driver call.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A setting the call needs is missing or wrong (`SetParameter` / a property).
    #[error("setting {name}: {problem}")]
    Setting { name: &'static str, problem: String },
    /// 1C passed something the call cannot use.
    #[error("parameter {name}: {problem}")]
    Parameter { name: &'static str, problem: String },
    /// chasti did not answer (down, wrong address, network).
    #[error("chasti at {url} did not answer: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// chasti answered with an error (its Russian message is kept for the cashier).
    #[error("chasti refused ({status} {error_type}): {message}")]
    Refused {
        status: u16,
        error_type: String,
        message: String,
    },
    /// chasti answered something this driver does not understand (a version mismatch).
    #[error("chasti's reply to {what} could not be read: {problem}")]
    Reply { what: &'static str, problem: String },
    /// The payment ended without the money: declined, expired, cancelled or failed.
    #[error("the payment ended {outcome}")]
    NotPaid {
        outcome: String,
        why: Option<String>,
    },
    /// The customer did not pay in time and the sale was cancelled.
    #[error("no payment within {seconds} s; the sale was cancelled")]
    TimedOut { seconds: u64 },
    /// The payment needs a manager's look before the goods are given.
    #[error("the payment needs attention")]
    NeedsAttention,
    /// An operation chasti cannot do as a terminal (cash-out, certificates, partial cancel…).
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// Nothing to act on (an emergency reversal with no operation before it).
    #[error("nothing to do: {0}")]
    Nothing(&'static str),
}

impl DriverError {
    /// The code `GetLastError` returns (0 is «no error»).
    pub fn code(&self) -> i32 {
        match self {
            DriverError::Setting { .. } => 1,
            DriverError::Parameter { .. } => 2,
            DriverError::Unreachable { .. } => 3,
            DriverError::Refused { .. } => 4,
            DriverError::Reply { .. } => 5,
            DriverError::NotPaid { .. } => 6,
            DriverError::TimedOut { .. } => 7,
            DriverError::NeedsAttention => 8,
            DriverError::NotSupported(_) => 9,
            DriverError::Nothing(_) => 10,
        }
    }

    /// What the cashier reads in 1C.
    pub fn cashier_text(&self) -> String {
        match self {
            DriverError::Setting { name, problem } => {
                format!("Настройка драйвера chasti «{name}»: {problem}")
            }
            DriverError::Parameter { name, problem } => {
                format!("Параметр операции «{name}»: {problem}")
            }
            DriverError::Unreachable { url, .. } => format!(
                "Нет связи с chasti по адресу {url}: служба не запущена или адрес неверен. \
                 Оплата не проводилась."
            ),
            DriverError::Refused { message, .. } => message.clone(),
            DriverError::Reply { .. } => {
                "chasti ответил непонятно: проверьте, что версии драйвера и chasti совпадают."
                    .into()
            }
            DriverError::NotPaid { outcome, why } => {
                let what = match outcome.as_str() {
                    "declined" => "банк отказал в оплате",
                    "expired" => "ссылка на оплату истекла",
                    "cancelled" => "продажа отменена",
                    _ => "оплата не прошла",
                };
                match why {
                    Some(why) => format!("Оплата не получена: {what} ({why})."),
                    None => format!("Оплата не получена: {what}."),
                }
            }
            DriverError::TimedOut { seconds } => format!(
                "Покупатель не оплатил за {seconds} с: продажа отменена, ссылка больше не действует."
            ),
            DriverError::NeedsAttention => "Оплата требует проверки менеджером: не выдавайте \
                товар, пока она не подтверждена на странице менеджера chasti."
                .into(),
            DriverError::NotSupported(what) => format!("chasti этого не умеет: {what}."),
            DriverError::Nothing(what) => format!("Нечего делать: {what}."),
        }
    }
}
