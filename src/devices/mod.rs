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
        if let Some(display) = &self.display {
            if let Some(screen) = Devices::screen_for(order) {
                display.show(screen);
            }
        }
        if let Some(printer) = &self.printer {
            if let Some((label, bytes)) = self.slip_for(&printer.profile, order, previous) {
                if let Err(e) = printer.print(&label, bytes).await {
                    // Kept by the printer for later; the sale goes on regardless.
                    tracing::warn!(order = %order.order_number, error = %e, "slip not printed now");
                }
            }
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
