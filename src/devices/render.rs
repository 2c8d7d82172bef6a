//! A virtual printer: draws the ESC/POS bytes of a slip as the profile's printer would
//! print them, so a slip can be seen without a printer (`chasti render --png`) and the demo
//! can show its receipts. It reads the same bytes that go to the port.

use std::convert::Infallible;

use embedded_graphics_core::pixelcolor::BinaryColor;
use embedded_graphics_core::prelude::{DrawTarget, OriginDimensions, Pixel, Point, Size};
use u8g2_fonts::types::{FontColor, VerticalPosition};
use u8g2_fonts::{fonts, FontRenderer};

use super::escpos::{parse, raster_pixels, Align, Element};
use super::profile::PrinterProfile;
use super::qr::QrSymbol;

/// Font A: 12 dots a character (24 high), 30 dots a line.
const CELL_W: u32 = 12;
const LINE: u32 = 30;
const MARGIN: u32 = 16;

struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn grow(&mut self, to: u32) {
        if to > self.height {
            self.pixels.resize((self.width * to) as usize, 255);
            self.height = to;
        }
    }

    fn set(&mut self, x: i64, y: i64) {
        if x < 0 || y < 0 || x >= self.width as i64 {
            return;
        }
        self.grow(y as u32 + 1);
        self.pixels[(y as u32 * self.width + x as u32) as usize] = 0;
    }
}

/// Draws glyphs into the canvas at an origin, scaled (double width / height text).
struct Pen<'a> {
    canvas: &'a mut Canvas,
    origin: (i64, i64),
    scale: (u32, u32),
}

impl OriginDimensions for Pen<'_> {
    fn size(&self) -> Size {
        Size::new(self.canvas.width, u32::MAX / 4)
    }
}

impl DrawTarget for Pen<'_> {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<BinaryColor>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Infallible> {
        for Pixel(p, color) in pixels {
            if color != BinaryColor::On {
                continue;
            }
            for dy in 0..self.scale.1 as i64 {
                for dx in 0..self.scale.0 as i64 {
                    let x = self.origin.0 + p.x as i64 * self.scale.0 as i64 + dx;
                    let y = self.origin.1 + p.y as i64 * self.scale.1 as i64 + dy;
                    self.canvas.set(x, y);
                }
            }
        }
        Ok(())
    }
}

fn left_for(align: Align, used: u32, width: u32) -> i64 {
    match align {
        Align::Left => 0,
        Align::Center => (width.saturating_sub(used) / 2) as i64,
        Align::Right => width.saturating_sub(used) as i64,
    }
}

/// Why a slip could not be drawn or saved.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the slip's bytes: {0}")]
    Bytes(#[from] super::escpos::EscposError),
    #[error(transparent)]
    Qr(#[from] super::qr::QrError),
    #[error("the picture could not be made")]
    Picture,
    #[error("the PNG could not be made: {0}")]
    Png(#[from] png::EncodingError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A slip drawn as the printer would print it: 8-bit grey pixels, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipPicture {
    pub width: u32,
    pub height: u32,
    /// `width × height` bytes, 0 black to 255 white.
    pub pixels: Vec<u8>,
}

impl SlipPicture {
    /// The picture as a PNG file's bytes (greyscale, 8 bits), with the `png` crate: the
    /// `image` crate would bring colour management and a dozen codecs for this one format.
    pub fn to_png(&self) -> Result<Vec<u8>, RenderError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }

    /// Writes the PNG to `path`.
    pub fn save(&self, path: &std::path::Path) -> Result<(), RenderError> {
        let png = self.to_png()?;
        std::fs::write(path, png).map_err(|source| RenderError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

/// The slip as a greyscale picture, `dots_per_line` wide (plus margins).
pub fn render(profile: &PrinterProfile, bytes: &[u8]) -> Result<SlipPicture, RenderError> {
    let elements = parse(bytes, profile.code_page)?;
    let head = profile.dots_per_line;
    let width = head + 2 * MARGIN;
    let mut canvas = Canvas {
        width,
        height: MARGIN,
        pixels: vec![255; (width * MARGIN) as usize],
    };
    let font = FontRenderer::new::<fonts::u8g2_font_10x20_t_cyrillic>();
    let mut y = MARGIN as i64;
    let mut align = Align::Left;
    for element in &elements {
        match element {
            Element::Text {
                text,
                align: a,
                bold,
                width: w,
                height: h,
            } => {
                align = *a;
                let chars: Vec<char> = text.chars().collect();
                let used = chars.len() as u32 * CELL_W * *w as u32;
                let x0 = MARGIN as i64 + left_for(*a, used, head);
                for (i, c) in chars.iter().enumerate() {
                    let cell_x = x0 + (i as u32 * CELL_W * *w as u32) as i64;
                    for pass in 0..if *bold { 2 } else { 1 } {
                        let mut pen = Pen {
                            canvas: &mut canvas,
                            origin: (cell_x + pass, y + 2 * *h as i64),
                            scale: (*w as u32, *h as u32),
                        };
                        let _ = font.render(
                            *c,
                            Point::new(1, 0),
                            VerticalPosition::Top,
                            FontColor::Transparent(BinaryColor::On),
                            &mut pen,
                        );
                    }
                }
                y += (LINE * *h as u32) as i64;
                canvas.grow(y as u32);
            }
            Element::NativeQr { data, module } => {
                let link = String::from_utf8_lossy(data);
                let symbol = QrSymbol::encode(&link)?;
                let side = symbol.modules as u32 * *module as u32;
                let x0 = MARGIN as i64 + left_for(align, side, head);
                for my in 0..symbol.modules {
                    for mx in 0..symbol.modules {
                        if symbol.dark(mx, my) {
                            for dy in 0..*module as i64 {
                                for dx in 0..*module as i64 {
                                    canvas.set(
                                        x0 + (mx as i64 * *module as i64) + dx,
                                        y + (my as i64 * *module as i64) + dy,
                                    );
                                }
                            }
                        }
                    }
                }
                y += side as i64 + 8;
            }
            Element::Raster {
                mode,
                width_bytes,
                height,
                data,
            } => {
                let (w, h, pixels) = raster_pixels(*mode, *width_bytes, *height, data, 0);
                let x0 = MARGIN as i64 + left_for(align, w as u32, head);
                for py in 0..h {
                    for px in 0..w {
                        if pixels[py * w + px] == 0 {
                            canvas.set(x0 + px as i64, y + py as i64);
                        }
                    }
                }
                y += h as i64;
            }
            Element::Feed(n) => y += (LINE * *n as u32) as i64,
            Element::Cut => {
                y += LINE as i64 / 2;
                for x in (0..width as i64).step_by(8) {
                    for dx in 0..4 {
                        canvas.set(x + dx, y);
                    }
                }
                y += LINE as i64 / 2;
            }
        }
        canvas.grow(y.max(0) as u32);
    }
    canvas.grow(y.max(0) as u32 + MARGIN);
    if canvas.pixels.len() != canvas.width as usize * canvas.height as usize {
        return Err(RenderError::Picture);
    }
    Ok(SlipPicture {
        width: canvas.width,
        height: canvas.height,
        pixels: canvas.pixels,
    })
}
