//! A customer's e-mail, for the electronic receipt (tag 1008) and the bank's sign-in.

use super::{string_type, Invalid};

/// An e-mail address as the receipt carries it: `name@host.tld`, at most 254 characters, no
/// spaces or control characters, kept as typed (the host part in lower case).
///
/// `Debug` masks it (`iv***@mail.ru`): an address is personal data and never reaches a log whole.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const MAX: usize = 254;

impl Email {
    pub fn parse(text: &str) -> Result<Email, Invalid> {
        let t = text.trim();
        let refuse = |ru: &str| {
            Invalid::new(
                text,
                "an e-mail address such as ivanova@mail.ru",
                format!("{ru}; пример: ivanova@mail.ru"),
            )
        };
        if t.chars().count() > MAX {
            return Err(refuse("адрес длиннее 254 символов"));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse(
                "в адресе не может быть пробелов и управляющих символов",
            ));
        }
        let Some((local, host)) = t.rsplit_once('@') else {
            return Err(refuse("в адресе нет @"));
        };
        let host_ok = host.contains('.')
            && !host.starts_with('.')
            && !host.ends_with('.')
            && !host.contains("..")
            && !host.contains('@');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !host_ok {
            return Err(refuse("это не адрес электронной почты"));
        }
        Ok(Email(format!("{local}@{}", host.to_lowercase())))
    }

    /// `iv***@mail.ru`: for logs and anything else that does not need the whole address.
    pub fn masked(&self) -> String {
        let (local, host) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        let shown: String = local.chars().take(2).collect();
        format!("{shown}***@{host}")
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

string_type!(
    Email,
    "The customer's e-mail, for the electronic receipt.",
    254,
    None
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_masked() {
        let e = Email::parse(" Ivanova@Mail.RU ").unwrap();
        assert_eq!(e.as_str(), "Ivanova@mail.ru");
        assert_eq!(e.masked(), "Iv***@mail.ru");
        assert!(!format!("{e:?}").contains("Ivanova"));
        for bad in [
            "",
            "ivanova",
            "a@b",
            "a@.ru",
            "a b@c.ru",
            "@mail.ru",
            "a@mail..ru",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@mail.ru", "a".repeat(300))).is_err());
    }
}
