//! The merchant's order number at the bank: `PREFIX-TILL-YYMMDD-NNNN`, what cashiers read off
//! the slip and the screen. Unique across restarts and tills because the store takes the number
//! in the transaction that commits its order, before the number goes to the bank.

use chrono::NaiveDate;

use super::{string_type, Invalid, StorePrefix, TillId};

/// The bank takes at most 32 characters (legacy host).
pub const ORDER_NUMBER_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderNumber(String);

impl OrderNumber {
    /// The `seq`-th order of a till on a Moscow day.
    pub fn new(prefix: &StorePrefix, till: &TillId, day: NaiveDate, seq: u64) -> OrderNumber {
        OrderNumber(format!("{prefix}-{till}-{}-{seq:04}", day.format("%y%m%d")))
    }

    /// Reads a number as printed. Cashiers type it, so surrounding spaces are forgiven and
    /// letters are matched case-insensitively on lookup, not here.
    pub fn parse(text: &str) -> Result<OrderNumber, Invalid> {
        let text = text.trim();
        let refuse = || {
            Invalid::new(
                text,
                "PREFIX-TILL-YYMMDD-NNNN, such as S1-1-261123-0006",
                format!("«{text}»: номер заказа вида S1-1-261123-0006"),
            )
        };
        if text.len() > ORDER_NUMBER_MAX {
            return Err(refuse());
        }
        let parts: Vec<&str> = text.split('-').collect();
        let [prefix, till, date, seq] = parts.as_slice() else {
            return Err(refuse());
        };
        let date_ok = date.len() == 6
            && date.bytes().all(|b| b.is_ascii_digit())
            && NaiveDate::parse_from_str(date, "%y%m%d").is_ok();
        let seq_ok = (4..=10).contains(&seq.len()) && seq.bytes().all(|b| b.is_ascii_digit());
        if StorePrefix::parse(prefix).is_err()
            || TillId::parse(till).is_err()
            || !date_ok
            || !seq_ok
        {
            return Err(refuse());
        }
        Ok(OrderNumber(text.to_string()))
    }

    /// The till part of the number.
    pub fn till(&self) -> &str {
        self.0.split('-').nth(1).unwrap_or("")
    }
}

string_type!(
    OrderNumber,
    "The order number as printed on the slip: PREFIX-TILL-YYMMDD-NNNN.",
    32,
    Some("^[A-Za-z0-9]{1,8}-[A-Za-z0-9]{1,4}-[0-9]{6}-[0-9]{4,10}$")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_and_read_back() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let n = OrderNumber::new(
            &StorePrefix::parse("S1").unwrap(),
            &TillId::parse("1").unwrap(),
            day,
            6,
        );
        assert_eq!(n.as_str(), "S1-1-261123-0006");
        assert_eq!(OrderNumber::parse(" S1-1-261123-0006 ").unwrap(), n);
        assert_eq!(n.till(), "1");
        let big = OrderNumber::new(
            &StorePrefix::parse("SHOP0001").unwrap(),
            &TillId::parse("K999").unwrap(),
            day,
            u32::MAX as u64,
        );
        assert!(big.as_str().len() <= ORDER_NUMBER_MAX);
        assert_eq!(OrderNumber::parse(big.as_str()).unwrap(), big);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "S1-1-261123",
            "S1-1-261399-0001",
            "S1-1-261123-01",
            "0195f3b2-7c1e-7d7a-9b1e-5a0f3c2d1e0f",
            "S1-1-261123-0001-x",
        ] {
            assert!(OrderNumber::parse(bad).is_err(), "{bad:?}");
        }
    }
}
