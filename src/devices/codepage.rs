//! Cyrillic for devices that speak one-byte code pages. A character the page lacks becomes
//! `?`, never bytes of another encoding.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodePage {
    /// DOS Cyrillic (PC866): the broadest default on receipt printers and displays.
    Cp866,
    /// Windows Cyrillic.
    #[serde(rename = "windows-1251")]
    Windows1251,
}

impl CodePage {
    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            CodePage::Cp866 => encoding_rs::IBM866,
            CodePage::Windows1251 => encoding_rs::WINDOWS_1251,
        }
    }

    /// Encodes `text`; typographic characters the page lacks get their plain look-alike
    /// (« » → ", – — → -), anything else unmappable becomes `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        let encoding = self.encoding();
        let mut out = Vec::with_capacity(text.len());
        let mut buf = [0u8; 4];
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
            }
            if let Some(plain) = look_alike(c) {
                if !self.has_exact(c) {
                    out.push(plain);
                    continue;
                }
            }
            let (bytes, _, unmappable) = encoding.encode(c.encode_utf8(&mut buf));
            if unmappable || bytes.len() != 1 {
                out.push(b'?');
            } else {
                out.extend_from_slice(&bytes);
            }
        }
        out
    }

    /// Can this page show `c` itself?
    pub fn has(self, c: char) -> bool {
        c.is_ascii() || self.has_exact(c)
    }

    fn has_exact(self, c: char) -> bool {
        let mut buf = [0u8; 4];
        let (bytes, _, unmappable) = self.encoding().encode(c.encode_utf8(&mut buf));
        !unmappable && bytes.len() == 1
    }

    pub fn decode(self, bytes: &[u8]) -> String {
        self.encoding()
            .decode_without_bom_handling(bytes)
            .0
            .into_owned()
    }
}

/// Plain stand-ins for typographic characters shop names and descriptions often carry.
fn look_alike(c: char) -> Option<u8> {
    Some(match c {
        '«' | '»' | '„' | '“' | '”' => b'"',
        '‘' | '’' => b'\'',
        '–' | '—' | '‑' => b'-',
        '\u{a0}' | '\u{202f}' => b' ',
        '…' => b'.',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_round_trips_and_unknown_characters_become_question_marks() {
        for page in [CodePage::Cp866, CodePage::Windows1251] {
            let text = "Оплата частями: 1 499,50 руб. Ёё";
            assert_eq!(page.decode(&page.encode(text)), text);
            assert_eq!(page.encode("₽"), b"?");
            assert_eq!(page.encode("中"), b"?");
            assert!(!page.has('₽'));
        }
        assert_eq!(CodePage::Cp866.encode("А"), [0x80]);
        assert_eq!(CodePage::Windows1251.encode("А"), [0xC0]);
        // Ukrainian і is not in CP866.
        assert_eq!(CodePage::Cp866.encode("і"), b"?");
        assert_eq!(
            CodePage::Cp866.encode("«Ромашка» — 1"),
            CodePage::Cp866.encode("\"Ромашка\" - 1")
        );
        // Windows-1251 has « and keeps it.
        assert_eq!(
            CodePage::Windows1251.decode(&CodePage::Windows1251.encode("«")),
            "«"
        );
    }
}
