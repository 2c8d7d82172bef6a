//! The bank's `errorCode`s and `actionCode`s as types. Logic matches on these variants, never on
//! bare numbers; a code this client does not know is kept as it came.

use std::fmt;

/// `errorCode` of a gateway reply (the bank's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0.
    Success,
    /// 1: the order number is already used, or orderId/orderNumber was expected.
    NumberUsed,
    /// 2: the order was declined (payment details or binding).
    Declined,
    /// 3: unknown currency.
    UnknownCurrency,
    /// 4: a required parameter is missing.
    MissingParameter,
    /// 5: a wrong value, or access denied (credentials, environment, amount, lifetime, limits).
    WrongValueOrAccessDenied,
    /// 6: unknown order.
    UnknownOrder,
    /// 7: system error, or the operation is not allowed in the order's current state.
    NotAllowedNow,
    /// 8: the cart does not match (ecom).
    CartMismatch,
    /// 12: empty amount.
    EmptyAmount,
    /// 13: features not allowed for this merchant.
    FeaturesNotAllowed,
    /// 14: features malformed.
    FeaturesMalformed,
    /// Anything else, kept as the bank sent it.
    Other(i64),
}

impl ErrorCode {
    pub fn from_code(code: i64) -> ErrorCode {
        match code {
            0 => ErrorCode::Success,
            1 => ErrorCode::NumberUsed,
            2 => ErrorCode::Declined,
            3 => ErrorCode::UnknownCurrency,
            4 => ErrorCode::MissingParameter,
            5 => ErrorCode::WrongValueOrAccessDenied,
            6 => ErrorCode::UnknownOrder,
            7 => ErrorCode::NotAllowedNow,
            8 => ErrorCode::CartMismatch,
            12 => ErrorCode::EmptyAmount,
            13 => ErrorCode::FeaturesNotAllowed,
            14 => ErrorCode::FeaturesMalformed,
            other => ErrorCode::Other(other),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            ErrorCode::Success => 0,
            ErrorCode::NumberUsed => 1,
            ErrorCode::Declined => 2,
            ErrorCode::UnknownCurrency => 3,
            ErrorCode::MissingParameter => 4,
            ErrorCode::WrongValueOrAccessDenied => 5,
            ErrorCode::UnknownOrder => 6,
            ErrorCode::NotAllowedNow => 7,
            ErrorCode::CartMismatch => 8,
            ErrorCode::EmptyAmount => 12,
            ErrorCode::FeaturesNotAllowed => 13,
            ErrorCode::FeaturesMalformed => 14,
            ErrorCode::Other(n) => n,
        }
    }

    /// What it means, in English, for logs and the integrator.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorCode::Success => "success",
            ErrorCode::NumberUsed => {
                "the order number is already used, or orderId/orderNumber was expected"
            }
            ErrorCode::Declined => "the order was declined (payment details or binding error)",
            ErrorCode::UnknownCurrency => "unknown currency",
            ErrorCode::MissingParameter => "a required parameter is missing",
            ErrorCode::WrongValueOrAccessDenied => "a value is wrong or access is denied (credentials, environment, amount, order lifetime, limits)",
            ErrorCode::UnknownOrder => "unknown order",
            ErrorCode::NotAllowedNow => {
                "system error, or the operation is not allowed in the order's current state"
            }
            ErrorCode::CartMismatch => "the cart does not match",
            ErrorCode::EmptyAmount => "the amount is empty",
            ErrorCode::FeaturesNotAllowed => "the features are not allowed for this merchant",
            ErrorCode::FeaturesMalformed => "the features are malformed",
            ErrorCode::Other(_) => "an error code this client does not know",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// `actionCode` of a status reply: what happened to the last payment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionCode {
    /// 0: the attempt succeeded.
    Success,
    /// −100: no payment attempt yet.
    NoAttempt,
    /// −2006: the issuer refused 3-D Secure authentication.
    IssuerRefused3ds,
    /// −2007: the order's lifetime ran out.
    SessionExpired,
    /// −2013: the payment attempts are used up; the order is closed.
    AttemptsExhausted,
    /// Any other decline reason, as the bank sent it.
    Other(i64),
}

impl ActionCode {
    pub fn from_code(code: i64) -> ActionCode {
        match code {
            0 => ActionCode::Success,
            -100 => ActionCode::NoAttempt,
            -2006 => ActionCode::IssuerRefused3ds,
            -2007 => ActionCode::SessionExpired,
            -2013 => ActionCode::AttemptsExhausted,
            other => ActionCode::Other(other),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            ActionCode::Success => 0,
            ActionCode::NoAttempt => -100,
            ActionCode::IssuerRefused3ds => -2006,
            ActionCode::SessionExpired => -2007,
            ActionCode::AttemptsExhausted => -2013,
            ActionCode::Other(n) => n,
        }
    }

    /// A failed attempt (not success, not "no attempt yet").
    pub fn is_failure(self) -> bool {
        !matches!(self, ActionCode::Success | ActionCode::NoAttempt)
    }
}

impl fmt::Display for ActionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 99, -1] {
            assert_eq!(ErrorCode::from_code(n).code(), n);
        }
        for n in [0, -100, -2006, -2007, -2013, -2002] {
            assert_eq!(ActionCode::from_code(n).code(), n);
        }
        assert!(!ActionCode::NoAttempt.is_failure());
        assert!(ActionCode::from_code(-2002).is_failure());
    }
}
