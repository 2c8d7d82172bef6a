//! `[fiscal] mode = "bank"`: the carts the bank's cloud fiscalisation issues the receipts from,
//! built from the order the way its receipts are (`orders::receipt::lines_for`), with the
//! bank's codes for the VAT rates, the taxation system and the seller. Sent with register.do
//! (the sell receipt), and on the ecom host with refund.do and reverse.do (the returns).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::gateway::{BundleCompany, BundleItem, BundleReceipt, OrderBundle};
use crate::money::Kopecks;
use crate::orders::cart::{Item, Vat};
use crate::orders::order::Order;
use crate::orders::receipt::{lines_for, Movement, ReceiptKind, ReceiptPolicy};

/// What chasti needs to give the bank a cart.
#[derive(Debug, Clone)]
pub struct BankCarts {
    /// `1.05` or `1.2` (the ecom host).
    pub ffd: String,
    pub company: BundleCompany,
    /// The legacy host's `taxSystem`.
    pub tax_system: u8,
    /// The bank's `tax.taxType` of each VAT rate.
    pub tax_types: BTreeMap<Vat, u8>,
    /// Whether later operations carry a cart (the ecom host takes one with deposit.do,
    /// refund.do and reverse.do).
    pub with_operations: bool,
}

impl BankCarts {
    /// The cart of a receipt of `kind` for `amount` of this order; None when a line's VAT has
    /// no code (the till API refuses such a sale before the bank is called).
    pub fn bundle(
        &self,
        order: &Order,
        kind: ReceiptKind,
        amount: Kopecks,
        movement: &Movement,
        policy: &ReceiptPolicy,
        now: DateTime<Utc>,
    ) -> Option<OrderBundle> {
        let lines = lines_for(order, kind, amount, movement, policy);
        let items = lines
            .iter()
            .map(|i| self.item(i))
            .collect::<Option<Vec<_>>>()?;
        Some(OrderBundle {
            receipt: match kind {
                ReceiptKind::Sell => BundleReceipt::Sell,
                ReceiptKind::SellReturn => BundleReceipt::SellRefund,
            },
            items,
            total: amount,
            ffd: self.ffd.clone(),
            company: self.company.clone(),
            tax_system: self.tax_system,
            email: order.customer.email.as_ref().map(|e| e.to_string()),
            phone: order.customer.phone.as_ref().map(|p| p.to_string()),
            created: now.timestamp(),
        })
    }

    fn item(&self, i: &Item) -> Option<BundleItem> {
        Some(BundleItem {
            name: i.name.to_string(),
            quantity: i.quantity.thousandths(),
            price: i.price,
            amount: i.amount()?,
            tax_type: *self.tax_types.get(&i.vat)?,
            payment_method: (i.method.number(), i.method.code()),
            payment_object: (i.object.number(), i.object.code()),
        })
    }
}

impl super::Engine {
    /// The cart for a receipt of `kind`, when the bank issues receipts; for a return only when
    /// the host takes one with it.
    pub(super) fn bank_cart(
        &self,
        order: &Order,
        kind: ReceiptKind,
        amount: Kopecks,
        movement: &Movement,
    ) -> Option<OrderBundle> {
        let settings = &self.inner.settings;
        let carts = settings.bank_carts.as_ref()?;
        let policy = settings.receipts.as_ref()?;
        if kind == ReceiptKind::SellReturn && !carts.with_operations {
            return None;
        }
        carts.bundle(order, kind, amount, movement, policy, self.now())
    }

    /// getReceiptStatus: what the bank's cloud fiscalisation made for the order.
    pub async fn bank_receipts(
        &self,
        order: &Order,
    ) -> Result<crate::gateway::ReceiptStatusReport, crate::gateway::GatewayError> {
        let reference = match order.state.bank_id() {
            Some(id) => crate::gateway::OrderRef::OrderId(id.clone()),
            None => crate::gateway::OrderRef::OrderNumber(order.order_number.to_string()),
        };
        self.journaled(
            crate::gateway::Method::ReceiptStatus,
            &order.order_number,
            self.inner.gateway.receipt_status(&reference),
        )
        .await
    }
}
