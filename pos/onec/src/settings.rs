//! The driver's settings: set by 1C's equipment form (`GetParameters`, then `SetParameter`
//! for each) or as properties from BSL. Checked as they are set, so a wrong value is refused
//! at once with what is allowed.

use crate::error::DriverError;
use crate::xml::SettingSpec;

/// How long Pay waits for the customer unless told otherwise: chasti's link lives 5–60
/// minutes, a queue at the till does not.
pub const PAY_TIMEOUT_DEFAULT: u64 = 300;
const PAY_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 5..=1800;

/// One setting: its names (English, Russian) and how it shows on 1C's form.
pub struct Setting {
    pub en: &'static str,
    pub ru: &'static str,
    pub spec: SettingSpec,
}

pub const SETTINGS: [Setting; 6] = [
    Setting {
        en: "ApiUrl",
        ru: "АдресСлужбы",
        spec: SettingSpec {
            name: "ApiUrl",
            caption: "Адрес службы chasti",
            kind: "String",
            default: "http://127.0.0.1:8080",
            description: "http://адрес:порт API chasti на кассе ([api] listen)",
        },
    },
    Setting {
        en: "Token",
        ru: "ТокенКассира",
        spec: SettingSpec {
            name: "Token",
            caption: "Токен кассы",
            kind: "String",
            default: "",
            description: "Токен кассира из [[api.tokens]] chasti: оплата и отмена неоплаченной продажи",
        },
    },
    Setting {
        en: "ManagerToken",
        ru: "ТокенМенеджера",
        spec: SettingSpec {
            name: "ManagerToken",
            caption: "Токен менеджера",
            kind: "String",
            default: "",
            description: "Токен менеджера: возвраты, отмены оплат и сверка итогов",
        },
    },
    Setting {
        en: "CertFile",
        ru: "ФайлСертификата",
        spec: SettingSpec {
            name: "CertFile",
            caption: "Сертификат API (для https)",
            kind: "String",
            default: "",
            description: "Файл PEM с сертификатом API chasti, если он работает по https",
        },
    },
    Setting {
        en: "PayTimeout",
        ru: "ВремяОжиданияОплаты",
        spec: SettingSpec {
            name: "PayTimeout",
            caption: "Ждать оплату, секунд",
            kind: "Number",
            default: "300",
            description: "Сколько ждать, пока покупатель оплатит по ссылке (5–1800); потом продажа отменяется",
        },
    },
    Setting {
        en: "SlipWidth",
        ru: "ШиринаСлипа",
        spec: SettingSpec {
            name: "SlipWidth",
            caption: "Ширина слипа, символов",
            kind: "Number",
            default: "32",
            description: "Ширина текста слипа для чековой ленты: 32, 42 или 48",
        },
    },
];

/// The settings' values.
#[derive(Clone)]
pub struct Settings {
    pub api_url: String,
    pub token: String,
    pub manager_token: String,
    pub cert_file: String,
    pub pay_timeout: u64,
    pub slip_width: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_url: SETTINGS[0].spec.default.to_string(),
            token: String::new(),
            manager_token: String::new(),
            cert_file: String::new(),
            pay_timeout: PAY_TIMEOUT_DEFAULT,
            slip_width: 32,
        }
    }
}

/// A value as 1C hands it over.
pub enum Value {
    Text(String),
    Number(f64),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Text(t) => t.trim().to_string(),
            Value::Number(n) => format!("{n}"),
        }
    }

    fn whole(&self, name: &'static str) -> Result<u64, DriverError> {
        let n = match self {
            Value::Number(n) => *n,
            Value::Text(t) => t.trim().parse::<f64>().map_err(|_| DriverError::Setting {
                name,
                problem: format!("«{}» не число", t.chars().take(20).collect::<String>()),
            })?,
        };
        if n.fract() != 0.0 || !(0.0..1e9).contains(&n) {
            return Err(DriverError::Setting {
                name,
                problem: format!("{n} не целое неотрицательное число"),
            });
        }
        Ok(n as u64)
    }
}

/// Which setting a name (English or Russian, any case) means.
pub fn find(name: &str) -> Option<usize> {
    let name = name.trim().to_lowercase();
    SETTINGS
        .iter()
        .position(|s| s.en.to_lowercase() == name || s.ru.to_lowercase() == name)
}

impl Settings {
    /// Sets setting `index` (from [`find`]); a wrong value changes nothing.
    pub fn set(&mut self, index: usize, value: &Value) -> Result<(), DriverError> {
        match index {
            0 => self.api_url = value.text(),
            1 => self.token = value.text(),
            2 => self.manager_token = value.text(),
            3 => self.cert_file = value.text(),
            4 => {
                let seconds = value.whole("PayTimeout")?;
                if !PAY_TIMEOUT_RANGE.contains(&seconds) {
                    return Err(DriverError::Setting {
                        name: "PayTimeout",
                        problem: format!(
                            "{seconds} с: допускается от {} до {} секунд",
                            PAY_TIMEOUT_RANGE.start(),
                            PAY_TIMEOUT_RANGE.end()
                        ),
                    });
                }
                self.pay_timeout = seconds;
            }
            5 => {
                let width = value.whole("SlipWidth")?;
                if ![32, 42, 48].contains(&width) {
                    return Err(DriverError::Setting {
                        name: "SlipWidth",
                        problem: format!("{width}: допускается 32, 42 или 48 символов"),
                    });
                }
                self.slip_width = width as u8;
            }
            _ => {}
        }
        Ok(())
    }

    /// Setting `index` as a property reads it: tokens never leave the driver.
    pub fn shown(&self, index: usize) -> String {
        let masked = |t: &str| if t.is_empty() { "" } else { "********" }.to_string();
        match index {
            0 => self.api_url.clone(),
            1 => masked(&self.token),
            2 => masked(&self.manager_token),
            3 => self.cert_file.clone(),
            4 => self.pay_timeout.to_string(),
            5 => self.slip_width.to_string(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_by_either_name_and_checked_when_set() {
        let mut s = Settings::default();
        assert_eq!(find("apiurl"), Some(0));
        assert_eq!(find("ТОКЕНМЕНЕДЖЕРА"), Some(2));
        assert_eq!(find("Model"), None);
        s.set(4, &Value::Number(60.0)).unwrap();
        assert_eq!(s.pay_timeout, 60);
        for bad in [
            Value::Number(1.0),
            Value::Number(7.5),
            Value::Text("soon".into()),
        ] {
            assert!(s.set(4, &bad).is_err());
        }
        assert_eq!(s.pay_timeout, 60, "a refused value changes nothing");
        assert!(s.set(5, &Value::Text("40".into())).is_err());
        s.set(5, &Value::Text("42".into())).unwrap();
        s.set(1, &Value::Text("secret-token".into())).unwrap();
        assert_eq!(s.shown(1), "********");
        assert_eq!(s.shown(2), "");
    }
}
