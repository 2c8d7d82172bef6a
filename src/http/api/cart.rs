//! The sale's cart in the till API: `items` as the POS sends them (decimal strings, never JSON
//! numbers) and as an order shows them. Every bad line field is named (`items[2].price`) in the
//! one 422 the sale answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::types::FieldProblem;
use crate::money::Kopecks;
use crate::orders::cart::{
    Cart, CartProblem, Item, ItemName, PaymentMethod, PaymentObject, Quantity, Vat,
};

/// One line of the cart, as the POS sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemBody {
    /// 1–128 characters, no control characters (tag 1030).
    #[schema(example = "Кофемашина DeLonghi")]
    pub name: String,
    /// A decimal string, up to three decimals for weighed goods: `"1"`, `"0.250"`.
    #[schema(example = "1", pattern = r"^ *[0-9]{1,5}([.,][0-9]{1,3})? *$")]
    pub quantity: String,
    /// The price of one unit in roubles, after discounts: `"1499.00"`.
    #[schema(example = "1499.00")]
    pub price: String,
    /// `none`, `0`, `5`, `7`, `10`, `22`, `5/105`, `7/107`, `10/110`, `22/122` (the rates since
    /// 2026); `20` and `20/120` only for the return of an earlier sale.
    #[schema(example = "22")]
    pub vat: String,
    /// Tag 1212: `commodity` (the default), `excise`, `job`, `service`, `payment`,
    /// `agent_commission`, `another`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_object: Option<String>,
    /// Tag 1214: `full_payment` («полный расчёт», the default), `full_prepayment`,
    /// `prepayment`, `advance`, `partial_payment`, `credit`, `credit_payment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
}

const ITEM_FIELDS: [&str; 6] = [
    "name",
    "quantity",
    "price",
    "vat",
    "payment_object",
    "payment_method",
];

/// One line of an order's cart, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    pub name: String,
    /// As typed: `"1"`, `"0,25"`.
    pub quantity: String,
    pub price: Kopecks,
    /// Quantity × price, rounded to the kopeck.
    pub amount: Kopecks,
    pub vat: String,
    pub payment_object: String,
    pub payment_method: String,
}

impl From<&Item> for ItemView {
    fn from(i: &Item) -> ItemView {
        ItemView {
            name: i.name.to_string(),
            quantity: i.quantity.to_string(),
            price: i.price,
            amount: i.amount().unwrap_or(Kopecks::ZERO),
            vat: i.vat.code().to_string(),
            payment_object: i.object.code().to_string(),
            payment_method: i.method.code().to_string(),
        }
    }
}

/// The `items` of a sale of `amount`: each line checked, every problem named; then the lines
/// must add up to the amount. `new_sale`: 20 % and 20/120 are refused (replaced in 2026).
pub fn read_items(
    value: &serde_json::Value,
    amount: Option<Kopecks>,
    new_sale: bool,
) -> Result<Cart, Vec<FieldProblem>> {
    let problem = |field: String, text: String| FieldProblem {
        field,
        problem: text,
    };
    let Some(lines) = value.as_array() else {
        return Err(vec![problem(
            "items".into(),
            "должно быть списком позиций: [{\"name\", \"quantity\", \"price\", \"vat\"}, …]".into(),
        )]);
    };
    if lines.len() > crate::orders::cart::MAX_ITEMS {
        return Err(vec![problem(
            "items".into(),
            format!(
                "{} позиций, допустимо не больше {}",
                lines.len(),
                crate::orders::cart::MAX_ITEMS
            ),
        )]);
    }
    let mut problems = Vec::new();
    let mut items = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match read_item(line, new_sale) {
            Ok(item) => items.push(item),
            Err(found) => problems.extend(
                found
                    .into_iter()
                    .map(|(field, text)| problem(format!("items[{i}]{field}"), text)),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Without a valid amount its own problem is reported; the sum cannot be checked.
    let Some(amount) = amount else {
        return Err(Vec::new());
    };
    Cart::new(items, amount).map_err(|CartProblem(text)| vec![problem("items".into(), text)])
}

/// The value, or its problem noted under `.field`.
fn checked<T>(
    problems: &mut Vec<(String, String)>,
    field: &str,
    r: Result<T, CartProblem>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(CartProblem(text)) => {
            problems.push((format!(".{field}"), text));
            None
        }
    }
}

/// One line; its problems as (`.field`, text).
fn read_item(line: &serde_json::Value, new_sale: bool) -> Result<Item, Vec<(String, String)>> {
    let Some(map) = line.as_object() else {
        return Err(vec![(
            String::new(),
            "позиция должна быть объектом {\"name\", \"quantity\", \"price\", \"vat\"}".into(),
        )]);
    };
    let mut problems = Vec::new();
    for key in map.keys().filter(|k| !ITEM_FIELDS.contains(&k.as_str())) {
        problems.push((
            format!(".{key}"),
            format!("неизвестное поле; допустимы: {}", ITEM_FIELDS.join(", ")),
        ));
    }
    let mut text = |name: &str, required: bool| -> Option<String> {
        match map.get(name) {
            None | Some(serde_json::Value::Null) if required => {
                problems.push((format!(".{name}"), "обязательное поле".into()));
                None
            }
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push((
                    format!(".{name}"),
                    "должно быть строкой (числа JSON не принимаются)".into(),
                ));
                None
            }
        }
    };
    let (name, quantity, price, vat, object, method) = (
        text("name", true),
        text("quantity", true),
        text("price", true),
        text("vat", true),
        text("payment_object", false),
        text("payment_method", false),
    );
    let name = name.and_then(|s| checked(&mut problems, "name", ItemName::parse(&s)));
    let quantity = quantity.and_then(|s| checked(&mut problems, "quantity", Quantity::parse(&s)));
    let price = price.and_then(|s| {
        checked(
            &mut problems,
            "price",
            Kopecks::parse_amount(&s).map_err(|e| CartProblem(e.to_string())),
        )
    });
    let vat = vat.and_then(|s| {
        checked(
            &mut problems,
            "vat",
            Vat::parse(&s).and_then(|v| {
                if new_sale && v.before_2026() {
                    Err(CartProblem(format!(
                        "ставка {} действовала до 2026 года; для продажи — 22 или 22/122",
                        v.code()
                    )))
                } else {
                    Ok(v)
                }
            }),
        )
    });
    let object = match object {
        Some(s) => checked(&mut problems, "payment_object", PaymentObject::parse(&s)),
        None => Some(PaymentObject::Commodity),
    };
    let method = match method {
        Some(s) => checked(&mut problems, "payment_method", PaymentMethod::parse(&s)),
        None => Some(PaymentMethod::FullPayment),
    };
    match (name, quantity, price, vat, object, method) {
        (Some(name), Some(quantity), Some(price), Some(vat), Some(object), Some(method))
            if problems.is_empty() =>
        {
            Ok(Item {
                name,
                quantity,
                price,
                vat,
                object,
                method,
            })
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bad_line_field_is_named_and_the_sum_must_match() {
        let amount = Kopecks::new(30_000);
        let good = json!([
            {"name": "Кофе", "quantity": "2", "price": "100.00", "vat": "22"},
            {"name": "Сыр", "quantity": "0.500", "price": "200", "vat": "10", "payment_method": "full_prepayment"}
        ]);
        let cart = read_items(&good, amount, true).unwrap();
        assert_eq!(cart.items().len(), 2);
        assert_eq!(cart.items()[1].method, PaymentMethod::FullPrepayment);
        let bad = json!([
            {"name": "", "quantity": 1, "price": "x", "vat": "18", "colour": "red"},
            {"name": "Сыр", "quantity": "0.5", "price": "200", "vat": "20"}
        ]);
        let problems = read_items(&bad, amount, true).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for f in [
            "items[0].colour",
            "items[0].name",
            "items[0].quantity",
            "items[0].price",
            "items[0].vat",
            "items[1].vat",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        let off = read_items(&good, Kopecks::new(30_001), true).unwrap_err();
        assert_eq!(off[0].field, "items");
        assert!(off[0].problem.contains("300,00 ₽") && off[0].problem.contains("300,01 ₽"));
        assert!(read_items(&json!({"name": "x"}), amount, true).is_err());
        assert!(read_items(&json!([1]), amount, true).is_err());
    }
}
