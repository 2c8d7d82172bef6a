//! The till's hardware: the payment QR on an ESC/POS receipt printer and the amount on a
//! customer pole display. The orders engine knows nothing of this: the devices listen to its
//! order updates ([`attach`]), and a device failing never fails a sale.
//!
//! The flow: an order update → which slip it calls for ([`queue`]) → the slip is queued in the
//! store (so it survives a stop or a crash) → the printer's thread ([`serial`]) renders it from
//! the order as it is when its turn comes (a payment slip for an order paid meanwhile is
//! dropped) → printed, and forgotten by the queue. The display ([`pole`]) shows the latest screen.

pub mod codepage;
pub mod display;
pub mod escpos;
pub mod link;
pub mod pole;
pub mod printer;
pub mod profile;
pub mod qr;
mod queue;
pub mod render;
pub mod slip;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::orders::{Order, State};
use display::Screen;
use pole::Display;
use printer::Printer;

/// What the cashier is told while the paper-near-end sensor is on.
pub const PAPER_LOW: &str = "бумага заканчивается, замените рулон";

pub use queue::{attach, Reprint, SlipKind};

/// The devices of one till.
#[derive(Clone)]
pub struct Devices {
    pub shop_name: String,
    pub printer: Option<Printer>,
    pub display: Option<Display>,
    /// What the devices did for recent payment slips, for the sale's reply; bounded.
    outcomes: Arc<Mutex<Outcomes>>,
    outcome_ready: Arc<tokio::sync::Notify>,
}

/// What the printer and the display did (or are doing) for a sale, in the cashier's words.
/// The till API shows it as `DevicesOutcome`; the devices know nothing of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicesOutcome {
    pub printer: String,
    pub display: String,
}

/// The latest payment-slip outcomes, oldest dropped first: a sale's reply reads its own once.
#[derive(Default)]
struct Outcomes {
    by_order: HashMap<uuid::Uuid, DevicesOutcome>,
    order: VecDeque<uuid::Uuid>,
}

const OUTCOMES_KEPT: usize = 256;

/// Why a reprint did not happen. Russian: the cashier reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReprintError {
    /// No printer, or the order's state has no slip.
    Nothing(String),
    /// The printer could not print now (the slip is kept).
    Device(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    fn record(&self, order_id: uuid::Uuid, outcome: DevicesOutcome) {
        let mut o = lock(&self.outcomes);
        if o.by_order.insert(order_id, outcome).is_none() {
            o.order.push_back(order_id);
        }
        while o.order.len() > OUTCOMES_KEPT {
            if let Some(old) = o.order.pop_front() {
                o.by_order.remove(&old);
            }
        }
        drop(o);
        self.outcome_ready.notify_waiters();
    }

    /// What the printer and display did for an order's payment slip, waiting up to `limit`
    /// (a slow printer does not hold the sale's reply longer than that).
    pub async fn wait_outcome(&self, order_id: uuid::Uuid, limit: Duration) -> DevicesOutcome {
        if self.printer.is_none() {
            return self.current();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.outcome_ready.notified();
            let taken = {
                let mut o = lock(&self.outcomes);
                let found = o.by_order.remove(&order_id);
                if found.is_some() {
                    o.order.retain(|id| *id != order_id);
                }
                found
            };
            if let Some(v) = taken {
                return v;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return DevicesOutcome {
                    printer: "печать ещё идёт".into(),
                    display: self.display_text(),
                };
            }
        }
    }

    /// What the devices show now, without waiting.
    pub fn current(&self) -> DevicesOutcome {
        DevicesOutcome {
            printer: match &self.printer {
                Some(p) if p.kept() > 0 => format!("ждут печати: {} чек(а)", p.kept()),
                Some(p) if p.paper_low() => format!("готов; {PAPER_LOW}"),
                Some(_) => "готов".into(),
                None => "не настроен".into(),
            },
            display: self.display_text(),
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

    /// The display's screen for an order's state, if it changes the display.
    pub fn screen_for(order: &Order) -> Option<Screen> {
        match order.state {
            State::AwaitingPayment(_) => Some(Screen::AwaitingPayment(order.amount)),
            State::Paid(_) => Some(Screen::Paid(order.amount)),
            State::Declined { .. } | State::Expired(_) | State::Failed { .. } => {
                Some(Screen::Declined)
            }
            State::Cancelled(_) => Some(Screen::Cancelled),
            _ => None,
        }
    }

    /// Puts the order's screen on the display; returns what it shows.
    fn show(&self, order: &Order) -> String {
        let Some(display) = &self.display else {
            return "не настроен".into();
        };
        match Devices::screen_for(order) {
            Some(screen) => {
                display.show(screen);
                let frame = &display::frames(&display.profile, screen)[0];
                format!("{} / {}", frame[0], frame[1])
            }
            None => self.display_text(),
        }
    }

    /// Prints a report (the day's close) on the till's printer; what became of it, in the
    /// manager's words.
    pub async fn print_report(&self, label: &str, title: &str, lines: &[String]) -> String {
        let Some(printer) = &self.printer else {
            return "принтер не настроен".into();
        };
        let bytes = slip::report_slip(&printer.profile, &self.shop_name, title, lines);
        match printer.print(label, bytes).await {
            Ok(()) => "напечатан".into(),
            Err(e) => format!("не напечатан сейчас ({e}); будет напечатан, когда принтер ответит"),
        }
    }

    /// Waits, up to `limit`, for the slip being printed to finish (a stop never cuts a slip).
    /// Slips not yet started stay in the store's queue and print after the next start.
    pub async fn finish(&self, limit: Duration) -> bool {
        match &self.printer {
            Some(p) => p.wait_idle(limit).await,
            None => true,
        }
    }
}
