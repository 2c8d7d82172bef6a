//! The add-in object 1C creates (`Новый("AddIn.Chasti.ChastiTerminal")`): the Native API's
//! language extender over [`Driver`]. Method and property names in English (alias 0) and
//! Russian (alias 1), found in any case; parameters read from and written to 1C's variants;
//! every failure kept for `GetLastError`. A panic never crosses into 1C: it is caught and
//! reported as an error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use addin1c::{name, CStr1C, Connection, ParamValue, RawAddin, Variant};

use crate::driver::{Done, Driver, Failed};
use crate::error::DriverError;
use crate::money::Kopecks;
use crate::names::{same, text_of, Call, Prop, METHODS, PROPS};
use crate::settings::{self, Value};
use crate::xml;

/// The revision of «Требования к разработке драйверов подключаемого оборудования» the driver
/// answers `GetInterfaceRevision` with: 4.4, whose acquiring methods take XML parameters.
pub const INTERFACE_REVISION: i32 = 4004;
/// What `GetLastError` returns for a panic caught inside the driver.
const INTERNAL: i32 = 99;

/// What a method returns (the function's value; a procedure call drops it).
enum Ret {
    Bool(bool),
    Long(i32),
}

/// One `ChastiTerminal` object.
#[derive(Default)]
pub struct Terminal {
    driver: Driver,
    error: Option<(i32, String)>,
}

/// A parameter as text (1C may pass a number where text is expected); None when empty.
fn text(v: &Variant) -> Option<String> {
    let t = match v.get() {
        ParamValue::Str(s) => String::from_utf16_lossy(s),
        ParamValue::I32(n) => n.to_string(),
        ParamValue::F64(n) => n.to_string(),
        ParamValue::Bool(b) => b.to_string(),
        _ => return None,
    };
    Some(t.trim().to_string()).filter(|t| !t.is_empty())
}

fn value(v: &Variant) -> Value {
    match v.get() {
        ParamValue::I32(n) => Value::Number(n.into()),
        ParamValue::F64(n) => Value::Number(n),
        _ => Value::Text(text(v).unwrap_or_default()),
    }
}

/// An amount as a number variant (roubles) or text.
fn amount(v: &Variant, param: &'static str) -> Result<Option<Kopecks>, DriverError> {
    let bad = |problem| DriverError::Parameter {
        name: param,
        problem,
    };
    match v.get() {
        ParamValue::F64(n) => Kopecks::from_roubles_f64(n).map(Some).map_err(bad),
        ParamValue::I32(n) => Kopecks::from_roubles_f64(n.into()).map(Some).map_err(bad),
        _ => text(v).map(|t| Kopecks::parse(&t)).transpose().map_err(bad),
    }
}

fn required<T>(value: Option<T>, name: &'static str, what: &str) -> Result<T, DriverError> {
    value.ok_or_else(|| DriverError::Parameter {
        name,
        problem: format!("не передан: нужен {what}"),
    })
}

/// Writes `text` into an `[OUT]` parameter, allocated with 1C's memory manager.
fn put(v: Option<&mut Variant>, text: &str) -> bool {
    v.is_none_or(|v| v.set_str1c(text).is_ok())
}

impl Terminal {
    fn fail(&mut self, e: &DriverError) -> Ret {
        self.error = Some((e.code(), e.cashier_text()));
        Ret::Bool(false)
    }

    /// Runs `call`; false when an `[OUT]` parameter could not be written.
    fn run(&mut self, call: Call, p: &mut [Variant]) -> Option<Ret> {
        if call != Call::LastError {
            self.error = None;
        }
        let ret = match call {
            Call::Revision => Ret::Long(INTERFACE_REVISION),
            Call::Description => {
                put(p.get_mut(0), &xml::description(env!("CARGO_PKG_VERSION"))).then_some(())?;
                Ret::Bool(true)
            }
            Call::LastError => {
                let (code, text) = self.error.clone().unwrap_or((0, String::new()));
                put(p.get_mut(0), &text).then_some(())?;
                Ret::Long(code)
            }
            Call::Parameters => {
                let specs = settings::SETTINGS.iter().map(|s| &s.spec);
                put(p.get_mut(0), &xml::settings(specs)).then_some(())?;
                Ret::Bool(true)
            }
            Call::SetParameter => {
                let name = p.first().and_then(text).unwrap_or_default();
                // 1C may pass parameters of its own: only the driver's are read.
                match (settings::find(&name), p.get(1)) {
                    (Some(i), Some(v)) => match self.driver.settings.set(i, &value(v)) {
                        Ok(()) => Ret::Bool(true),
                        Err(e) => self.fail(&e),
                    },
                    _ => Ret::Bool(true),
                }
            }
            Call::Open => match self.driver.open() {
                Ok(id) => {
                    put(p.get_mut(0), &id).then_some(())?;
                    Ret::Bool(true)
                }
                Err(e) => self.fail(&e),
            },
            Call::Close | Call::SetLocalization | Call::ApplicationInformation => Ret::Bool(true),
            Call::DeviceTest => {
                let (ok, text) = match self.driver.check() {
                    Ok(text) => (true, text),
                    Err(e) => {
                        self.fail(&e);
                        (false, e.cashier_text())
                    }
                };
                put(p.get_mut(0), &text).then_some(())?;
                if let Some(demo) = p.get_mut(1) {
                    demo.set_bool(false);
                }
                Ret::Bool(ok)
            }
            Call::AdditionalActions => {
                let list = xml::actions(&[("CheckConnection", "Проверить связь с chasti")]);
                put(p.get_mut(0), &list).then_some(())?;
                Ret::Bool(true)
            }
            Call::DoAdditionalAction => match p.first().and_then(text).as_deref() {
                Some("CheckConnection") => match self.driver.check() {
                    Ok(_) => Ret::Bool(true),
                    Err(e) => self.fail(&e),
                },
                _ => self.fail(&DriverError::NotSupported("такое дополнительное действие")),
            },
            Call::TerminalParameters => {
                put(p.get_mut(1), &xml::terminal_parameters("chasti")).then_some(())?;
                Ret::Bool(true)
            }
            Call::Pay | Call::Return | Call::Cancel => return self.operation(call, p),
            Call::PayByCard | Call::ReturnByCard | Call::CancelByCard => {
                return self.by_card(call, p)
            }
            Call::EmergencyReversal => match self.driver.emergency_reversal() {
                Ok(_) => Ret::Bool(true),
                Err(f) => self.fail(&f.error),
            },
            Call::Settlement => match self.driver.settlement() {
                Ok(slip) => {
                    put(p.get_mut(1), &slip).then_some(())?;
                    Ret::Bool(true)
                }
                Err(f) => self.fail(&f.error),
            },
            Call::PrintSlipOnTerminal => Ret::Bool(false),
            Call::LocalizationPattern => self.fail(&DriverError::NotSupported(
                "локализация: тексты драйвера русские",
            )),
            Call::Authorisation => self.fail(&DriverError::NotSupported(
                "преавторизация и выдача наличных из 1С (двухстадийную оплату chasti \
                 настраивают в [orders] deposit)",
            )),
            Call::OperationsByCards => self.fail(&DriverError::NotSupported(
                "список операций: он на странице менеджера chasti и в выгрузке CSV",
            )),
        };
        Some(ret)
    }

    /// The XML forms: `DeviceID`, `OperationParameters` in, `OperationParameters` out, `Slip`.
    fn operation(&mut self, call: Call, p: &mut [Variant]) -> Option<Ret> {
        let read = || -> Result<xml::OperationIn, DriverError> {
            let xml = required(
                p.get(1).and_then(text),
                "OperationParameters",
                "XML операции",
            )?;
            xml::read_operation(&xml)
        };
        let op = match read() {
            Ok(op) => op,
            Err(e) => return Some(self.fail(&e)),
        };
        let result = self.operate(call, &op);
        let receipt = op.receipt_number.unwrap_or_default();
        self.finish(
            result,
            p,
            |p, done| {
                put(p.get_mut(2), &xml::operation_out(&done.rrn, &receipt))
                    && put(p.get_mut(3), &done.slip)
            },
            3,
        )
    }

    fn operate(&mut self, call: Call, op: &xml::OperationIn) -> Result<Done, Failed> {
        let kopecks = |t: &Option<String>| {
            t.as_deref()
                .map(Kopecks::parse)
                .transpose()
                .map_err(|problem| DriverError::Parameter {
                    name: "Amount",
                    problem,
                })
        };
        if op.amount_cash.is_some() {
            return Err(DriverError::NotSupported("выдача наличных").into());
        }
        if op.consumer_presented_qr {
            return Err(DriverError::NotSupported("оплата по QR-коду покупателя").into());
        }
        let amount = kopecks(&op.amount)?;
        match call {
            Call::Pay => {
                let amount = required(amount, "Amount", "сумма оплаты")?;
                self.driver.pay(amount, op.receipt_number.as_deref())
            }
            _ => {
                let rrn = required(
                    op.rrn.clone(),
                    "RRNCode",
                    "номер заказа с чека оплаты (RRN)",
                )?;
                if call == Call::Return {
                    self.driver.return_payment(&rrn, amount)
                } else {
                    self.driver.cancel_payment(&rrn, amount)
                }
            }
        }
    }

    /// The by-card forms of revisions before 4.1: `DeviceID`, `MerchantNumber`, `Amount`,
    /// `CardNumber`, `ReceiptNumber`, `RRNCode`, `AuthorizationCode`, `Slip`.
    fn by_card(&mut self, call: Call, p: &mut [Variant]) -> Option<Ret> {
        let result = (|| -> Result<Done, Failed> {
            let amount = p.get(2).map(|v| amount(v, "Amount")).transpose()?.flatten();
            match call {
                Call::PayByCard => {
                    let amount = required(amount, "Amount", "сумма оплаты")?;
                    let receipt = p.get(4).and_then(text);
                    self.driver.pay(amount, receipt.as_deref())
                }
                _ => {
                    let rrn = required(
                        p.get(5).and_then(text),
                        "RRNCode",
                        "номер заказа с чека оплаты (RRN)",
                    )?;
                    if call == Call::ReturnByCard {
                        self.driver.return_payment(&rrn, amount)
                    } else {
                        self.driver.cancel_payment(&rrn, amount)
                    }
                }
            }
        })();
        self.finish(
            result,
            p,
            |p, done| {
                put(p.get_mut(3), "")
                    && put(p.get_mut(5), &done.rrn)
                    && put(p.get_mut(7), &done.slip)
            },
            7,
        )
    }

    fn finish(
        &mut self,
        result: Result<Done, Failed>,
        p: &mut [Variant],
        write: impl FnOnce(&mut [Variant], &Done) -> bool,
        slip_at: usize,
    ) -> Option<Ret> {
        match result {
            Ok(done) => {
                write(p, &done).then_some(())?;
                Some(Ret::Bool(true))
            }
            Err(failed) => {
                if let Some(slip) = &failed.slip {
                    put(p.get_mut(slip_at), slip).then_some(())?;
                }
                Some(self.fail(&failed.error))
            }
        }
    }

    /// [`Terminal::run`] with a panic caught and reported instead of unwinding into 1C.
    fn guarded(&mut self, method: usize, p: &mut [Variant]) -> Option<Ret> {
        let call = METHODS.get(method)?.call;
        if p.len() < METHODS[method].params {
            self.error = Some((
                2,
                format!(
                    "Метод {} ждёт {} параметров, передано {}.",
                    text_of(METHODS[method].en),
                    METHODS[method].params,
                    p.len()
                ),
            ));
            return Some(Ret::Bool(false));
        }
        match catch_unwind(AssertUnwindSafe(|| self.run(call, p))) {
            Ok(ret) => ret,
            Err(_) => {
                self.error = Some((
                    INTERNAL,
                    "Внутренняя ошибка драйвера chasti: операция прервана; проверьте её \
                     исход на странице менеджера."
                        .into(),
                ));
                Some(Ret::Bool(false))
            }
        }
    }
}

impl RawAddin for Terminal {
    fn init(&mut self, _interface: &'static Connection) -> bool {
        true
    }

    fn register_extension_as(&mut self) -> &CStr1C {
        name!("ChastiTerminal")
    }

    fn get_n_props(&mut self) -> usize {
        PROPS.len()
    }

    fn find_prop(&mut self, name: &CStr1C) -> Option<usize> {
        let wanted = text_of(name).to_lowercase();
        PROPS
            .iter()
            .position(|(en, ru, _)| same(en, &wanted) || same(ru, &wanted))
    }

    fn get_prop_name(&mut self, num: usize, alias: usize) -> Option<&'static CStr1C> {
        PROPS
            .get(num)
            .map(|(en, ru, _)| if alias == 0 { *en } else { *ru })
    }

    fn get_prop_val(&mut self, num: usize, val: &mut Variant) -> bool {
        let shown = match PROPS.get(num).map(|p| p.2) {
            Some(Prop::Setting(i)) => self.driver.settings.shown(i),
            Some(Prop::LastError) => self.error.clone().map(|e| e.1).unwrap_or_default(),
            Some(Prop::Version) => env!("CARGO_PKG_VERSION").to_string(),
            None => return false,
        };
        val.set_str1c(shown).is_ok()
    }

    fn set_prop_val(&mut self, num: usize, val: &Variant) -> bool {
        let Some(Prop::Setting(i)) = PROPS.get(num).map(|p| p.2) else {
            return false;
        };
        match self.driver.settings.set(i, &value(val)) {
            Ok(()) => true,
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    fn is_prop_readable(&mut self, num: usize) -> bool {
        num < PROPS.len()
    }

    fn is_prop_writable(&mut self, num: usize) -> bool {
        matches!(PROPS.get(num), Some((_, _, Prop::Setting(_))))
    }

    fn get_n_methods(&mut self) -> usize {
        METHODS.len()
    }

    fn find_method(&mut self, name: &CStr1C) -> Option<usize> {
        let wanted = text_of(name).to_lowercase();
        METHODS
            .iter()
            .position(|m| same(m.en, &wanted) || same(m.ru, &wanted))
    }

    fn get_method_name(&mut self, num: usize, alias: usize) -> Option<&'static CStr1C> {
        METHODS
            .get(num)
            .map(|m| if alias == 0 { m.en } else { m.ru })
    }

    fn get_n_params(&mut self, num: usize) -> usize {
        METHODS.get(num).map_or(0, |m| m.params)
    }

    fn has_ret_val(&mut self, method_num: usize) -> bool {
        method_num < METHODS.len()
    }

    fn call_as_proc(&mut self, method_num: usize, params: &mut [Variant]) -> bool {
        self.guarded(method_num, params).is_some()
    }

    fn call_as_func(
        &mut self,
        method_num: usize,
        params: &mut [Variant],
        val: &mut Variant,
    ) -> bool {
        match self.guarded(method_num, params) {
            Some(Ret::Bool(b)) => {
                val.set_bool(b);
                true
            }
            Some(Ret::Long(n)) => {
                val.set_i32(n);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_property_names_are_the_settings_names() {
        for (en, ru, prop) in PROPS {
            if let Prop::Setting(i) = prop {
                assert_eq!(text_of(en), settings::SETTINGS[i].en);
                assert_eq!(text_of(ru), settings::SETTINGS[i].ru);
            }
        }
    }

    #[test]
    fn methods_are_found_by_either_name_in_any_case() {
        let mut t = Terminal::default();
        let find = |t: &mut Terminal, s: &str| {
            let units: Vec<u16> = s.encode_utf16().chain([0]).collect();
            // SAFETY: `units` ends with its NUL.
            let name = unsafe { CStr1C::from_bytes_unchecked(&units) };
            t.find_method(name)
        };
        assert_eq!(find(&mut t, "pay"), Some(11));
        assert_eq!(find(&mut t, "ОПЛАТИТЬ"), Some(11));
        assert_eq!(find(&mut t, "ИтогиДняПоКартам"), Some(15));
        assert_eq!(find(&mut t, "Unknown"), None);
        assert_eq!(text_of(t.get_method_name(11, 1).unwrap()), "Оплатить");
    }
}
