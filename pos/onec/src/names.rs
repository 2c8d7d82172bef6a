//! The names 1C finds the driver's methods and properties by: English (alias 0) and Russian
//! (alias 1), as «Требования к разработке драйверов подключаемого оборудования» spells them
//! (taken from public drivers and configurations: see the README's «1C» section), with each
//! method's parameter count.

use addin1c::{name, CStr1C};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Revision,
    Description,
    LastError,
    Parameters,
    SetParameter,
    Open,
    Close,
    DeviceTest,
    AdditionalActions,
    DoAdditionalAction,
    TerminalParameters,
    Pay,
    Return,
    Cancel,
    EmergencyReversal,
    Settlement,
    PayByCard,
    ReturnByCard,
    CancelByCard,
    PrintSlipOnTerminal,
    LocalizationPattern,
    SetLocalization,
    ApplicationInformation,
    Authorisation,
    OperationsByCards,
}

pub struct Method {
    pub en: &'static CStr1C,
    pub ru: &'static CStr1C,
    pub params: usize,
    pub call: Call,
}

const fn m(en: &'static CStr1C, ru: &'static CStr1C, params: usize, call: Call) -> Method {
    Method {
        en,
        ru,
        params,
        call,
    }
}

pub const METHODS: [Method; 28] = [
    m(
        name!("GetInterfaceRevision"),
        name!("ПолучитьРевизиюИнтерфейса"),
        0,
        Call::Revision,
    ),
    m(
        name!("GetDescription"),
        name!("ПолучитьОписание"),
        1,
        Call::Description,
    ),
    m(
        name!("GetLastError"),
        name!("ПолучитьОшибку"),
        1,
        Call::LastError,
    ),
    m(
        name!("GetParameters"),
        name!("ПолучитьПараметры"),
        1,
        Call::Parameters,
    ),
    m(
        name!("SetParameter"),
        name!("УстановитьПараметр"),
        2,
        Call::SetParameter,
    ),
    m(name!("Open"), name!("Подключить"), 1, Call::Open),
    m(name!("Close"), name!("Отключить"), 1, Call::Close),
    m(
        name!("DeviceTest"),
        name!("ТестУстройства"),
        2,
        Call::DeviceTest,
    ),
    m(
        name!("GetAdditionalActions"),
        name!("ПолучитьДополнительныеДействия"),
        1,
        Call::AdditionalActions,
    ),
    m(
        name!("DoAdditionalAction"),
        name!("ВыполнитьДополнительноеДействие"),
        1,
        Call::DoAdditionalAction,
    ),
    m(
        name!("TerminalParameters"),
        name!("ПараметрыТерминала"),
        2,
        Call::TerminalParameters,
    ),
    m(name!("Pay"), name!("Оплатить"), 4, Call::Pay),
    m(
        name!("ReturnPayment"),
        name!("ВернутьПлатеж"),
        4,
        Call::Return,
    ),
    m(
        name!("CancelPayment"),
        name!("ОтменитьПлатеж"),
        4,
        Call::Cancel,
    ),
    m(
        name!("EmergencyReversal"),
        name!("АварийнаяОтменаОперации"),
        1,
        Call::EmergencyReversal,
    ),
    m(
        name!("Settlement"),
        name!("ИтогиДняПоКартам"),
        2,
        Call::Settlement,
    ),
    m(
        name!("PayByPaymentCard"),
        name!("ОплатитьПлатежнойКартой"),
        8,
        Call::PayByCard,
    ),
    m(
        name!("ReturnPaymentByPaymentCard"),
        name!("ВернутьПлатежПоПлатежнойКарте"),
        8,
        Call::ReturnByCard,
    ),
    m(
        name!("CancelPaymentByPaymentCard"),
        name!("ОтменитьПлатежПоПлатежнойКарте"),
        8,
        Call::CancelByCard,
    ),
    m(
        name!("PrintSlipOnTerminal"),
        name!("ПечатьКвитанцийНаТерминале"),
        0,
        Call::PrintSlipOnTerminal,
    ),
    m(
        name!("GetLocalizationPattern"),
        name!("ПолучитьШаблонЛокализации"),
        1,
        Call::LocalizationPattern,
    ),
    m(
        name!("SetLocalization"),
        name!("УстановитьЛокализацию"),
        2,
        Call::SetLocalization,
    ),
    m(
        name!("SetApplicationInformation"),
        name!("УстановитьИнформациюПриложения"),
        1,
        Call::ApplicationInformation,
    ),
    m(
        name!("Authorisation"),
        name!("Преавторизация"),
        4,
        Call::Authorisation,
    ),
    m(
        name!("AuthConfirmation"),
        name!("ЗавершитьПреавторизацию"),
        4,
        Call::Authorisation,
    ),
    m(
        name!("CancelAuthorisation"),
        name!("ОтменитьПреавторизацию"),
        4,
        Call::Authorisation,
    ),
    m(
        name!("GetOperationByCards"),
        name!("ПолучитьОперацииПоКартам"),
        2,
        Call::OperationsByCards,
    ),
    m(
        name!("CashWithdrawal"),
        name!("ВыдачаНаличных"),
        4,
        Call::Authorisation,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    Setting(usize),
    LastError,
    Version,
}

pub const PROPS: [(&CStr1C, &CStr1C, Prop); 8] = [
    (name!("ApiUrl"), name!("АдресСлужбы"), Prop::Setting(0)),
    (name!("Token"), name!("ТокенКассира"), Prop::Setting(1)),
    (
        name!("ManagerToken"),
        name!("ТокенМенеджера"),
        Prop::Setting(2),
    ),
    (
        name!("CertFile"),
        name!("ФайлСертификата"),
        Prop::Setting(3),
    ),
    (
        name!("PayTimeout"),
        name!("ВремяОжиданияОплаты"),
        Prop::Setting(4),
    ),
    (name!("SlipWidth"), name!("ШиринаСлипа"), Prop::Setting(5)),
    (
        name!("LastError"),
        name!("ПоследняяОшибка"),
        Prop::LastError,
    ),
    (name!("Version"), name!("Версия"), Prop::Version),
];

/// A name as Rust text, without its terminating NUL.
pub fn text_of(name: &CStr1C) -> String {
    let units: &[u16] = name;
    String::from_utf16_lossy(units.strip_suffix(&[0]).unwrap_or(units))
}

pub fn same(a: &CStr1C, b: &str) -> bool {
    text_of(a).to_lowercase() == b
}
