//! The terminal's operations in Rust terms, mapped onto chasti's terminal-shaped calls: Pay
//! waits for the customer through `POST /api/v1/pay` (repeated with the same key until an
//! outcome, cancelled when the driver's wait runs out), ReturnPayment is `POST /api/v1/return`,
//! CancelPayment and EmergencyReversal cancel an unpaid sale or reverse a paid one, Settlement
//! is the day's close. Nothing here knows about the Native API (`component.rs` does).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{Chasti, PayRequest, ReturnRequest, TerminalReply};
use crate::error::DriverError;
use crate::money::Kopecks;
use crate::settings::Settings;

/// The longest one pay call waits in chasti before answering 202 (the driver then asks again
/// with the same key): short enough that a lost connection is noticed.
const WAIT_STEP: u64 = 30;
/// Tries of a call that does not wait for a customer, when chasti cannot be reached.
const TRIES: u32 = 3;

/// What an operation hands back to 1C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The order number: 1C keeps it as the operation's «RRN» and passes it back for a return.
    pub rrn: String,
    /// The slip text 1C prints.
    pub slip: String,
}

/// A failed operation, with a slip when there is one to print (a decline).
#[derive(Debug)]
pub struct Failed {
    pub error: DriverError,
    pub slip: Option<String>,
}

impl From<DriverError> for Failed {
    fn from(error: DriverError) -> Failed {
        Failed { error, slip: None }
    }
}

/// What the last operation of this object was, for `EmergencyReversal`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Last {
    Paid(String),
    Returned(String),
}

/// One terminal object's state: its settings and its last operation.
#[derive(Default)]
pub struct Driver {
    pub settings: Settings,
    last: Option<Last>,
    opened: u32,
}

/// A key no other call of this driver makes: the process, the time, a counter.
fn fresh_key(kind: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("1c-{kind}-{}-{nanos:x}-{n}", std::process::id())
}

impl Driver {
    fn chasti(&self) -> Result<Chasti, DriverError> {
        let roots = match self.settings.cert_file.as_str() {
            "" => None,
            path => Some(std::fs::read(path).map_err(|e| DriverError::Setting {
                name: "CertFile",
                problem: format!("файл {path} не прочитан: {e}"),
            })?),
        };
        Chasti::new(&self.settings.api_url, roots.as_deref())
    }

    fn token(&self) -> Result<&str, DriverError> {
        match self.settings.token.as_str() {
            "" => Err(DriverError::Setting {
                name: "Token",
                problem: "не задан токен кассы из настроек chasti ([[api.tokens]], role = \
                          \"cashier\")"
                    .into(),
            }),
            t => Ok(t),
        }
    }

    fn manager_token(&self) -> Result<&str, DriverError> {
        match self.settings.manager_token.as_str() {
            "" => Err(DriverError::Setting {
                name: "ManagerToken",
                problem: "не задан токен менеджера: возвраты, отмены оплат и сверка итогов \
                          требуют прав менеджера"
                    .into(),
            }),
            t => Ok(t),
        }
    }

    /// `Open`: chasti answers and knows the token. Returns the device id 1C keeps.
    pub fn open(&mut self) -> Result<String, DriverError> {
        self.check()?;
        self.opened += 1;
        Ok(format!("chasti-{}", self.opened))
    }

    /// What `DeviceTest` reports: chasti's address, that it is ready, that the tokens work.
    pub fn check(&self) -> Result<String, DriverError> {
        let chasti = self.chasti()?;
        let health = chasti.health()?;
        if health.status != "ready" {
            return Err(DriverError::Refused {
                status: 503,
                error_type: health.status.clone(),
                message: format!(
                    "chasti по адресу {} не принимает продажи (состояние {}).",
                    chasti.base(),
                    health.status
                ),
            });
        }
        chasti.check_token(self.token()?)?;
        let manager = match self.settings.manager_token.as_str() {
            "" => "токен менеджера не задан: возвраты и сверка недоступны".to_string(),
            t => {
                chasti.check_token(t)?;
                "токен менеджера принят".to_string()
            }
        };
        Ok(format!(
            "chasti по адресу {} готов принимать оплату частями; токен кассы принят; {manager}.",
            chasti.base()
        ))
    }

    /// `Pay`: sells `amount` and waits (up to `PayTimeout`) for the customer to pay.
    pub fn pay(&mut self, amount: Kopecks, receipt: Option<&str>) -> Result<Done, Failed> {
        let chasti = self.chasti()?;
        let token = self.token()?.to_string();
        let key = fresh_key("pay");
        let deadline = Instant::now() + Duration::from_secs(self.settings.pay_timeout);
        let mut order: Option<String> = None;
        let request = |wait: u64| PayRequest {
            amount: amount.api_text(),
            idempotency_key: key.clone(),
            wait_secs: wait,
            slip_width: self.settings.slip_width,
            description: receipt
                .map(|r| format!("1С, чек {}", r.chars().take(40).collect::<String>())),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = (left.as_millis() as u64).div_ceil(1000).clamp(1, WAIT_STEP);
            match chasti.pay(&token, &request(wait)) {
                Ok((200, reply)) => return self.paid(reply),
                Ok((_, reply)) => order = Some(reply.order.id),
                // The sale is still being registered, or chasti restarts: ask again.
                Err(DriverError::Refused { error_type, .. })
                    if error_type == "registering" || error_type == "busy" =>
                {
                    std::thread::sleep(Duration::from_secs(1))
                }
                Err(DriverError::Unreachable { .. }) if order.is_some() => {
                    std::thread::sleep(Duration::from_secs(1))
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(order) = order else {
            return Err(DriverError::TimedOut {
                seconds: self.settings.pay_timeout,
            }
            .into());
        };
        // The customer did not pay in time: the link is cancelled, unless they paid meanwhile.
        match chasti.cancel(&token, &order) {
            Ok(_) => Err(DriverError::TimedOut {
                seconds: self.settings.pay_timeout,
            }
            .into()),
            Err(DriverError::Refused { error_type, .. }) if error_type == "already_paid" => {
                let (_, reply) = chasti.pay(&token, &request(5))?;
                self.paid(reply)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn paid(&mut self, reply: TerminalReply) -> Result<Done, Failed> {
        match reply.outcome.as_str() {
            "paid" | "held" => {
                self.last = Some(Last::Paid(reply.order_number.clone()));
                Ok(Done {
                    rrn: reply.order_number,
                    slip: reply.slip_text,
                })
            }
            "needs_attention" => Err(Failed {
                error: DriverError::NeedsAttention,
                slip: Some(reply.slip_text),
            }),
            _ => Err(Failed {
                error: DriverError::NotPaid {
                    outcome: reply.outcome,
                    why: reply.order.state.why_text,
                },
                slip: Some(reply.slip_text),
            }),
        }
    }

    /// `ReturnPayment`: the order `rrn` (its number) gives back `amount` (all when None):
    /// reversed the same day when all of it goes back, refunded otherwise; chasti decides.
    pub fn return_payment(&mut self, rrn: &str, amount: Option<Kopecks>) -> Result<Done, Failed> {
        let reply = self.give_back(rrn, amount, None)?;
        self.last = Some(Last::Returned(reply.rrn.clone()));
        Ok(reply)
    }

    /// `CancelPayment`: an unpaid sale is cancelled; a paid one reversed (the same Moscow day,
    /// all of it: chasti refuses otherwise, and the cashier makes a return instead).
    pub fn cancel_payment(&mut self, rrn: &str, amount: Option<Kopecks>) -> Result<Done, Failed> {
        let chasti = self.chasti()?;
        let order = chasti.order(self.token()?, rrn)?;
        if amount.is_some_and(|a| a.get() != order.amount) {
            return Err(DriverError::NotSupported(
                "частичная отмена оплаты; оформите возврат на эту сумму",
            )
            .into());
        }
        match order.state.name.as_str() {
            "registering" | "awaiting_payment" => {
                let order = chasti.cancel(self.token()?, &order.id)?;
                Ok(Done {
                    slip: format!(
                        "Продажа {} отменена: ссылка на оплату больше не действует.\n",
                        order.order_number
                    ),
                    rrn: order.order_number,
                })
            }
            "cancelled" => Ok(Done {
                slip: format!("Продажа {} уже отменена.\n", order.order_number),
                rrn: order.order_number,
            }),
            _ => {
                let done = self.give_back(&order.order_number, None, Some("reversal"))?;
                if self.last == Some(Last::Paid(done.rrn.clone())) {
                    self.last = None;
                }
                Ok(done)
            }
        }
    }

    /// `EmergencyReversal`: undoes this object's last payment (1C calls it when the sale could
    /// not be finished after the money was taken). Repeating it is harmless.
    pub fn emergency_reversal(&mut self) -> Result<Done, Failed> {
        match self.last.clone() {
            Some(Last::Paid(rrn)) => {
                let done = self.cancel_payment(&rrn, None)?;
                self.last = None;
                Ok(done)
            }
            Some(Last::Returned(_)) => Err(DriverError::Nothing(
                "последняя операция — возврат, отменить его нельзя",
            )
            .into()),
            None => Err(DriverError::Nothing("оплат после подключения не было").into()),
        }
    }

    fn give_back(
        &self,
        rrn: &str,
        amount: Option<Kopecks>,
        operation: Option<&str>,
    ) -> Result<Done, Failed> {
        let chasti = self.chasti()?;
        let token = self.manager_token()?;
        let request = ReturnRequest {
            order: rrn.to_string(),
            amount: amount.map(Kopecks::api_text),
            idempotency_key: fresh_key("return"),
            slip_width: self.settings.slip_width,
            operation: operation.map(str::to_string),
        };
        // The same key on every try: a return whose reply was lost is not made twice.
        let mut tries = 0;
        let reply = loop {
            tries += 1;
            match chasti.return_payment(token, &request) {
                Err(DriverError::Unreachable { .. }) if tries < TRIES => {
                    std::thread::sleep(Duration::from_secs(1))
                }
                other => break other?,
            }
        };
        Ok(Done {
            rrn: reply.order_number,
            slip: reply.slip_text,
        })
    }

    /// `Settlement`: today's close in chasti (checked against the bank, printed on chasti's
    /// printer too); its report is the slip.
    pub fn settlement(&self) -> Result<String, Failed> {
        let chasti = self.chasti()?;
        Ok(chasti.close_today(self.manager_token()?)?.report_text)
    }
}
