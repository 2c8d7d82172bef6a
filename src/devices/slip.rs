//! The slips a till prints, in Russian, laid out for the profile's columns (58 mm: 32,
//! 80 mm: 48). Amounts end in «руб.»: no receipt code page has ₽.

use chrono::{DateTime, Utc};

use super::escpos::{Align, Encoder};
use super::profile::PrinterProfile;
use crate::money::Kopecks;
use crate::moscow;

/// What a slip needs to know of an order (the domain stays free of printer concerns).
#[derive(Debug, Clone)]
pub struct SlipOrder<'a> {
    pub shop_name: &'a str,
    pub order_number: &'a str,
    pub amount: Kopecks,
    pub link_expires_at: DateTime<Utc>,
}

pub fn roubles(amount: Kopecks) -> String {
    format!("{} руб.", amount.format_number())
}

/// Word-wraps `text` to `width` characters; words longer than a line are cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let needed = if line.is_empty() {
            word.chars().count()
        } else {
            line.chars().count() + 1 + word.chars().count()
        };
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A link cut into lines of `width` characters (it has no spaces to break at).
fn chunks(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(width.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

fn header(e: &mut Encoder, p: &PrinterProfile, shop: &str, title: &str) {
    e.align(Align::Center).bold(true);
    for line in wrap(shop, p.columns) {
        e.line(&line);
    }
    e.bold(false).size(2, 2);
    for line in wrap(title, p.columns / 2) {
        e.line(&line);
    }
    e.size(1, 1);
}

fn rule(e: &mut Encoder, p: &PrinterProfile) {
    e.align(Align::Left).line(&"-".repeat(p.columns));
}

/// A report on paper (the day's close): the shop, a title, then its lines, each wrapped to the
/// printer's width; a line starting with `-` is a rule.
pub fn report_slip(p: &PrinterProfile, shop: &str, title: &str, lines: &[String]) -> Vec<u8> {
    let mut e = Encoder::new(p);
    header(&mut e, p, shop, title);
    e.align(Align::Left);
    for line in lines {
        if line == "-" {
            rule(&mut e, p);
            continue;
        }
        for part in wrap(line, p.columns) {
            e.line(&part);
        }
    }
    e.cut();
    e.into_bytes()
}

/// The payment slip: what to pay, how, and the QR.
pub const INSTRUCTION: &str = "Наведите камеру телефона на QR-код и оплатите частями.";

pub fn payment_slip(
    p: &PrinterProfile,
    o: &SlipOrder,
    link: &crate::domain::PaymentUrl,
) -> Result<Vec<u8>, super::escpos::EscposError> {
    let mut e = Encoder::new(p);
    header(&mut e, p, o.shop_name, "Оплата частями");
    e.bold(true)
        .size(2, 2)
        .line(&roubles(o.amount))
        .size(1, 1)
        .bold(false);
    e.line(&format!("Заказ {}", o.order_number));
    rule(&mut e, p);
    e.align(Align::Center);
    for line in wrap(INSTRUCTION, p.columns) {
        e.line(&line);
    }
    e.qr(link.as_str())?;
    e.align(Align::Center);
    e.line(&format!(
        "Ссылка действует до {} (МСК)",
        moscow::clock_text(o.link_expires_at)
    ));
    e.align(Align::Left);
    for line in chunks(link.as_str(), p.columns) {
        e.line(&line);
    }
    e.cut();
    Ok(e.into_bytes())
}

/// What a confirmation slip confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    Reversed,
    Refunded(Kopecks),
    /// The sale was cancelled before it was paid: the QR on the earlier slip is dead.
    Cancelled,
}

/// The line a person signs on a reversal or refund slip.
pub const SIGNATURE: &str = "Подпись ______________";

/// A slip printed again: when, and who asked.
#[derive(Debug, Clone, Copy)]
pub struct Reprinted<'a> {
    pub at: DateTime<Utc>,
    pub by: Option<&'a str>,
}

fn moscow_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Moscow)
        .format("%d.%m.%Y %H:%M МСК")
        .to_string()
}

/// A slip that confirms an outcome. `at` and `by` are when it happened and who asked for a
/// reversal, a refund or a cancel (reversal and refund slips carry it with a signature line);
/// a copy keeps them and says «КОПИЯ», when it was printed again and by whom.
pub fn outcome_slip(
    p: &PrinterProfile,
    o: &SlipOrder,
    outcome: Outcome,
    at: DateTime<Utc>,
    by: Option<&str>,
    copy: Option<Reprinted>,
) -> Vec<u8> {
    let mut e = Encoder::new(p);
    let (title, amount) = match outcome {
        Outcome::Paid => ("ОПЛАЧЕНО", o.amount),
        Outcome::Reversed => ("ОПЛАТА ОТМЕНЕНА", o.amount),
        Outcome::Refunded(amount) => ("ВОЗВРАТ", amount),
        Outcome::Cancelled => ("ПРОДАЖА ОТМЕНЕНА", o.amount),
    };
    header(&mut e, p, o.shop_name, "Оплата частями");
    if copy.is_some() {
        e.bold(true).line("КОПИЯ").bold(false);
    }
    e.bold(true).size(2, 2);
    for line in wrap(title, p.columns / 2) {
        e.line(&line);
    }
    e.line(&roubles(amount)).size(1, 1).bold(false);
    e.line(&format!("Заказ {}", o.order_number));
    e.line(&moscow_time(at));
    if let Some(by) = by {
        for line in wrap(&format!("Оформил: {by}"), p.columns) {
            e.line(&line);
        }
    }
    match outcome {
        Outcome::Reversed => {
            rule(&mut e, p);
            e.align(Align::Center);
            for line in wrap("Деньги вернутся на счёт покупателя в банке.", p.columns)
            {
                e.line(&line);
            }
            e.feed(1).align(Align::Left).line(SIGNATURE);
        }
        Outcome::Refunded(_) => {
            rule(&mut e, p);
            e.align(Align::Center);
            for line in wrap(crate::orders::REFUND_TAKES_DAYS, p.columns) {
                e.line(&line);
            }
            e.feed(1).align(Align::Left).line(SIGNATURE);
        }
        Outcome::Cancelled => {
            rule(&mut e, p);
            e.align(Align::Center);
            for line in wrap("Ссылка и QR-код на чеке больше не действуют.", p.columns)
            {
                e.line(&line);
            }
        }
        Outcome::Paid => {}
    }
    if let Some(copy) = copy {
        rule(&mut e, p);
        let mut text = format!("Копия напечатана {}", moscow_time(copy.at));
        if let Some(by) = copy.by {
            text.push_str(&format!(", {by}"));
        }
        for line in wrap(&text, p.columns) {
            e.line(&line);
        }
    }
    e.cut();
    e.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_respects_the_width() {
        for width in [32, 48] {
            for line in wrap(INSTRUCTION, width) {
                assert!(line.chars().count() <= width, "{line}");
            }
        }
        assert_eq!(wrap("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(chunks("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }
}
