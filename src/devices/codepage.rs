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

    /// Encodes `text`; unmappable characters become `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        let encoding = self.encoding();
        let mut out = Vec::with_capacity(text.len());
        let mut buf = [0u8; 4];
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
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

    /// Can this page show `c`?
    pub fn has(self, c: char) -> bool {
        c.is_ascii() || self.encode(&c.to_string()) != b"?"
    }

    pub fn decode(self, bytes: &[u8]) -> String {
        self.encoding()
            .decode_without_bom_handling(bytes)
            .0
            .into_owned()
    }
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
    }
}
