//! The XML documents of 1C's equipment-driver standard: `OperationParameters` read on the way
//! in; the description, settings, actions, terminal parameters and operation results written
//! on the way out. Reading goes through roxmltree (1C's XML may carry a declaration, a BOM,
//! entities); the documents written are single elements with attributes, so they are
//! formatted here with the five XML escapes rather than through a writer crate.

use crate::error::DriverError;

/// The longest XML a parameter may be: `OperationParameters` is one element of short
/// attributes; anything much bigger is not from 1C.
const MAX_XML: usize = 64 * 1024;

/// `OperationParameters` as 1C passes them in (the attributes the driver reads).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OperationIn {
    pub amount: Option<String>,
    pub original_amount: Option<String>,
    pub rrn: Option<String>,
    pub receipt_number: Option<String>,
    pub consumer_presented_qr: bool,
    pub amount_cash: Option<String>,
}

/// Reads `<OperationParameters …/>`.
pub fn read_operation(xml: &str) -> Result<OperationIn, DriverError> {
    let bad = |problem: String| DriverError::Parameter {
        name: "OperationParameters",
        problem,
    };
    if xml.len() > MAX_XML {
        return Err(bad(format!(
            "XML длиной {} байт: допускается до {MAX_XML}",
            xml.len()
        )));
    }
    let doc = roxmltree::Document::parse(xml.trim_start_matches('\u{feff}'))
        .map_err(|e| bad(format!("не XML ({e})")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "OperationParameters" {
        return Err(bad(format!(
            "ожидается элемент OperationParameters, а пришёл «{}»",
            root.tag_name().name().chars().take(40).collect::<String>()
        )));
    }
    let text = |name: &str| {
        root.attribute(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(OperationIn {
        amount: text("Amount"),
        original_amount: text("AmountOriginalTransaction"),
        rrn: text("RRNCode"),
        receipt_number: text("ReceiptNumber"),
        consumer_presented_qr: text("ConsumerPresentedQR")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
        amount_cash: text("AmountCash")
            .filter(|v| !v.trim_start_matches(['0', '.', ',']).is_empty()),
    })
}

/// Escapes text for an attribute value in double quotes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name a="…" b="…"/>` with the declaration 1C writes.
pub fn element(name: &str, attributes: &[(&str, String)]) -> String {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{name}");
    for (key, value) in attributes {
        out.push_str(&format!(" {key}=\"{}\"", escape(value)));
    }
    out.push_str("/>");
    out
}

/// `OperationParameters` written back after an operation.
pub fn operation_out(rrn: &str, receipt_number: &str) -> String {
    element(
        "OperationParameters",
        &[
            ("CardNumber", String::new()),
            ("ReceiptNumber", receipt_number.to_string()),
            ("RRNCode", rrn.to_string()),
            ("AuthorizationCode", String::new()),
        ],
    )
}

/// `DriverDescription`.
pub fn description(version: &str) -> String {
    let no = || "false".to_string();
    element(
        "DriverDescription",
        &[
            ("Name", "chasti: «Плати частями» от Сбера".into()),
            (
                "Description",
                "Оплата частями по ссылке или QR через службу chasti на кассе: эквайринговый \
                 терминал для 1С"
                    .into(),
            ),
            ("EquipmentType", "ЭквайринговыйТерминал".into()),
            ("IntegrationComponent", no()),
            ("MainDriverInstalled", "true".into()),
            ("DriverVersion", version.into()),
            ("IntegrationComponentVersion", version.into()),
            ("IsEmulator", no()),
            ("LocalizationSupported", no()),
            ("AutoSetup", no()),
            ("DownloadURL", String::new()),
            ("EnvironmentInformation", String::new()),
            ("LogIsEnabled", no()),
            ("LogPath", String::new()),
        ],
    )
}

/// One setting on the driver's settings form.
pub struct SettingSpec {
    pub name: &'static str,
    pub caption: &'static str,
    pub kind: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// `Settings` (`GetParameters`): one page, one group.
pub fn settings<'a>(specs: impl IntoIterator<Item = &'a SettingSpec>) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Settings><Page Caption=\"Параметры\">\
         <Group Caption=\"Служба chasti\">",
    );
    for s in specs {
        out.push_str(&format!(
            "<Parameter Name=\"{}\" Caption=\"{}\" TypeValue=\"{}\" DefaultValue=\"{}\" \
             ReadOnly=\"false\" Description=\"{}\"/>",
            escape(s.name),
            escape(s.caption),
            escape(s.kind),
            escape(s.default),
            escape(s.description),
        ));
    }
    out.push_str("</Group></Page></Settings>");
    out
}

/// `Actions` (`GetAdditionalActions`).
pub fn actions(list: &[(&str, &str)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Actions>");
    for (name, caption) in list {
        out.push_str(&format!(
            "<Action Name=\"{}\" Caption=\"{}\"/>",
            escape(name),
            escape(caption)
        ));
    }
    out.push_str("</Actions>");
    out
}

/// `TerminalParameters`: only what chasti does is advertised (flags left false make a
/// configuration hide those operations).
pub fn terminal_parameters(terminal_id: &str) -> String {
    let no = || "false".to_string();
    element(
        "TerminalParameters",
        &[
            ("TerminalID", terminal_id.to_string()),
            ("PrintSlipOnTerminal", no()),
            ("ShortSlip", no()),
            ("CashWithdrawal", no()),
            ("ElectronicCertificates", no()),
            ("PartialCancellation", no()),
            ("ConsumerPresentedQR", no()),
            ("ListCardTransactions", no()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_parameters_are_read_from_what_1c_writes() {
        let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
            <OperationParameters MerchantNumber=\"0\" Amount=\"1499.00\" RRNCode=\" T-000017 \" \
            ReceiptNumber=\"&lt;17&gt;\" AmountCash=\"0\" ConsumerPresentedQR=\"false\"/>";
        let op = read_operation(xml).unwrap();
        assert_eq!(op.amount.as_deref(), Some("1499.00"));
        assert_eq!(op.rrn.as_deref(), Some("T-000017"));
        assert_eq!(op.receipt_number.as_deref(), Some("<17>"));
        assert_eq!(op.amount_cash, None);
        assert!(!op.consumer_presented_qr);
    }

    #[test]
    fn hostile_xml_is_refused_with_a_reason() {
        for bad in [
            "",
            "<OperationParameters",
            "<Other Amount=\"1\"/>",
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><OperationParameters Amount=\"&a;&a;\"/>",
        ] {
            let e = read_operation(bad);
            assert!(e.is_err() || e.unwrap().amount.is_some(), "{bad}");
        }
        let huge = format!("<OperationParameters Amount=\"{}\"/>", "9".repeat(MAX_XML));
        assert!(read_operation(&huge)
            .unwrap_err()
            .cashier_text()
            .contains("допускается"));
    }

    #[test]
    fn written_attributes_are_escaped() {
        let out = operation_out("T-1\"&<", "7");
        assert!(out.contains("RRNCode=\"T-1&quot;&amp;&lt;\""), "{out}");
        let doc = roxmltree::Document::parse(&out).unwrap();
        assert_eq!(doc.root_element().attribute("RRNCode"), Some("T-1\"&<"));
        assert!(roxmltree::Document::parse(&description("0.1.0")).is_ok());
        assert!(roxmltree::Document::parse(&terminal_parameters("chasti")).is_ok());
        assert!(roxmltree::Document::parse(&actions(&[("a", "б\"")])).is_ok());
    }
}
