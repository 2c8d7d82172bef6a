//! CSV for Excel as chasti writes it everywhere (the orders' export, the head office's
//! report): `;` between fields, quoted when needed, free text that never starts a formula.

/// Free text never starts a formula in a spreadsheet (`=`, `+`, `-`, `@`).
pub fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// A field quoted when it holds the separator, a quote or a line break (RFC 4180).
pub fn quoted(field: &str) -> String {
    if field.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// One row: the fields quoted, `;` between them, CRLF at the end.
pub fn row(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| quoted(f))
        .collect::<Vec<_>>()
        .join(";");
    line.push_str("\r\n");
    line
}
