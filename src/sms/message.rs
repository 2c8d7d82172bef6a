//! The SMS itself: short, Russian, with the shop, the amount, the link and its expiry in МСК,
//! and how many SMS parts it takes.

use chrono::{DateTime, Utc};

use crate::money::Kopecks;

/// What the customer's phone shows, and its size on the air.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub body: String,
    pub parts: u8,
}

/// The GSM 03.38 default alphabet (basic table): a message only of these goes as 7-bit
/// (160 characters a part); anything else (Cyrillic) as UCS-2 (70).
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes two 7-bit places.
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How many SMS parts `text` takes (a long message is split with a 6-byte header per part).
pub fn parts(text: &str) -> usize {
    let gsm = text
        .chars()
        .all(|c| GSM7.contains(c) || GSM7_EXTENDED.contains(c));
    let (units, single, multi) = if gsm {
        let units: usize = text
            .chars()
            .map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 })
            .sum();
        (units, 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    if units <= single {
        1
    } else {
        units.div_ceil(multi)
    }
}

/// The message, the longest wording that fits two parts, shorter ones after it; a bank link is
/// long, so the last resort keeps only the link, the amount and the time, however many parts.
pub fn compose(shop: &str, amount: Kopecks, link: &str, expires: DateTime<Utc>) -> Text {
    let until = expires
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%H:%M");
    let shop: String = shop.chars().take(30).collect();
    let wordings = [
        format!("{shop}: оплата частями {amount}. Ссылка: {link} (до {until} МСК)"),
        format!("{shop}: {amount} частями {link} до {until} МСК"),
        format!("{amount} частями {link} до {until} МСК"),
    ];
    let fitting = wordings.iter().find(|w| parts(w) <= 2);
    let body = fitting.unwrap_or(&wordings[2]).clone();
    let parts = parts(&body).min(u8::MAX as usize) as u8;
    Text { body, parts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parts_by_alphabet() {
        assert_eq!(parts(&"a".repeat(160)), 1);
        assert_eq!(parts(&"a".repeat(161)), 2);
        assert_eq!(parts(&"€".repeat(80)), 1);
        assert_eq!(parts(&"€".repeat(81)), 2);
        assert_eq!(parts(&"я".repeat(70)), 1);
        assert_eq!(parts(&"я".repeat(71)), 2);
        assert_eq!(parts(&"я".repeat(134)), 2);
        assert_eq!(parts(&"я".repeat(135)), 3);
    }

    #[test]
    fn the_message_names_shop_amount_link_and_time_in_two_parts() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 20, 0).unwrap();
        let amount = Kopecks::new(149_950).unwrap();
        let short = "http://127.0.0.1:8907/sandbox/pay/0195a1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        let t = compose("Магазин", amount, short, at);
        assert!(t.body.contains(short), "{}", t.body);
        assert!(
            t.body.contains("1 499,50 ₽") && t.body.contains("12:20 МСК"),
            "{}",
            t.body
        );
        assert!(t.parts <= 2, "{t:?}");
        // The bank's own link is about 110 characters: still the link whole, at most 3 parts.
        let bank = "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=0195a1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        let t = compose("Магазин бытовой техники «Электрон»", amount, bank, at);
        assert!(t.body.contains(bank), "{}", t.body);
        assert!(t.parts <= 3, "{t:?}");
    }
}
