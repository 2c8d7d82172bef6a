//! A Russian mobile number, the one a payment link is sent to by SMS.

use super::{string_type, Invalid};

/// A Russian mobile number, kept as `+79123456789`. Read from what cashiers type:
/// `+7 912 345-67-89`, `8 (912) 3456789`, `79123456789`, `912 345 67 89`.
///
/// `Debug` shows it masked (`+7912***6789`), so a number never reaches a log whole by accident;
/// logs use [`Phone::masked`] on purpose, and only the SMS provider and the till see it whole.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

/// Longer input is not a phone number, whatever it holds.
const MAX_INPUT: usize = 40;

impl Phone {
    pub fn parse(text: &str) -> Result<Phone, Invalid> {
        let refuse = |ru: &str| {
            Invalid::new(
                text,
                "a Russian mobile number, such as +7 912 345-67-89 or 8 912 345 67 89",
                format!(
                    "«{}»: {ru}; пример: +7 912 345-67-89",
                    text.chars().take(40).collect::<String>()
                ),
            )
        };
        if text.chars().count() > MAX_INPUT {
            return Err(refuse("слишком длинно для номера телефона"));
        }
        let mut digits = String::with_capacity(12);
        let mut plus = false;
        for (i, c) in text.trim().chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '(' | ')' | '.' | '\u{a0}' => {}
                _ => {
                    return Err(refuse(
                        "в номере могут быть только цифры, пробелы, скобки, дефисы и + в начале",
                    ))
                }
            }
        }
        let national = match (plus, digits.len(), digits.as_bytes().first()) {
            (true, 11, Some(b'7')) => &digits[1..],
            (false, 11, Some(b'7' | b'8')) => &digits[1..],
            (false, 10, _) => &digits[..],
            (true, _, Some(b'7')) | (false, 11, _) | (false, 10.., _) | (false, ..=9, _) => {
                return Err(refuse(
                    "нужен российский номер: 11 цифр с +7 или 8 в начале",
                ))
            }
            (true, _, _) => return Err(refuse("нужен российский номер: код страны +7")),
        };
        if !national.starts_with('9') {
            return Err(refuse(
                "это не мобильный номер: мобильные начинаются с +7 9…",
            ));
        }
        Ok(Phone(format!("+7{national}")))
    }

    /// `+7912***6789`: for logs and anything else that does not need the whole number.
    pub fn masked(&self) -> String {
        format!("{}***{}", &self.0[..5], &self.0[self.0.len() - 4..])
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

string_type!(
    Phone,
    "A Russian mobile number; any usual spelling is accepted and kept as +79XXXXXXXXX.",
    40,
    // The spellings `parse` takes: +7, 7 or 8 (or nothing) before ten digits starting with 9,
    // with spaces, brackets, dots and dashes anywhere between.
    Some(r"^ *(\+7|7|8)?[ ().\-]*9([ ().\-]*[0-9]){9}[ ().\-]*$")
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_spellings_normalise_and_the_rest_is_refused() {
        for ok in [
            "+7 912 345-67-89",
            "8 (912) 3456789",
            "79123456789",
            "+79123456789",
            "89123456789",
            "912 345 67 89",
            "(912)345-67-89",
            " +7\u{a0}912\u{a0}345\u{a0}67\u{a0}89 ",
            "8-912-345-67-89",
        ] {
            assert_eq!(Phone::parse(ok).unwrap().as_str(), "+79123456789", "{ok}");
        }
        for (bad, why) in [
            ("", "11 цифр"),
            ("12345", "11 цифр"),
            ("+7 912 345-67-8", "11 цифр"),
            ("+7 912 345-67-890", "11 цифр"),
            ("8 495 123-45-67", "не мобильный"),
            ("+7 495 123 45 67", "не мобильный"),
            ("+1 912 345 67 89", "код страны +7"),
            ("+380 91 234 5678", "код страны +7"),
            ("9123456789x", "только цифры"),
            ("+7 912 345 67 89 доб. 1", "только цифры"),
            ("7+9123456789", "только цифры"),
            ("тел. 89123456789", "только цифры"),
            ("99123456789", "11 цифр"),
        ] {
            let e = Phone::parse(bad).unwrap_err();
            assert!(e.ru.contains(why), "{bad:?}: {}", e.ru);
        }
        let huge = "9".repeat(10_000);
        assert!(Phone::parse(&huge)
            .unwrap_err()
            .ru
            .contains("слишком длинно"));
    }

    #[test]
    fn masked_in_debug_and_on_purpose() {
        let p = Phone::parse("8 912 345 67 89").unwrap();
        assert_eq!(p.masked(), "+7912***6789");
        assert_eq!(format!("{p:?}"), "Phone(+7912***6789)");
        assert_eq!(p.to_string(), "+79123456789");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"+79123456789\"");
        let back: Phone = serde_json::from_str("\"8 (912) 345-67-89\"").unwrap();
        assert_eq!(back, p);
    }
}
