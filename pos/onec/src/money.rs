//! Amounts as 1C passes them (roubles: an XML decimal, or a number variant) held as integer
//! kopecks. chasti's own `Kopecks` would bring the whole daemon into the add-in's library,
//! so this is the add-in's small copy of the rule.

/// The most the gateway takes: 12 digits of kopecks.
const MAX: u64 = 999_999_999_999;

/// An amount in kopecks, above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kopecks(u64);

impl Kopecks {
    pub fn new(kopecks: u64) -> Option<Kopecks> {
        (1..=MAX).contains(&kopecks).then_some(Kopecks(kopecks))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// Roubles written as 1C writes numbers in XML: `1499`, `1499.5`, `1499.00` (a comma is
    /// taken for the point). Read as text, never through a float.
    pub fn parse(text: &str) -> Result<Kopecks, String> {
        let text = text.trim().replace(',', ".");
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !(fraction.is_empty() || fraction.len() <= 2 && digits(fraction)) {
            return Err(format!(
                "сумма «{}» не понята: ожидаются рубли с точкой, например 1499.00",
                text.chars().take(24).collect::<String>()
            ));
        }
        let roubles: u64 = whole
            .parse()
            .map_err(|_| "сумма слишком велика".to_string())?;
        let mut cents = format!("{fraction:0<2}");
        cents.truncate(2);
        let cents: u64 = cents.parse().unwrap_or(0);
        roubles
            .checked_mul(100)
            .and_then(|k| k.checked_add(cents))
            .and_then(Kopecks::new)
            .ok_or_else(|| "сумма должна быть больше нуля и меньше 10 млрд рублей".into())
    }

    /// Roubles from a number variant. The Native API hands a DOUBLE over (the 8-parameter
    /// `PayByPaymentCard`): this is the one place a float becomes money, rounded to the
    /// nearest kopeck (1499.1 arrives as 1499.0999…).
    pub fn from_roubles_f64(roubles: f64) -> Result<Kopecks, String> {
        if !roubles.is_finite() || roubles <= 0.0 || roubles >= (MAX as f64 + 1.0) / 100.0 {
            return Err(format!(
                "сумма {roubles} не подходит: нужна больше нуля и меньше 10 млрд рублей"
            ));
        }
        Kopecks::new((roubles * 100.0).round() as u64)
            .ok_or_else(|| "сумма меньше копейки".to_string())
    }

    /// As chasti's API takes amounts: `1499.00`.
    pub fn api_text(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::Kopecks;

    #[test]
    fn roubles_in_xml_are_read_as_text() {
        assert_eq!(Kopecks::parse("1499.00").unwrap().get(), 149_900);
        assert_eq!(Kopecks::parse("1499.5").unwrap().get(), 149_950);
        assert_eq!(Kopecks::parse(" 1499,05 ").unwrap().get(), 149_905);
        assert_eq!(Kopecks::parse("7").unwrap().get(), 700);
        for bad in [
            "",
            "0",
            "0.00",
            "-5",
            "1.234",
            "1e3",
            "12 00",
            "abc",
            "9999999999999",
        ] {
            assert!(Kopecks::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_double_is_rounded_to_the_nearest_kopeck() {
        assert_eq!(Kopecks::from_roubles_f64(1499.1).unwrap().get(), 149_910);
        assert_eq!(Kopecks::from_roubles_f64(0.015).unwrap().get(), 2);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e13, 0.001] {
            assert!(Kopecks::from_roubles_f64(bad).is_err(), "{bad}");
        }
        assert_eq!(Kopecks::new(149_905).unwrap().api_text(), "1499.05");
    }
}
