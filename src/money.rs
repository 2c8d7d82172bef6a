//! Money as integer kopecks. Never floats: a rouble amount typed by a cashier is parsed
//! digit by digit into kopecks, and formatted back the Russian way (`1 499,50 ₽`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The gateway takes at most 12 digits of minor units.
pub const MAX_KOPECKS: u64 = 999_999_999_999;

/// An amount of money in kopecks (1/100 rouble). Zero is a valid value (a reply's
/// `refundedAmount`, `deposit.do` with 0 = whole hold); user input goes through
/// [`Kopecks::parse_amount`], which refuses zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Kopecks(u64);

/// Deserialised through [`Kopecks::new`]: an amount above the gateway's 12 digits is an error
/// wherever it comes from (a stored record, a gateway reply, a request).
impl<'de> Deserialize<'de> for Kopecks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kopecks, D::Error> {
        let value = u64::deserialize(d)?;
        Kopecks::new(value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{value} kopecks is above the gateway's limit of {MAX_KOPECKS}"
            ))
        })
    }
}

impl utoipa::PartialSchema for Kopecks {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(0))
            .maximum(Some(MAX_KOPECKS as f64))
            .description(Some("An amount in kopecks (1/100 rouble)."))
            .into()
    }
}

impl utoipa::ToSchema for Kopecks {}

/// Why a typed amount was refused. The texts are Russian: a cashier reads them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("Сумма не указана. Введите сумму в рублях, например 1499 или 1 499,50.")]
    Empty,
    #[error("Сумма «{0}» отрицательная. Допустима только положительная сумма.")]
    Negative(String),
    #[error("Сумма «{0}» равна нулю. Допустима сумма от 0,01 ₽.")]
    Zero(String),
    #[error("В сумме «{0}» больше двух знаков после запятой. Допустимо не более двух (копейки).")]
    TooManyDecimals(String),
    #[error("Сумма «{0}» слишком большая: не более 12 цифр в копейках (до 9 999 999 999,99 ₽).")]
    TooLarge(String),
    #[error("«{0}» не является суммой. Допустимы цифры, пробелы между тысячами и одна запятая или точка, например 1 499,50.")]
    NotANumber(String),
    #[error("В сумме «{0}» неверно расставлены пробелы: они разделяют группы по три цифры, например 1 499,50.")]
    BadGrouping(String),
}

impl Kopecks {
    pub const ZERO: Kopecks = Kopecks(0);

    /// An amount from kopecks; `None` above the gateway's 12-digit limit.
    pub const fn new(kopecks: u64) -> Option<Kopecks> {
        if kopecks > MAX_KOPECKS {
            None
        } else {
            Some(Kopecks(kopecks))
        }
    }

    /// Whole roubles, for tests and constants.
    pub const fn from_roubles(roubles: u64) -> Option<Kopecks> {
        match roubles.checked_mul(100) {
            Some(k) => Kopecks::new(k),
            None => None,
        }
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Kopecks) -> Option<Kopecks> {
        self.0.checked_add(other.0).and_then(Kopecks::new)
    }

    pub fn checked_sub(self, other: Kopecks) -> Option<Kopecks> {
        self.0.checked_sub(other.0).map(Kopecks)
    }

    /// The sum of amounts, or `None` when it leaves the gateway's range: totals fail closed,
    /// never fall back to zero.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Kopecks>) -> Option<Kopecks> {
        amounts
            .into_iter()
            .try_fold(Kopecks::ZERO, |sum, k| sum.checked_add(k))
    }

    /// `max(self - other, 0)` for "what is left" arithmetic.
    pub fn saturating_sub(self, other: Kopecks) -> Kopecks {
        Kopecks(self.0.saturating_sub(other.0))
    }

    /// Parses what a cashier types: `1499`, `1499.5`, `1499.50`, `1 499,50`.
    /// Spaces (also no-break spaces) may only separate groups of three digits.
    pub fn parse_amount(input: &str) -> Result<Kopecks, AmountError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let shown = text.to_string();
        if let Some(rest) = text.strip_prefix('-') {
            // Only call it negative when the rest looks like a number; "-abc" is just not a number.
            if rest.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
                return Err(AmountError::Negative(shown));
            }
            return Err(AmountError::NotANumber(shown));
        }
        let text = text.strip_prefix('+').unwrap_or(text);

        let (whole, fraction) = match text.find([',', '.']) {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        let whole_digits = whole_part_digits(whole, &shown)?;
        let fraction_digits = match fraction {
            None => String::new(),
            Some(f) => {
                if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) {
                    return Err(AmountError::NotANumber(shown));
                }
                if f.len() > 2 {
                    return Err(AmountError::TooManyDecimals(shown));
                }
                f.to_string()
            }
        };
        if whole_digits.is_empty() && fraction_digits.is_empty() {
            return Err(AmountError::NotANumber(shown));
        }

        let whole_value = whole_digits.trim_start_matches('0');
        // 10 rouble digits + 2 kopeck digits = the gateway's 12-digit limit.
        if whole_value.len() > 10 {
            return Err(AmountError::TooLarge(shown));
        }
        let roubles: u64 = if whole_value.is_empty() {
            0
        } else {
            whole_value
                .parse()
                .map_err(|_| AmountError::NotANumber(shown.clone()))?
        };
        let kopecks_part: u64 = match fraction_digits.len() {
            0 => 0,
            1 => fraction_digits.parse::<u64>().unwrap_or(0) * 10,
            _ => fraction_digits.parse::<u64>().unwrap_or(0),
        };
        let total = roubles * 100 + kopecks_part;
        if total == 0 {
            return Err(AmountError::Zero(shown));
        }
        Kopecks::new(total).ok_or(AmountError::TooLarge(shown))
    }

    /// `1 499,50` without the currency sign (for narrow displays that add «руб» themselves).
    /// Roubles and kopecks as a spreadsheet reads a number: `1499,50` (no grouping).
    pub fn format_plain(self) -> String {
        format!("{},{:02}", self.0 / 100, self.0 % 100)
    }

    pub fn format_number(self) -> String {
        let roubles = self.0 / 100;
        let kopecks = self.0 % 100;
        let digits = roubles.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(' ');
            }
            grouped.push(c);
        }
        format!("{grouped},{kopecks:02}")
    }
}

/// Checks the digits and the thousands grouping of the rouble part; returns its digits.
fn whole_part_digits(whole: &str, shown: &str) -> Result<String, AmountError> {
    let is_space = |c: char| c == ' ' || c == '\u{a0}' || c == '\u{202f}';
    if !whole.chars().all(|c| c.is_ascii_digit() || is_space(c)) {
        return Err(AmountError::NotANumber(shown.to_string()));
    }
    if !whole.chars().any(is_space) {
        return Ok(whole.to_string());
    }
    let groups: Vec<&str> = whole.split(is_space).collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    if !first_ok || !rest_ok {
        return Err(AmountError::BadGrouping(shown.to_string()));
    }
    Ok(groups.concat())
}

impl fmt::Display for Kopecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ₽", self.format_number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u64) -> Kopecks {
        Kopecks::new(n).unwrap()
    }

    #[test]
    fn parses_the_forms_a_cashier_types() {
        assert_eq!(Kopecks::parse_amount("1499"), Ok(k(149_900)));
        assert_eq!(Kopecks::parse_amount("1499.5"), Ok(k(149_950)));
        assert_eq!(Kopecks::parse_amount("1499.50"), Ok(k(149_950)));
        assert_eq!(Kopecks::parse_amount("1 499,50"), Ok(k(149_950)));
        assert_eq!(Kopecks::parse_amount("1\u{a0}499,50"), Ok(k(149_950)));
        assert_eq!(
            Kopecks::parse_amount(" 12 345 678,09 "),
            Ok(k(1_234_567_809))
        );
        assert_eq!(Kopecks::parse_amount("0,01"), Ok(k(1)));
        assert_eq!(Kopecks::parse_amount(",5"), Ok(k(50)));
        assert_eq!(Kopecks::parse_amount("9999999999.99"), Ok(k(MAX_KOPECKS)));
    }

    #[test]
    fn each_bad_amount_has_its_own_message() {
        let cases = [
            ("-5", AmountError::Negative("-5".into())),
            ("0", AmountError::Zero("0".into())),
            ("0,00", AmountError::Zero("0,00".into())),
            ("1,505", AmountError::TooManyDecimals("1,505".into())),
            ("10000000000", AmountError::TooLarge("10000000000".into())),
            ("сто", AmountError::NotANumber("сто".into())),
            ("12abc", AmountError::NotANumber("12abc".into())),
            ("1,2,3", AmountError::NotANumber("1,2,3".into())),
            ("1.", AmountError::NotANumber("1.".into())),
            ("1 49,50", AmountError::BadGrouping("1 49,50".into())),
            ("", AmountError::Empty),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Kopecks::parse_amount(input),
                Err(expected),
                "input {input:?}"
            );
        }
        let messages: std::collections::HashSet<String> =
            ["-5", "0", "1,505", "10000000000", "сто", "1 49,50", ""]
                .iter()
                .map(|s| Kopecks::parse_amount(s).unwrap_err().to_string())
                .collect();
        assert_eq!(messages.len(), 7, "every refusal reads differently");
        assert!(Kopecks::parse_amount("-5")
            .unwrap_err()
            .to_string()
            .contains("отрицательная"));
    }

    #[test]
    fn formats_russian_style() {
        assert_eq!(k(149_950).to_string(), "1 499,50 ₽");
        assert_eq!(k(5).to_string(), "0,05 ₽");
        assert_eq!(k(100_000_000).to_string(), "1 000 000,00 ₽");
        assert_eq!(k(1_234_500).format_number(), "12 345,00");
    }

    #[test]
    fn deserialising_checks_the_limit_and_sums_fail_closed() {
        assert_eq!(
            serde_json::from_str::<Kopecks>("149950").unwrap(),
            k(149_950)
        );
        let err = serde_json::from_str::<Kopecks>("1000000000000").unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        assert!(serde_json::from_str::<Kopecks>("-1").is_err());
        assert_eq!(Kopecks::checked_sum([k(1), k(2)]), Some(k(3)));
        assert_eq!(Kopecks::checked_sum([k(MAX_KOPECKS), k(1)]), None);
    }

    #[test]
    fn new_refuses_more_than_twelve_digits() {
        assert!(Kopecks::new(MAX_KOPECKS).is_some());
        assert!(Kopecks::new(MAX_KOPECKS + 1).is_none());
    }
}
