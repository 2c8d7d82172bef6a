//! ESC/POS bytes, written by hand (a few hundred lines): printer crates hard-code one vendor's
//! code pages and send images where a native QR would do. The parser reads the same subset
//! back: tests check what a printer would print, and `chasti render --png` draws it.

use super::codepage::CodePage;
use super::profile::{Cut, PrinterProfile};
use super::qr::{module_dots, QrSymbol, QUIET_ZONE};

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const FS: u8 = 0x1C;
const LF: u8 = 0x0A;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// Builds one slip for one printer profile.
pub struct Encoder<'a> {
    profile: &'a PrinterProfile,
    out: Vec<u8>,
}

impl<'a> Encoder<'a> {
    /// Initialise, leave Chinese mode where the profile says, select the code table.
    pub fn new(profile: &'a PrinterProfile) -> Encoder<'a> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&[ESC, b'@']);
        if profile.fs_dot {
            out.extend_from_slice(&[FS, b'.']);
        }
        out.extend_from_slice(&[ESC, b't', profile.code_table]);
        Encoder { profile, out }
    }

    pub fn align(&mut self, align: Align) -> &mut Self {
        let n = match align {
            Align::Left => 0,
            Align::Center => 1,
            Align::Right => 2,
        };
        self.out.extend_from_slice(&[ESC, b'a', n]);
        self
    }

    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.out.extend_from_slice(&[ESC, b'E', on as u8]);
        self
    }

    /// Character size, 1..=8 times in each direction.
    pub fn size(&mut self, width: u8, height: u8) -> &mut Self {
        let (w, h) = (width.clamp(1, 8) - 1, height.clamp(1, 8) - 1);
        self.out.extend_from_slice(&[GS, b'!', (w << 4) | h]);
        self
    }

    /// Text in the profile's code page; control bytes are dropped so text can never turn into
    /// a command.
    pub fn line(&mut self, text: &str) -> &mut Self {
        let clean: String = text.chars().filter(|c| !c.is_control()).collect();
        self.out.extend(self.profile.code_page.encode(&clean));
        self.out.push(LF);
        self
    }

    pub fn feed(&mut self, lines: u8) -> &mut Self {
        self.out.extend_from_slice(&[ESC, b'd', lines]);
        self
    }

    /// The QR: native `GS ( k` when the profile has it, else a `GS v 0` raster, with blank
    /// paper of at least [`QUIET_ZONE`] modules fed above and below it (the standard's quiet
    /// zone: a scanner needs it to find the symbol's edge against the text).
    pub fn qr(&mut self, link: &str) -> Result<&mut Self, EscposError> {
        let p = self.profile;
        // A native QR needs only the symbol's size; a raster needs the symbol, encoded once.
        let symbol = if p.native_qr {
            None
        } else {
            Some(QrSymbol::encode(link)?)
        };
        let modules = match &symbol {
            Some(s) => s.modules,
            None => super::qr::modules_for(link)?,
        };
        let dots = module_dots(modules, p.dots_per_mm, p.qr_target_mm, p.dots_per_line);
        let quiet = quiet_lines(printed_module_dots(p, modules), p.dots_per_mm);
        self.feed(quiet);
        match &symbol {
            None => {
                self.native_qr(link.as_bytes(), dots as u8)?;
                self.out.push(LF);
            }
            Some(symbol) => self.raster_qr(symbol, dots),
        }
        self.feed(quiet);
        Ok(self)
    }

    fn native_qr(&mut self, data: &[u8], module: u8) -> Result<(), EscposError> {
        let k = data.len() + 3;
        if k > 7092 {
            return Err(EscposError::LinkTooLong(data.len()));
        }
        let o = &mut self.out;
        o.extend_from_slice(&[GS, b'(', b'k', 4, 0, 0x31, 0x41, 0x32, 0]); // model 2
        o.extend_from_slice(&[GS, b'(', b'k', 3, 0, 0x31, 0x43, module]); // module size
        o.extend_from_slice(&[GS, b'(', b'k', 3, 0, 0x31, 0x45, 0x31]); // error correction M
        o.extend_from_slice(&[
            GS,
            b'(',
            b'k',
            (k % 256) as u8,
            (k / 256) as u8,
            0x31,
            0x50,
            0x30,
        ]);
        o.extend_from_slice(data);
        o.extend_from_slice(&[GS, b'(', b'k', 3, 0, 0x31, 0x51, 0x30]); // print
        Ok(())
    }

    /// The symbol cropped to itself (the quiet zone is blank paper, fed, not sent), centred,
    /// in quadruple mode when the profile allows: each sent dot then prints as 2 x 2.
    fn raster_qr(&mut self, symbol: &QrSymbol, module_dots: u32) {
        let quadruple = self.profile.raster_quadruple && module_dots >= 2;
        let (sent, mode) = if quadruple {
            (
                quadruple_sent(module_dots, self.profile.dots_per_mm) as usize,
                3u8,
            )
        } else {
            (module_dots as usize, 0u8)
        };
        let width_dots = symbol.modules * sent;
        let width_bytes = width_dots.div_ceil(8);
        let height = symbol.modules * sent;
        let o = &mut self.out;
        o.extend_from_slice(&[ESC, b'a', 1]);
        o.extend_from_slice(&[GS, b'v', b'0', mode]);
        o.extend_from_slice(&[
            (width_bytes % 256) as u8,
            (width_bytes / 256) as u8,
            (height % 256) as u8,
            (height / 256) as u8,
        ]);
        for y in 0..height {
            let my = y / sent;
            for byte in 0..width_bytes {
                let mut b = 0u8;
                for bit in 0..8 {
                    let x = byte * 8 + bit;
                    if x < width_dots && symbol.dark(x / sent, my) {
                        b |= 0x80 >> bit;
                    }
                }
                o.push(b);
            }
        }
    }

    /// Feed to the cutter and cut, as the profile's cutter allows.
    pub fn cut(&mut self) -> &mut Self {
        match self.profile.cut {
            Cut::None => self.feed(4),
            Cut::Partial => {
                self.out.extend_from_slice(&[GS, b'V', 0x42, 3]);
                self
            }
            Cut::Full => {
                self.out.extend_from_slice(&[GS, b'V', 0x41, 3]);
                self
            }
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

/// The smallest module a phone camera reads reliably off a receipt, in mm.
pub const SCANNER_MIN_MODULE_MM: f64 = 0.33;

/// Dots sent per module in quadruple mode (each prints 2 × 2): the printed module is the even
/// size at or below the wanted one (never past the target), unless that is below what a
/// scanner reads; then the smallest even size it does.
fn quadruple_sent(module_dots: u32, dots_per_mm: u32) -> u32 {
    let least = (SCANNER_MIN_MODULE_MM * f64::from(dots_per_mm)).ceil() as u32;
    (module_dots / 2).max(least.div_ceil(2)).max(1)
}

/// Dots a QR module takes on paper with this profile.
pub fn printed_module_dots(p: &PrinterProfile, modules: usize) -> u32 {
    let dots = module_dots(modules, p.dots_per_mm, p.qr_target_mm, p.dots_per_line);
    if !p.native_qr && p.raster_quadruple && dots >= 2 {
        2 * quadruple_sent(dots, p.dots_per_mm)
    } else {
        dots
    }
}

/// Text lines (the default 1/6 inch spacing) to feed for a quiet zone of [`QUIET_ZONE`]
/// modules of `module_dots` each.
pub fn quiet_lines(module_dots: u32, dots_per_mm: u32) -> u8 {
    let line_dots = f64::from(dots_per_mm) * 25.4 / 6.0;
    let wanted = f64::from(module_dots) * QUIET_ZONE as f64;
    (wanted / line_dots).ceil().clamp(1.0, 8.0) as u8
}

/// What a printer makes of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    Text {
        text: String,
        align: Align,
        bold: bool,
        width: u8,
        height: u8,
    },
    NativeQr {
        data: Vec<u8>,
        module: u8,
    },
    Raster {
        mode: u8,
        width_bytes: usize,
        height: usize,
        data: Vec<u8>,
    },
    Feed(u8),
    Cut,
}

/// What an encoder refuses or a parser finds wrong in ESC/POS bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscposError {
    #[error(transparent)]
    Qr(#[from] super::qr::QrError),
    #[error("the link is too long for a printer QR code ({0} bytes; allowed: up to 7089)")]
    LinkTooLong(usize),
    #[error("command cut short at byte {0}")]
    CutShort(usize),
    #[error("unknown {command} {byte:#04x} at byte {at}")]
    Unknown {
        command: &'static str,
        byte: u8,
        at: usize,
    },
    #[error("{0} without its data")]
    Incomplete(&'static str),
    #[error("GS v 0 of {width_bytes} bytes x {height} rows; allowed: up to {MAX_RASTER_WIDTH_BYTES} x {MAX_RASTER_HEIGHT}")]
    RasterTooLarge { width_bytes: usize, height: usize },
}

fn take<'b>(bytes: &'b [u8], at: &mut usize, n: usize) -> Result<&'b [u8], EscposError> {
    let slice = bytes
        .get(*at..at.saturating_add(n))
        .ok_or(EscposError::CutShort(*at))?;
    *at += n;
    Ok(slice)
}

/// The widest raster a receipt printer takes: 4 096 dots (no head is wider than 832).
pub const MAX_RASTER_WIDTH_BYTES: usize = 512;
/// The tallest raster in one command (a QR is a few hundred rows).
pub const MAX_RASTER_HEIGHT: usize = 8192;

/// Reads the subset of ESC/POS that [`Encoder`] writes.
pub fn parse(bytes: &[u8], code_page: CodePage) -> Result<Vec<Element>, EscposError> {
    let mut out = Vec::new();
    let (mut align, mut bold, mut width, mut height) = (Align::Left, false, 1u8, 1u8);
    let mut text: Vec<u8> = Vec::new();
    let mut qr_data: Vec<u8> = Vec::new();
    let mut qr_module = 3u8;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        at += 1;
        match b {
            LF => out.push(Element::Text {
                text: code_page.decode(&std::mem::take(&mut text)),
                align,
                bold,
                width,
                height,
            }),
            ESC => match take(bytes, &mut at, 1)?[0] {
                b'@' => (align, bold, width, height) = (Align::Left, false, 1, 1),
                b't' => {
                    take(bytes, &mut at, 1)?;
                }
                b'a' => {
                    align = match take(bytes, &mut at, 1)?[0] {
                        1 | b'1' => Align::Center,
                        2 | b'2' => Align::Right,
                        _ => Align::Left,
                    }
                }
                b'E' => bold = take(bytes, &mut at, 1)?[0] & 1 == 1,
                b'd' => out.push(Element::Feed(take(bytes, &mut at, 1)?[0])),
                other => {
                    return Err(EscposError::Unknown {
                        command: "ESC",
                        byte: other,
                        at: at - 2,
                    })
                }
            },
            FS => {
                take(bytes, &mut at, 1)?;
            }
            GS => match take(bytes, &mut at, 1)?[0] {
                b'!' => {
                    let n = take(bytes, &mut at, 1)?[0];
                    (width, height) = ((n >> 4) + 1, (n & 0x0F) + 1);
                }
                b'V' => {
                    let m = take(bytes, &mut at, 1)?[0];
                    if m == 0x41 || m == 0x42 {
                        take(bytes, &mut at, 1)?;
                    }
                    out.push(Element::Cut);
                }
                b'(' => {
                    let head = take(bytes, &mut at, 3)?;
                    if head[0] != b'k' {
                        return Err(EscposError::Unknown {
                            command: "GS (",
                            byte: head[0],
                            at: at - 3,
                        });
                    }
                    let len = head[1] as usize + 256 * head[2] as usize;
                    let body = take(bytes, &mut at, len)?;
                    // Lengths come from the device's bytes: every field is read with a bounds check.
                    match (body.first(), body.get(1)) {
                        (Some(0x31), Some(0x43)) => {
                            qr_module = *body.get(2).ok_or(EscposError::Incomplete("GS ( k 1 C"))?
                        }
                        (Some(0x31), Some(0x50)) => {
                            qr_data = body
                                .get(3..)
                                .ok_or(EscposError::Incomplete("GS ( k 1 P"))?
                                .to_vec()
                        }
                        (Some(0x31), Some(0x51)) => out.push(Element::NativeQr {
                            data: std::mem::take(&mut qr_data),
                            module: qr_module,
                        }),
                        _ => {}
                    }
                }
                b'v' => {
                    let head = take(bytes, &mut at, 6)?;
                    let mode = head[1];
                    let width_bytes = head[2] as usize + 256 * head[3] as usize;
                    let height = head[4] as usize + 256 * head[5] as usize;
                    if width_bytes > MAX_RASTER_WIDTH_BYTES || height > MAX_RASTER_HEIGHT {
                        return Err(EscposError::RasterTooLarge {
                            width_bytes,
                            height,
                        });
                    }
                    let data = take(bytes, &mut at, width_bytes * height)?.to_vec();
                    out.push(Element::Raster {
                        mode,
                        width_bytes,
                        height,
                        data,
                    });
                }
                other => {
                    return Err(EscposError::Unknown {
                        command: "GS",
                        byte: other,
                        at: at - 2,
                    })
                }
            },
            _ => text.push(b),
        }
    }
    Ok(out)
}

/// The text lines of parsed elements, trimmed.
pub fn text_lines(elements: &[Element]) -> Vec<String> {
    elements
        .iter()
        .filter_map(|e| match e {
            Element::Text { text, .. } => Some(text.trim().to_string()),
            _ => None,
        })
        .collect()
}

/// A raster as greyscale pixels (0 black, 255 white) as printed (quadruple mode doubled),
/// with a white border of `border` pixels.
pub fn raster_pixels(
    mode: u8,
    width_bytes: usize,
    height: usize,
    data: &[u8],
    border: usize,
) -> (usize, usize, Vec<u8>) {
    let (sx, sy) = match mode {
        1 => (2, 1),
        2 => (1, 2),
        3 => (2, 2),
        _ => (1, 1),
    };
    // Whatever the caller passes: no bigger than a printer's raster, no read past the data.
    let width_bytes = width_bytes.min(MAX_RASTER_WIDTH_BYTES);
    let height = height.min(MAX_RASTER_HEIGHT);
    let border = border.min(1024);
    let (w, h) = (width_bytes * 8 * sx + 2 * border, height * sy + 2 * border);
    let mut pixels = vec![255u8; w * h];
    for y in 0..height {
        for x in 0..width_bytes * 8 {
            let byte = data.get(y * width_bytes + x / 8).copied().unwrap_or(0);
            if byte & (0x80 >> (x % 8)) != 0 {
                for dy in 0..sy {
                    for dx in 0..sx {
                        pixels[(border + y * sy + dy) * w + border + x * sx + dx] = 0;
                    }
                }
            }
        }
    }
    (w, h, pixels)
}
