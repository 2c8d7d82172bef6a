//! The cart the bank's cloud fiscalisation issues the receipt from (`orderBundle`), in the form
//! each gateway takes it, and the receipts it reports (`getReceiptStatus`).
//!
//! Legacy host (form-encoded, FFD 1.05): `orderBundle` is a JSON string with
//! `orderCreationDate`, `customerDetails {email, phone}` and `cartItems.items[]` whose lines
//! carry `itemAttributes` (tags 1214 and 1212 as numeric strings); the taxation system is the
//! separate `taxSystem`. Ecom host (JSON, FFD 1.2 or 1.05): `orderBundle` is an object with
//! `ffdVersion`, `receiptType`, `company {email, sno, inn, paymentAddress}`, `payments
//! [{type: 1, sum}]`, `total` and `cartItems.items[]` with `paymentMethod` and `paymentObject`
//! (a number as a string for 1.2); the customer's phone and e-mail are the request's own
//! fields. Amounts in kopecks; a line's `itemAmount` is quantity × price rounded to the kopeck,
//! and the lines add up to `total` and to the order's amount (the bank checks both).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::client::Dialect;
use crate::money::Kopecks;

/// `sell` (приход) or `sell_refund` (возврат прихода).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleReceipt {
    Sell,
    SellRefund,
}

/// One line of the cart, with the bank's codes already chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleItem {
    pub name: String,
    /// Thousandths.
    pub quantity: u64,
    pub price: Kopecks,
    pub amount: Kopecks,
    /// The bank's `tax.taxType`.
    pub tax_type: u8,
    /// Tag 1214: its number and the ecom host's name (`full_payment`).
    pub payment_method: (u8, &'static str),
    /// Tag 1212: its number and the FFD 1.05 name (`commodity`).
    pub payment_object: (u8, &'static str),
}

/// Who sells: the ecom host's `company`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleCompany {
    pub email: Option<String>,
    /// `osn`, `usn_income`, …
    pub sno: String,
    pub inn: Option<String>,
    pub payment_address: Option<String>,
}

/// A receipt's cart for the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBundle {
    pub receipt: BundleReceipt,
    pub items: Vec<BundleItem>,
    pub total: Kopecks,
    /// `1.05` or `1.2` (the ecom host; the legacy host takes FFD 1.05).
    pub ffd: String,
    pub company: BundleCompany,
    /// The legacy host's `taxSystem`.
    pub tax_system: u8,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Unix seconds.
    pub created: i64,
}

/// A quantity as text in the JSON (`1`, `0.5`): never through a float.
fn quantity(thousandths: u64) -> Box<RawValue> {
    let (whole, part) = (thousandths / 1000, thousandths % 1000);
    let text = if part == 0 {
        whole.to_string()
    } else {
        let part = format!("{part:03}");
        format!("{whole}.{}", part.trim_end_matches('0'))
    };
    RawValue::from_string(text).unwrap_or_else(|_| RawValue::from_string("1".into()).unwrap())
}

impl OrderBundle {
    /// The bundle as the dialect's JSON.
    pub fn to_json(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::Legacy => self.legacy(),
            Dialect::Ecom => self.ecom(),
        }
    }

    fn legacy(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                json!({
                    "positionId": i + 1,
                    "name": item.name,
                    "quantity": {"value": quantity(item.quantity), "measure": "шт"},
                    "itemAmount": item.amount.get(),
                    "itemCode": (i + 1).to_string(),
                    "itemPrice": item.price.get(),
                    "tax": {"taxType": item.tax_type},
                    "itemAttributes": {"attributes": [
                        {"name": "paymentMethod", "value": item.payment_method.0.to_string()},
                        {"name": "paymentObject", "value": item.payment_object.0.to_string()},
                    ]},
                })
            })
            .collect();
        let mut customer = serde_json::Map::new();
        if let Some(email) = &self.email {
            customer.insert("email".into(), json!(email));
        }
        if let Some(phone) = &self.phone {
            customer.insert("phone".into(), json!(phone));
        }
        json!({
            "orderCreationDate": self.created,
            "customerDetails": customer,
            "cartItems": {"items": items},
        })
    }

    fn ecom(&self) -> Value {
        let ffd12 = self.ffd == "1.2";
        let items: Vec<Value> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let object = if ffd12 {
                    json!(item.payment_object.0.to_string())
                } else {
                    json!(item.payment_object.1)
                };
                let quantity = if ffd12 {
                    json!({"value": quantity(item.quantity), "measure": "0"})
                } else {
                    json!({"value": quantity(item.quantity), "measure": "шт"})
                };
                json!({
                    "positionId": (i + 1).to_string(),
                    "itemCode": (i + 1).to_string(),
                    "name": item.name,
                    "quantity": quantity,
                    "itemPrice": item.price.get(),
                    "itemAmount": item.amount.get(),
                    "paymentMethod": item.payment_method.1,
                    "paymentObject": object,
                    "tax": {"taxType": item.tax_type},
                })
            })
            .collect();
        let mut company = serde_json::Map::new();
        company.insert("sno".into(), json!(self.company.sno));
        for (key, value) in [
            ("email", &self.company.email),
            ("inn", &self.company.inn),
            ("paymentAddress", &self.company.payment_address),
        ] {
            if let Some(v) = value {
                company.insert(key.into(), json!(v));
            }
        }
        json!({
            "ffdVersion": self.ffd,
            "receiptType": match self.receipt {
                BundleReceipt::Sell => "sell",
                BundleReceipt::SellRefund => "sell_refund",
            },
            "company": company,
            "payments": [{"type": 1, "sum": self.total.get()}],
            "total": self.total.get(),
            "cartItems": {"items": items},
        })
    }
}

/// `getReceiptStatus`: the receipts the bank's cloud made for an order.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptStatusReport {
    #[serde(default)]
    pub receipts: Vec<BankReceipt>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankReceipt {
    #[serde(default)]
    pub receipt_id: Option<String>,
    /// `AUTHORIZATION`, `PREAUTHORIZATION`, `COMPLETION`, `REVERSAL`, `REFUND`.
    #[serde(default)]
    pub operation_type: String,
    /// `SELL` or `SELL_REFUND`.
    #[serde(default)]
    pub receipt_type: String,
    /// 0 undefined, 1 waiting to be sent, 2 sent, 3 done, 4 processing error, 5 send error
    /// (attempts exhausted), 6 invalid data.
    #[serde(default)]
    pub receipt_status: i64,
    #[serde(default)]
    pub payload: Option<ReceiptPayload>,
    #[serde(default)]
    pub error: Option<ReceiptError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPayload {
    #[serde(default)]
    pub fiscal_document_number: Option<Value>,
    #[serde(default)]
    pub fiscal_document_attribute: Option<Value>,
    #[serde(default)]
    pub fn_number: Option<String>,
    /// Kopecks.
    #[serde(default)]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptError {
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub text: Option<String>,
    /// 1 retry unchanged, 2 fix the cart, 3 fix the ККТ first.
    #[serde(default)]
    pub recommendation: Option<i64>,
}

impl BankReceipt {
    /// A sell or a return receipt, by the bank's words.
    pub fn is_return(&self) -> bool {
        self.receipt_type.eq_ignore_ascii_case("SELL_REFUND")
            || matches!(self.operation_type.as_str(), "REFUND" | "REVERSAL")
    }
}

/// A number the bank may send as a JSON number or a string.
pub fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(ffd: &str) -> OrderBundle {
        OrderBundle {
            receipt: BundleReceipt::Sell,
            items: vec![BundleItem {
                name: "Сыр".into(),
                quantity: 500,
                price: Kopecks::new(1000).unwrap(),
                amount: Kopecks::new(500).unwrap(),
                tax_type: 2,
                payment_method: (4, "full_payment"),
                payment_object: (1, "commodity"),
            }],
            total: Kopecks::new(500).unwrap(),
            ffd: ffd.into(),
            company: BundleCompany {
                sno: "osn".into(),
                ..Default::default()
            },
            tax_system: 0,
            email: Some("a@b.ru".into()),
            phone: None,
            created: 1_700_000_000,
        }
    }

    #[test]
    fn each_dialect_gets_its_own_shape_and_quantities_stay_exact() {
        let legacy = bundle("1.05").to_json(Dialect::Legacy).to_string();
        assert!(
            legacy.contains(r#""quantity":{"measure":"шт","value":0.5}"#),
            "{legacy}"
        );
        assert!(
            legacy.contains(r#"{"name":"paymentMethod","value":"4"}"#),
            "{legacy}"
        );
        assert!(
            legacy.contains(r#""customerDetails":{"email":"a@b.ru"}"#),
            "{legacy}"
        );
        let ecom = bundle("1.2").to_json(Dialect::Ecom);
        assert_eq!(ecom["ffdVersion"], "1.2");
        assert_eq!(ecom["receiptType"], "sell");
        assert_eq!(ecom["payments"][0]["sum"], 500);
        assert_eq!(ecom["cartItems"]["items"][0]["paymentObject"], "1");
        let ecom105 = bundle("1.05").to_json(Dialect::Ecom);
        assert_eq!(
            ecom105["cartItems"]["items"][0]["paymentObject"],
            "commodity"
        );
    }
}
