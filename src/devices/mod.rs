//! The till's hardware: the payment QR on an ESC/POS receipt printer and the amount on a
//! customer pole display, both over serial. The orders engine knows nothing of this: the
//! devices listen to its order updates ([`attach`]), and a device failing never fails a sale.

pub mod codepage;
pub mod display;
pub mod escpos;
pub mod profile;
pub mod qr;
pub mod render;
pub mod serial;
pub mod slip;

use std::collections::HashMap;
use std::sync::Arc;

use crate::orders::{Engine, Order, RefundStatus, State};
use display::Screen;
use serial::{Display, Printer};
use slip::{Outcome, SlipOrder};

/// The devices of one till.
#[derive(Clone)]
pub struct Devices {
    pub shop_name: String,
    pub printer: Option<Printer>,
    pub display: Option<Display>,
    /// What happened on the devices for each order's payment slip, for the sale's reply.
    outcomes: Arc<std::sync::Mutex<HashMap<String, serde_json::Value>>>,
    outcome_ready: Arc<tokio::sync::Notify>,
}

fn slip_order<'a>(shop: &'a str, order: &'a Order) -> SlipOrder<'a> {
    SlipOrder {
        shop_name: shop,
        order_number: &order.order_number,
        amount: order.amount,
        payment_url: order.payment_url.as_deref().unwrap_or(""),
        link_expires_at: order.link_expires_at,
    }
}

impl Devices {
    pub fn new(
        shop_name: impl Into<String>,
        printer: Option<Printer>,
        display: Option<Display>,
    ) -> Devices {
        Devices {
            shop_name: shop_name.into(),
            printer,
            display,
            outcomes: Arc::default(),
            outcome_ready: Arc::default(),
        }
    }

    fn record(&self, order_id: &str, outcome: serde_json::Value) {
        let mut map = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 1000 {
            map.clear();
        }
        map.insert(order_id.to_string(), outcome);
        self.outcome_ready.notify_waiters();
    }

    /// What the printer and display did for an order's payment slip, waiting up to `limit`
    /// (a slow printer does not hold the sale's reply longer than that).
    pub async fn wait_outcome(
        &self,
        order_id: &str,
        limit: std::time::Duration,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.outcome_ready.notified();
            if let Some(v) = self
                .outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(order_id)
            {
                return v.clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return serde_json::json!({"printer": "печать ещё идёт", "display": self.display_text()});
            }
        }
    }

    fn display_text(&self) -> String {
        match &self.display {
            Some(d) => d
                .shown()
                .map(|f| format!("{} / {}", f[0], f[1]))
                .unwrap_or_else(|| "нет связи с дисплеем".into()),
            None => "не настроен".into(),
        }
    }

    /// Prints the slip of the order's current state again (the payment slip while unpaid).
    pub async fn reprint(&self, order: &Order) -> Result<String, String> {
        let printer = self.printer.as_ref().ok_or("Принтер не настроен.")?;
        let (label, bytes) = self
            .slip_for(&printer.profile, order, None)
            .ok_or_else(|| {
                format!(
                    "Для заказа в состоянии «{}» нет чека.",
                    order.state.russian()
                )
            })?;
        printer
            .print(&label, bytes)
            .await
            .map_err(|e| e.to_string())?;
        Ok(label)
    }

    /// The slip for an order's new state, if that state has one.
    pub fn slip_for(
        &self,
        profile: &profile::PrinterProfile,
        order: &Order,
        previous: Option<&str>,
    ) -> Option<(String, Vec<u8>)> {
        let o = slip_order(&self.shop_name, order);
        let at = order.updated_at;
        let label = |kind: &str| format!("{kind} {}", order.order_number);
        match &order.state {
            State::AwaitingPayment => match slip::payment_slip(profile, &o) {
                Ok(bytes) => Some((label("payment slip"), bytes)),
                Err(e) => {
                    tracing::error!(order = %order.order_number, error = %e, "payment slip cannot be made");
                    None
                }
            },
            State::Paid if previous != Some("paid") => Some((
                label("paid slip"),
                slip::outcome_slip(profile, &o, Outcome::Paid, at),
            )),
            State::Reversed => Some((
                label("reversal slip"),
                slip::outcome_slip(profile, &o, Outcome::Reversed, at),
            )),
            State::Refunded | State::PartiallyRefunded if previous == Some("refunding") => {
                let amount = order
                    .refunds
                    .iter()
                    .rev()
                    .find(|r| r.status == RefundStatus::Done)
                    .map(|r| r.amount)
                    .unwrap_or(order.refunded);
                Some((
                    label("refund slip"),
                    slip::outcome_slip(profile, &o, Outcome::Refunded(amount), at),
                ))
            }
            _ => None,
        }
    }

    /// The display's screen for an order's state, if it changes the display.
    pub fn screen_for(order: &Order) -> Option<Screen> {
        match order.state {
            State::AwaitingPayment => Some(Screen::AwaitingPayment(order.amount)),
            State::Paid => Some(Screen::Paid(order.amount)),
            State::Declined { .. } | State::Expired | State::Failed { .. } => {
                Some(Screen::Declined)
            }
            _ => None,
        }
    }

    async fn on_update(&self, order: &Order, previous: Option<&str>) {
        let mut display_text = "не настроен".to_string();
        if let Some(display) = &self.display {
            if let Some(screen) = Devices::screen_for(order) {
                display.show(screen);
                let frame = &display::frames(&display.profile, screen)[0];
                display_text = format!("{} / {}", frame[0], frame[1]);
            }
        }
        let mut printer_text = "не настроен".to_string();
        if let Some(printer) = &self.printer {
            if let Some((label, bytes)) = self.slip_for(&printer.profile, order, previous) {
                printer_text = match printer.print(&label, bytes).await {
                    Ok(()) => format!("напечатан: {label}"),
                    Err(e) => {
                        // Kept by the printer for later; the sale goes on regardless.
                        tracing::warn!(order = %order.order_number, error = %e, "slip not printed now");
                        e.to_string()
                    }
                };
            }
        }
        if order.state == State::AwaitingPayment {
            self.record(
                &order.id,
                serde_json::json!({"printer": printer_text, "display": display_text}),
            );
        }
    }
}

/// Prints and displays what each order update calls for, in the background.
pub fn attach(engine: &Engine, devices: Devices) -> tokio::task::JoinHandle<()> {
    let mut updates = engine.subscribe();
    tokio::spawn(async move {
        let mut last: HashMap<String, String> = HashMap::new();
        loop {
            let order = match updates.recv().await {
                Ok(order) => order,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "devices missed order updates");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let previous = last.insert(order.id.clone(), order.state.name().to_string());
            if previous.as_deref() == Some(order.state.name()) {
                continue;
            }
            let devices = devices.clone();
            // Printing may wait on a slow serial line: never hold up the next update.
            let previous = previous.clone();
            tokio::spawn(async move { devices.on_update(&order, previous.as_deref()).await });
        }
    })
}

/// Shared so the HTTP side can reprint (issue 5).
pub type SharedDevices = Arc<Devices>;
