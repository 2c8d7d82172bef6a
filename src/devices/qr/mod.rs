//! The payment link as a QR symbol (error correction M), and its size on paper.

mod mask;

use std::fmt::Write;

use qrcode::canvas::Canvas;
use qrcode::EcLevel;

/// A QR symbol without its quiet zone: `modules` × `modules` cells, true = dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrSymbol {
    pub modules: usize,
    cells: Vec<bool>,
}

/// Why a link gives no QR symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// Too long for any QR version at error correction M, or not encodable.
    #[error("the link cannot be a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("no QR mask could be chosen")]
    NoMask,
}

/// The quiet zone the standard asks for around a symbol, in modules.
pub const QUIET_ZONE: usize = 4;

impl QrSymbol {
    /// The smallest symbol that holds the link, with the best mask (see `mask.rs`).
    pub fn encode(link: &str) -> Result<QrSymbol, QrError> {
        let bits = qrcode::bits::encode_auto(link.as_bytes(), EcLevel::M)?;
        let version = bits.version();
        let data = bits.into_bytes();
        let (encoded, ec) = qrcode::ec::construct_codewords(&data, version, EcLevel::M)?;
        let mut drawn = Canvas::new(version, EcLevel::M);
        drawn.draw_all_functional_patterns();
        drawn.draw_data(&encoded, &ec);
        let modules = version.width() as usize;
        let data = mask::Symbol::data_of(&drawn, modules);
        let symbol = mask::Symbol::best_masked(&data, version).ok_or(QrError::NoMask)?;
        Ok(QrSymbol {
            modules,
            cells: symbol.cells(),
        })
    }

    pub fn dark(&self, x: usize, y: usize) -> bool {
        self.cells[y * self.modules + x]
    }

    /// An SVG of the symbol with its quiet zone (for web pages and API replies).
    pub fn to_svg(&self) -> String {
        let size = self.modules + 2 * QUIET_ZONE;
        // One rectangle per horizontal run of dark modules: a few KB, not one per module.
        let mut path = String::with_capacity(self.modules * self.modules);
        for y in 0..self.modules {
            let mut x = 0;
            while x < self.modules {
                if !self.dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.modules && self.dark(x, y) {
                    x += 1;
                }
                let run = x - start;
                let _ = write!(
                    path,
                    "M{},{}h{run}v1h-{run}z",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE
                );
            }
        }
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
        )
    }
}

impl QrSymbol {
    /// The symbol in a terminal: two modules a character cell (upper and lower half blocks),
    /// dark on light, with a 2-module quiet zone.
    pub fn to_terminal(&self) -> String {
        let q = 2usize;
        let size = self.modules + 2 * q;
        let dark = |x: usize, y: usize| {
            x >= q
                && y >= q
                && x < q + self.modules
                && y < q + self.modules
                && self.dark(x - q, y - q)
        };
        let mut out = String::new();
        for y in (0..size).step_by(2) {
            for x in 0..size {
                // Light cells are drawn (blocks), dark ones left as the dark terminal background.
                let (top, bottom) = (!dark(x, y), y + 1 < size && !dark(x, y + 1));
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }
}

/// Modules across the symbol the link needs, without drawing it: the version is known from
/// the data alone (2 µs), while drawing means choosing the best of 8 masks (~0.1 ms).
pub fn modules_for(link: &str) -> Result<usize, QrError> {
    let bits = qrcode::bits::encode_auto(link.as_bytes(), EcLevel::M)?;
    match bits.version() {
        qrcode::Version::Normal(v) => Ok(17 + 4 * v as usize),
        qrcode::Version::Micro(v) => Ok(9 + 2 * v as usize),
    }
}

/// Dots a module so the symbol is about `target_mm` on paper, at least 1 and at most what fits
/// the head (with its quiet zone) and what `GS ( k` accepts (16).
pub fn module_dots(modules: usize, dots_per_mm: u32, target_mm: u32, dots_per_line: u32) -> u32 {
    let wanted = (target_mm * dots_per_mm) as f64 / modules as f64;
    let fits = dots_per_line as usize / (modules + 2 * QUIET_ZONE);
    (wanted.round() as u32).clamp(1, 16).min(fits.max(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_size_aims_at_the_target_and_fits_the_head() {
        // A ~70 character link is a version 5 symbol: 37 modules.
        let q = QrSymbol::encode(&format!(
            "http://127.0.0.1:8907/sandbox/pay/{}",
            "a".repeat(36)
        ))
        .unwrap();
        assert_eq!(q.modules, 37);
        assert_eq!(
            modules_for(&format!(
                "http://127.0.0.1:8907/sandbox/pay/{}",
                "a".repeat(36)
            ))
            .unwrap(),
            37
        );
        let d = module_dots(q.modules, 8, 30, 576);
        assert_eq!(d, 6);
        let mm = (q.modules as u32 * d) as f64 / 8.0;
        assert!((25.0..=35.0).contains(&mm), "{mm} mm");
        assert_eq!(module_dots(37, 8, 20, 384), 4);
        assert_eq!(
            module_dots(177, 8, 30, 384),
            1,
            "never zero, never wider than the head"
        );
    }

    /// Our mask choice is `qrcode`'s, symbol for symbol, for links of every length a bank or
    /// the sandbox gives (and some it does not).
    #[test]
    fn the_mask_chosen_is_the_one_qrcode_chooses() {
        let mut links = vec![
            "https://x".to_string(),
            "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=2f5bd8e8-3b3e-7c46-9a8f-4a1e00a8b38b".to_string(),
        ];
        for i in 0..120u32 {
            let id = uuid::Uuid::from_u128(
                u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
            );
            links.push(format!(
                "http://127.0.0.1:{}/sandbox/pay/{id}",
                1024 + i * 97
            ));
            links.push(format!(
                "https://pay.example/{}",
                "ж".repeat(i as usize % 40)
            ));
        }
        for link in links {
            let ours = QrSymbol::encode(&link).unwrap();
            let theirs =
                qrcode::QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M).unwrap();
            let expected: Vec<bool> = theirs
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect();
            assert_eq!(ours.modules, theirs.width(), "{link}");
            assert!(ours.cells == expected, "a different mask for {link}");
        }
    }

    #[test]
    fn svg_has_the_quiet_zone() {
        let svg = QrSymbol::encode("https://x").unwrap().to_svg();
        assert!(
            svg.starts_with("<svg") && svg.contains("viewBox=\"0 0 29 29\""),
            "{svg}"
        );
    }
}
