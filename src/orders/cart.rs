//! What the customer buys: the cart a sale may carry, line by line, as a fiscal receipt (54-ФЗ)
//! lists it: name, quantity (up to three decimals, for weighed goods), price, VAT rate, what is
//! sold (tag 1212) and how it is paid for (tag 1214). A line's sum is quantity × price rounded to
//! the kopeck, as the ККТ and the bank compute it; the lines must add up to the sale's amount.
//! Pure: parsing and arithmetic, no I/O.

use serde::{Deserialize, Serialize};

use crate::money::Kopecks;

/// The most lines one sale carries (a till's receipt, not a warehouse's).
pub const MAX_ITEMS: usize = 100;
/// The longest line name (tag 1030 allows 128 characters).
pub const NAME_MAX: usize = 128;
/// The largest quantity of one line: 99 999.999 (the bank's and the ККТ's limit).
pub const QUANTITY_MAX: u64 = 99_999_999;

/// The lines of a sale, in the order the POS gave them; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    items: Vec<Item>,
}

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: ItemName,
    pub quantity: Quantity,
    /// The price of one unit, after discounts.
    pub price: Kopecks,
    pub vat: Vat,
    pub object: PaymentObject,
    pub method: PaymentMethod,
}

/// A line's name: 1 to [`NAME_MAX`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemName(String);

/// A quantity in thousandths (1 000 = one piece or one kilogram), more than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Quantity(u64);

/// The VAT rate of a line (tag 1199): the rates in force since 2026, and 20 % (20/120) for
/// the return of a sale made before 2026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Vat {
    None,
    Vat0,
    Vat5,
    Vat7,
    Vat10,
    Vat22,
    Vat105,
    Vat107,
    Vat110,
    Vat122,
    Vat20,
    Vat120,
}

/// What is sold (tag 1212), the kinds a till sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentObject {
    Commodity,
    Excise,
    Job,
    Service,
    Payment,
    AgentCommission,
    Another,
}

/// How the line is paid for (tag 1214).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentMethod {
    FullPrepayment,
    Prepayment,
    Advance,
    FullPayment,
    PartialPayment,
    Credit,
    CreditPayment,
}

/// What is wrong with a cart or a line, in the cashier's words (Russian), with what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CartProblem(pub String);

impl ItemName {
    pub fn parse(text: &str) -> Result<ItemName, CartProblem> {
        let trimmed = text.trim();
        let length = trimmed.chars().count();
        if length == 0 {
            return Err(CartProblem("пустое название позиции".into()));
        }
        if length > NAME_MAX {
            return Err(CartProblem(format!(
                "название длиннее {NAME_MAX} символов ({length})"
            )));
        }
        if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
            return Err(CartProblem(format!(
                "в названии управляющий символ U+{:04X}; допустим только печатный текст",
                c as u32
            )));
        }
        Ok(ItemName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ItemName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Quantity {
    pub const ONE: Quantity = Quantity(1000);

    pub fn from_thousandths(thousandths: u64) -> Option<Quantity> {
        (1..=QUANTITY_MAX)
            .contains(&thousandths)
            .then_some(Quantity(thousandths))
    }

    pub fn thousandths(self) -> u64 {
        self.0
    }

    /// `1`, `0.5`, `1,250`: at most three decimals, more than zero, at most 99 999.999.
    pub fn parse(text: &str) -> Result<Quantity, CartProblem> {
        let refuse = |why: &str| {
            CartProblem(format!(
                "количество «{}»: {why}; пример: \"1\" или \"0.250\"",
                text.chars().take(20).collect::<String>()
            ))
        };
        let t = text.trim();
        let (whole, fraction) = match t.find(['.', ',']) {
            Some(at) => (&t[..at], &t[at + 1..]),
            None => (t, ""),
        };
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(refuse("нужно число"));
        }
        if fraction.len() > 3 {
            return Err(refuse("не больше трёх знаков после запятой"));
        }
        if whole.trim_start_matches('0').len() > 5 {
            return Err(refuse("не больше 99 999,999"));
        }
        let whole: u64 = whole.parse().map_err(|_| refuse("нужно число"))?;
        let fraction: u64 = format!("{fraction:0<3}")
            .parse()
            .map_err(|_| refuse("нужно число"))?;
        Quantity::from_thousandths(whole * 1000 + fraction)
            .ok_or_else(|| refuse("должно быть больше нуля и не больше 99 999,999"))
    }
}

impl std::fmt::Display for Quantity {
    /// `1`, `0,5`, `1,25`: the decimals a person writes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, part) = (self.0 / 1000, self.0 % 1000);
        if part == 0 {
            write!(f, "{whole}")
        } else {
            let part = format!("{part:03}");
            write!(f, "{whole},{}", part.trim_end_matches('0'))
        }
    }
}

impl Vat {
    pub const ALL: [Vat; 12] = [
        Vat::None,
        Vat::Vat0,
        Vat::Vat5,
        Vat::Vat7,
        Vat::Vat10,
        Vat::Vat22,
        Vat::Vat105,
        Vat::Vat107,
        Vat::Vat110,
        Vat::Vat122,
        Vat::Vat20,
        Vat::Vat120,
    ];

    /// The API's spelling: `none`, `0`, `5`, `7`, `10`, `22`, `5/105`, `7/107`, `10/110`,
    /// `22/122`, `20`, `20/120`.
    pub fn code(self) -> &'static str {
        match self {
            Vat::None => "none",
            Vat::Vat0 => "0",
            Vat::Vat5 => "5",
            Vat::Vat7 => "7",
            Vat::Vat10 => "10",
            Vat::Vat22 => "22",
            Vat::Vat105 => "5/105",
            Vat::Vat107 => "7/107",
            Vat::Vat110 => "10/110",
            Vat::Vat122 => "22/122",
            Vat::Vat20 => "20",
            Vat::Vat120 => "20/120",
        }
    }

    pub fn parse(text: &str) -> Result<Vat, CartProblem> {
        let t = text.trim();
        Vat::ALL.into_iter().find(|v| v.code() == t).ok_or_else(|| {
            CartProblem(format!(
                "ставка НДС «{}» не знакома; допустимо: {}",
                t.chars().take(20).collect::<String>(),
                Vat::ALL.map(Vat::code).join(", ")
            ))
        })
    }

    /// 20 % and 20/120 were replaced by 22 % and 22/122 on 1 January 2026 (425-ФЗ): only the
    /// return of an earlier sale may carry them.
    pub fn before_2026(self) -> bool {
        matches!(self, Vat::Vat20 | Vat::Vat120)
    }

    /// As a receipt prints it.
    pub fn russian(self) -> &'static str {
        match self {
            Vat::None => "без НДС",
            Vat::Vat0 => "НДС 0%",
            Vat::Vat5 => "НДС 5%",
            Vat::Vat7 => "НДС 7%",
            Vat::Vat10 => "НДС 10%",
            Vat::Vat22 => "НДС 22%",
            Vat::Vat105 => "НДС 5/105",
            Vat::Vat107 => "НДС 7/107",
            Vat::Vat110 => "НДС 10/110",
            Vat::Vat122 => "НДС 22/122",
            Vat::Vat20 => "НДС 20%",
            Vat::Vat120 => "НДС 20/120",
        }
    }
}

impl PaymentObject {
    pub const ALL: [PaymentObject; 7] = [
        PaymentObject::Commodity,
        PaymentObject::Excise,
        PaymentObject::Job,
        PaymentObject::Service,
        PaymentObject::Payment,
        PaymentObject::AgentCommission,
        PaymentObject::Another,
    ];

    /// The API's spelling (the bank's FFD 1.05 names).
    pub fn code(self) -> &'static str {
        match self {
            PaymentObject::Commodity => "commodity",
            PaymentObject::Excise => "excise",
            PaymentObject::Job => "job",
            PaymentObject::Service => "service",
            PaymentObject::Payment => "payment",
            PaymentObject::AgentCommission => "agent_commission",
            PaymentObject::Another => "another",
        }
    }

    /// Tag 1212's number.
    pub fn number(self) -> u8 {
        match self {
            PaymentObject::Commodity => 1,
            PaymentObject::Excise => 2,
            PaymentObject::Job => 3,
            PaymentObject::Service => 4,
            PaymentObject::Payment => 10,
            PaymentObject::AgentCommission => 11,
            PaymentObject::Another => 13,
        }
    }

    pub fn parse(text: &str) -> Result<PaymentObject, CartProblem> {
        let t = text.trim();
        PaymentObject::ALL
            .into_iter()
            .find(|v| v.code() == t)
            .ok_or_else(|| {
                CartProblem(format!(
                    "предмет расчёта «{}» не знаком; допустимо: {}",
                    t.chars().take(20).collect::<String>(),
                    PaymentObject::ALL.map(PaymentObject::code).join(", ")
                ))
            })
    }
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 7] = [
        PaymentMethod::FullPrepayment,
        PaymentMethod::Prepayment,
        PaymentMethod::Advance,
        PaymentMethod::FullPayment,
        PaymentMethod::PartialPayment,
        PaymentMethod::Credit,
        PaymentMethod::CreditPayment,
    ];

    /// The API's spelling (the bank's names).
    pub fn code(self) -> &'static str {
        match self {
            PaymentMethod::FullPrepayment => "full_prepayment",
            PaymentMethod::Prepayment => "prepayment",
            PaymentMethod::Advance => "advance",
            PaymentMethod::FullPayment => "full_payment",
            PaymentMethod::PartialPayment => "partial_payment",
            PaymentMethod::Credit => "credit",
            PaymentMethod::CreditPayment => "credit_payment",
        }
    }

    /// Tag 1214's number.
    pub fn number(self) -> u8 {
        match self {
            PaymentMethod::FullPrepayment => 1,
            PaymentMethod::Prepayment => 2,
            PaymentMethod::Advance => 3,
            PaymentMethod::FullPayment => 4,
            PaymentMethod::PartialPayment => 5,
            PaymentMethod::Credit => 6,
            PaymentMethod::CreditPayment => 7,
        }
    }

    pub fn parse(text: &str) -> Result<PaymentMethod, CartProblem> {
        let t = text.trim();
        PaymentMethod::ALL
            .into_iter()
            .find(|v| v.code() == t)
            .ok_or_else(|| {
                CartProblem(format!(
                    "способ расчёта «{}» не знаком; допустимо: {}",
                    t.chars().take(20).collect::<String>(),
                    PaymentMethod::ALL.map(PaymentMethod::code).join(", ")
                ))
            })
    }
}

impl Item {
    /// Quantity × price, rounded half up to the kopeck; None past the gateway's range.
    pub fn amount(&self) -> Option<Kopecks> {
        let exact = u128::from(self.quantity.0) * u128::from(self.price.get());
        let rounded = (exact + 500) / 1000;
        u64::try_from(rounded).ok().and_then(Kopecks::new)
    }

    /// `Кофе 2 × 150,00 ₽ = 300,00 ₽`.
    pub fn line(&self) -> String {
        let amount = self
            .amount()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "—".into());
        format!(
            "{} {} × {} = {amount}",
            self.name, self.quantity, self.price
        )
    }
}

impl Cart {
    /// A cart of 1 to [`MAX_ITEMS`] lines whose sums add up to `amount` to the kopeck.
    pub fn new(items: Vec<Item>, amount: Kopecks) -> Result<Cart, CartProblem> {
        if items.is_empty() {
            return Err(CartProblem(
                "нет ни одной позиции; без состава продажи не передавайте items".into(),
            ));
        }
        if items.len() > MAX_ITEMS {
            return Err(CartProblem(format!(
                "{} позиций, допустимо не больше {MAX_ITEMS}",
                items.len()
            )));
        }
        let mut sum = Kopecks::ZERO;
        for (i, item) in items.iter().enumerate() {
            let line = item
                .amount()
                .and_then(|a| sum.checked_add(a))
                .ok_or_else(|| {
                    CartProblem(format!(
                        "позиция {} «{}»: сумма вне допустимого диапазона",
                        i + 1,
                        item.name
                    ))
                })?;
            sum = line;
        }
        if sum != amount {
            let last = items.last().map(Item::line).unwrap_or_default();
            return Err(CartProblem(format!(
                "позиции дают {sum}, а сумма продажи {amount}; они должны совпадать до копейки (последняя позиция: {last})"
            )));
        }
        Ok(Cart { items })
    }

    /// A cart read back from the store (checked when it was made).
    pub fn kept(items: Vec<Item>) -> Cart {
        Cart { items }
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The sum of its lines.
    pub fn total(&self) -> Option<Kopecks> {
        Kopecks::checked_sum(
            self.items
                .iter()
                .map(|i| i.amount().unwrap_or(Kopecks::ZERO)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, quantity: &str, price: u64, vat: Vat) -> Item {
        Item {
            name: ItemName::parse(name).unwrap(),
            quantity: Quantity::parse(quantity).unwrap(),
            price: Kopecks::new(price).unwrap(),
            vat,
            object: PaymentObject::Commodity,
            method: PaymentMethod::FullPayment,
        }
    }

    #[test]
    fn quantities_take_up_to_three_decimals() {
        assert_eq!(Quantity::parse("1").unwrap().thousandths(), 1000);
        assert_eq!(Quantity::parse("0,250").unwrap().thousandths(), 250);
        assert_eq!(Quantity::parse("1.5").unwrap().to_string(), "1,5");
        assert_eq!(
            Quantity::parse("99999.999").unwrap().thousandths(),
            QUANTITY_MAX
        );
        for bad in [
            "0", "0.000", "1.2345", "-1", "1e3", "", " ", "100000", "1..2", "١",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_weighed_lines_sum_rounds_half_up_to_the_kopeck() {
        // 0,333 kg at 100,01 ₽ = 33,30333 ₽ → 33,30 ₽; 0,005 kg at 1,00 ₽ = 0,005 ₽ → 0,01 ₽.
        assert_eq!(
            item("Сыр", "0.333", 10_001, Vat::Vat10).amount(),
            Kopecks::new(3330)
        );
        assert_eq!(
            item("Гвоздь", "0.005", 100, Vat::Vat22).amount(),
            Kopecks::new(1)
        );
    }

    #[test]
    fn the_lines_must_add_up_to_the_amount_to_the_kopeck() {
        let lines = vec![
            item("Кофе", "2", 15_000, Vat::Vat22),
            item("Сыр", "0.333", 10_001, Vat::Vat10),
        ];
        assert!(Cart::new(lines.clone(), Kopecks::new(33_330).unwrap()).is_ok());
        let off = Cart::new(lines, Kopecks::new(33_331).unwrap()).unwrap_err();
        assert!(
            off.0.contains("333,30 ₽") && off.0.contains("333,31 ₽"),
            "{off}"
        );
        assert!(Cart::new(Vec::new(), Kopecks::new(1).unwrap()).is_err());
    }

    #[test]
    fn names_and_codes_are_checked_and_name_what_is_allowed() {
        assert!(ItemName::parse("Кофе «Арабика»").is_ok());
        assert!(ItemName::parse("").is_err());
        assert!(ItemName::parse("a\u{1b}b").is_err());
        assert!(ItemName::parse(&"я".repeat(129)).is_err());
        assert!(ItemName::parse(&"я".repeat(128)).is_ok());
        for v in Vat::ALL {
            assert_eq!(Vat::parse(v.code()), Ok(v));
        }
        assert!(Vat::parse("18").unwrap_err().0.contains("22/122"));
        assert!(PaymentObject::parse("goods")
            .unwrap_err()
            .0
            .contains("commodity"));
        assert!(PaymentMethod::parse("full")
            .unwrap_err()
            .0
            .contains("full_payment"));
    }
}
