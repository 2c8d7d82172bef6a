//! Choosing a QR symbol's mask: the symbol is drawn with each of the 8 masks and the one with
//! the lowest penalty (ISO/IEC 18004 §7.8.3, as the `qrcode` crate scores it) is kept.
//!
//! Written here, not left to `qrcode`'s `apply_best_mask`: that scores each mask through boxed
//! closures per module and took 1.4 ms of the 1.5 ms a bank-length link costs, on every sale.
//! This scores the same rules on rows and columns held as bits (a symbol is at most 177
//! modules wide: three u64 words a line), a few microseconds a mask; a test checks it picks
//! exactly the symbol `qrcode` picks.
//!
//! Masking itself is a XOR of bits too: a version's symbol under mask p is its empty canvas
//! masked with p (function patterns, the format bits of p, and p's bits over the data area)
//! XOR the dark data modules. Those 8 templates are drawn by `qrcode` once per version and
//! kept ([`templates`]), so a sale no longer masks 8 canvases module by module.

use std::sync::OnceLock;

use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{Color, EcLevel, Version};

/// The order `qrcode` tries the masks in: the first of equal scores wins, as there.
const PATTERNS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// Words a line of modules takes (177 modules at most).
const WORDS: usize = 3;

/// A line of modules as bits, module `i` at bit `i % 64` of word `i / 64`; 1 = dark.
#[derive(Clone, Copy, Default)]
struct Line([u64; WORDS]);

impl Line {
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// A symbol as rows and as columns of bits.
pub(super) struct Symbol {
    width: usize,
    rows: Vec<Line>,
    columns: Vec<Line>,
    dark: u32,
}

impl Symbol {
    /// The modules of `canvas` that `dark` says are dark.
    fn from_canvas(canvas: &Canvas, width: usize, dark: impl Fn(Module) -> bool) -> Symbol {
        let mut rows = vec![Line::default(); width];
        let mut columns = vec![Line::default(); width];
        let mut count = 0;
        for (y, row) in rows.iter_mut().enumerate() {
            for (x, column) in columns.iter_mut().enumerate() {
                // Both below 177: the casts cannot wrap.
                if dark(canvas.get(x as i16, y as i16)) {
                    row.set(x);
                    column.set(y);
                    count += 1;
                }
            }
        }
        Symbol {
            width,
            rows,
            columns,
            dark: count,
        }
    }

    /// The dark data modules of a drawn, unmasked canvas.
    pub(super) fn data_of(canvas: &Canvas, width: usize) -> Symbol {
        Symbol::from_canvas(canvas, width, |m| m == Module::Unmasked(Color::Dark))
    }

    /// This symbol with `other`'s dark modules flipped.
    fn xor(&self, other: &Symbol) -> Symbol {
        let flip = |a: &[Line], b: &[Line]| -> Vec<Line> {
            a.iter()
                .zip(b)
                .map(|(a, b)| Line(std::array::from_fn(|w| a.0[w] ^ b.0[w])))
                .collect()
        };
        let rows = flip(&self.rows, &other.rows);
        let dark = rows
            .iter()
            .map(|l| l.0.iter().map(|w| w.count_ones()).sum::<u32>())
            .sum();
        Symbol {
            width: self.width,
            columns: flip(&self.columns, &other.columns),
            rows,
            dark,
        }
    }

    /// The symbol with the lowest penalty among the 8 masks of `data`'s version (the first of
    /// equal scores, as `qrcode` does).
    pub(super) fn best_masked(data: &Symbol, version: Version) -> Option<Symbol> {
        let mut best: Option<(u32, Symbol)> = None;
        for template in templates(version)? {
            let symbol = template.xor(data);
            let score = symbol.penalty();
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, symbol));
            }
        }
        best.map(|(_, symbol)| symbol)
    }

    /// Row by row, true = dark.
    pub(super) fn cells(&self) -> Vec<bool> {
        let mut out = Vec::with_capacity(self.width * self.width);
        for row in &self.rows {
            out.extend((0..self.width).map(|x| row.get(x)));
        }
        out
    }

    /// The penalty: lower is better.
    pub(super) fn penalty(&self) -> u32 {
        let mut score = 0;
        for lines in [&self.rows, &self.columns] {
            for line in lines.iter() {
                score += runs(line, self.width) + finders(line, self.width);
            }
        }
        // The three finder patterns always match rule 3 (9 × 40): taken back out, as in
        // `qrcode`.
        score = score.saturating_sub(360);
        score + self.blocks() + self.balance()
    }

    /// Rule 2: each 2×2 block of one colour (overlapping): 3.
    fn blocks(&self) -> u32 {
        let mut score = 0;
        for pair in self.rows.windows(2) {
            for w in 0..WORDS {
                let (a, b) = (pair[0].0[w], pair[1].0[w]);
                // Bit i of the next module of each row: bit i+1, from the next word at the end.
                let next = |line: &Line| line.0[w] >> 1 | line.0.get(w + 1).map_or(0, |n| n << 63);
                let (an, bn) = (next(&pair[0]), next(&pair[1]));
                let same = !(a ^ an) & !(a ^ b) & !(b ^ bn);
                let valid = valid_bits(self.width - 1, w);
                score += 3 * (same & valid).count_ones();
            }
        }
        score
    }

    /// Rule 4: how far the dark share is from half (not rounded to 5 %, as in `qrcode`).
    fn balance(&self) -> u32 {
        let ratio = self.dark * 200 / (self.width * self.width).max(1) as u32;
        ratio.abs_diff(100)
    }
}

/// A version's empty canvas masked with each pattern, in [`PATTERNS`] order, drawn by
/// `qrcode` the first time the version is asked for (a process sees one or two versions: the
/// bank's links are all of one length). None for a Micro QR version (never used here).
fn templates(version: Version) -> Option<&'static [Symbol; 8]> {
    static DRAWN: [OnceLock<[Symbol; 8]>; 40] = [const { OnceLock::new() }; 40];
    let Version::Normal(n @ 1..=40) = version else {
        return None;
    };
    let width = version.width() as usize;
    Some(DRAWN[n as usize - 1].get_or_init(|| {
        PATTERNS.map(|pattern| {
            let mut canvas = Canvas::new(version, EcLevel::M);
            canvas.draw_all_functional_patterns();
            canvas.apply_mask(pattern);
            Symbol::from_canvas(&canvas, width, Module::is_dark)
        })
    }))
}

/// The bits of word `w` that are among the first `n` modules.
fn valid_bits(n: usize, w: usize) -> u64 {
    let start = w * 64;
    if n <= start {
        0
    } else if n >= start + 64 {
        u64::MAX
    } else {
        (1u64 << (n - start)) - 1
    }
}

impl Line {
    /// The line moved `k` modules towards bit 0 (module `i + k` at bit `i`), `k` < 64.
    fn shifted(&self, k: u32) -> Line {
        let mut out = [0u64; WORDS];
        for (w, word) in out.iter_mut().enumerate() {
            let high = match (k, self.0.get(w + 1)) {
                (0, _) | (_, None) => 0,
                (k, Some(next)) => next << (64 - k),
            };
            *word = self.0[w] >> k | high;
        }
        Line(out)
    }

    /// The set bits among the first `n` modules, lowest first.
    fn ones(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        (0..WORDS).flat_map(move |w| {
            let mut bits = self.0[w] & valid_bits(n, w);
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + i
                })
            })
        })
    }
}

/// Rule 1: each run of five or more of one colour: 3 + (run − 5).
fn runs(line: &Line, width: usize) -> u32 {
    // Bit i of `changes`: module i + 1 differs from module i, i.e. a run ends at i.
    let next = line.shifted(1);
    let mut changes = Line::default();
    for w in 0..WORDS {
        changes.0[w] = line.0[w] ^ next.0[w];
    }
    let mut score = 0;
    let mut start = 0;
    for end in changes.ones(width - 1).chain(std::iter::once(width - 1)) {
        let run = (end + 1 - start) as u32;
        if run >= 5 {
            score += run - 2;
        }
        start = end + 1;
    }
    score
}

/// Rule 3: dark-light-dark-dark-dark-light-dark with four light modules on a side: 40 each.
fn finders(line: &Line, width: usize) -> u32 {
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    if width < 7 {
        return 0;
    }
    // Bit j of `starts`: the pattern starts at module j (all seven compared at once).
    let mut starts = Line([u64::MAX; WORDS]);
    for (k, dark) in FINDER.iter().enumerate() {
        let moved = line.shifted(k as u32);
        for w in 0..WORDS {
            starts.0[w] &= if *dark { moved.0[w] } else { !moved.0[w] };
        }
    }
    let mut score = 0;
    for j in starts.ones(width - 6) {
        let dark_in = |from: usize, to: usize| (from..to.min(width)).any(|k| line.get(k));
        if !dark_in(j.saturating_sub(4), j) || !dark_in(j + 7, j + 11) {
            score += 40;
        }
    }
    score
}
