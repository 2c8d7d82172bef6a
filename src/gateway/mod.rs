//! The Sber acquiring gateway: a typed client, its error type, whom it trusts, and the
//! callback checksum. The contract lives in ../shared/reference/sber-gateway.md.

mod bundle;
pub mod checksum;
mod client;
mod codes;
pub mod error;
pub mod tls;
mod types;

pub use bundle::{
    number_text, BankReceipt, BundleCompany, BundleItem, BundleReceipt, OrderBundle,
    ReceiptStatusReport,
};
pub use client::{
    error_chain, is_loopback, BindingPayment, ClientSettings, Credentials, Dialect, GatewayClient,
    CHASTI_PARAMS, CURRENCY_RUB, ECOM_REGISTER_FIELDS,
};
pub use codes::{ActionCode, ErrorCode};
pub use error::GatewayError;
pub use types::{
    BindingInfo, Feature, Method, NameValue, OrderRef, OrderStatus, OrderStatusReport, PageView,
    PaymentAmountInfo, PaymentState, RegisterRequest, Registered,
};
