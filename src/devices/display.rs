//! The customer pole display: 2 lines of 20 characters, Epson or CD5220 commands. It cannot
//! show a QR; it shows the amount and where the QR is.

use super::profile::{CommandSet, DisplayProfile};
use crate::money::Kopecks;

const ESC: u8 = 0x1B;
const US: u8 = 0x1F;

/// What the customer should see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Idle,
    AwaitingPayment(Kopecks),
    Paid(Kopecks),
    Declined,
    /// The sale was cancelled at the till.
    Cancelled,
}

pub type Frame = [String; 2];

fn fits(text: &str, columns: usize) -> bool {
    text.chars().count() <= columns
}

/// The amount as the display's table allows: «12 345,00 ₽» or «12 345,00 руб».
fn amount_text(profile: &DisplayProfile, amount: Kopecks) -> String {
    let sign = if profile.rouble_sign && profile.code_page.has('₽') {
        "₽"
    } else {
        "руб"
    };
    format!("{} {sign}", amount.format_number())
}

/// «К оплате 999,00 руб» when it fits, shorter forms for bigger amounts.
fn amount_line(profile: &DisplayProfile, amount: Kopecks) -> String {
    let money = amount_text(profile, amount);
    [
        format!("К оплате {money}"),
        format!("Итого {money}"),
        money,
        amount.format_number(),
    ]
    .into_iter()
    .find(|l| fits(l, profile.columns))
    .unwrap_or_else(|| {
        amount
            .format_number()
            .chars()
            .take(profile.columns)
            .collect()
    })
}

/// The frames of a screen; more than one are shown in turn (a 20-column line cannot hold
/// «Сканируйте QR-код на чеке»).
pub fn frames(profile: &DisplayProfile, screen: Screen) -> Vec<Frame> {
    match screen {
        Screen::Idle => vec![profile
            .idle
            .clone()
            .unwrap_or_else(|| ["Добро пожаловать!".into(), String::new()])],
        Screen::AwaitingPayment(amount) => {
            let top = amount_line(profile, amount);
            let whole = "Сканируйте QR-код на чеке";
            if fits(whole, profile.columns) {
                vec![[top, whole.into()]]
            } else {
                vec![
                    [top.clone(), "Сканируйте QR-код".into()],
                    [top, "на чеке".into()],
                ]
            }
        }
        Screen::Paid(amount) => vec![["Оплачено. Спасибо!".into(), amount_text(profile, amount)]],
        Screen::Declined => vec![["Оплата отклонена".into(), String::new()]],
        Screen::Cancelled => vec![["Продажа отменена".into(), String::new()]],
    }
}

fn padded(profile: &DisplayProfile, text: &str) -> Vec<u8> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(profile.columns)
        .collect();
    let mut bytes = profile.code_page.encode(&clean);
    bytes.resize(profile.columns, b' ');
    bytes
}

/// DSP-800 commands open with EOT SOH and end with ETB.
const DSP800_OPEN: [u8; 2] = [0x04, 0x01];
const DSP800_CLOSE: u8 = 0x17;

/// DSP-800's byte for a display position (1 = upper left, 21 = lower left).
fn dsp800_position(position: usize) -> u8 {
    0x30 + position.clamp(1, 40) as u8
}

/// AEDEX's attention code, before each command.
const AEDEX_ATTENTION: &[u8] = b"!#";

/// Sent once when the port opens.
pub fn init_bytes(profile: &DisplayProfile) -> Vec<u8> {
    let mut out = Vec::new();
    match profile.command_set {
        CommandSet::Epson => out.extend_from_slice(&[ESC, b'@', US, b'C', 0, US, 0x01]),
        // CD5220 firmware picks Cyrillic with its own commands: the international set
        // Russia (`ESC f R`), then the code table (`ESC c n`); `ESC t` is Epson's.
        CommandSet::Cd5220 => out.extend_from_slice(&[ESC, b'@', ESC, 0x11, ESC, b'f', b'R']),
        // AEDEX has no reset: both lines are written blank.
        CommandSet::Aedex => {
            out.extend_from_slice(AEDEX_ATTENTION);
            out.push(b'9');
            out.resize(out.len() + 2 * profile.columns, b' ');
            out.push(0x0D);
        }
        // Clear positions 1..40.
        CommandSet::Dsp800 => {
            out.extend_from_slice(&DSP800_OPEN);
            out.extend_from_slice(&[b'C', dsp800_position(1), dsp800_position(40)]);
            out.push(DSP800_CLOSE);
        }
    }
    if let Some(n) = profile.code_table {
        match profile.command_set {
            CommandSet::Epson => out.extend_from_slice(&[ESC, b't', n]),
            CommandSet::Cd5220 => out.extend_from_slice(&[ESC, b'c', n]),
            // Chosen in the display's own setup; nothing to send.
            CommandSet::Aedex | CommandSet::Dsp800 => {}
        }
    }
    out
}

/// Writes both lines in full (padded), so nothing of the previous frame is left.
pub fn frame_bytes(profile: &DisplayProfile, frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * profile.columns + 12);
    match profile.command_set {
        CommandSet::Epson => {
            out.push(0x0B); // home
            out.extend(padded(profile, &frame[0]));
            out.extend_from_slice(&[US, b'$', 1, 2]);
            out.extend(padded(profile, &frame[1]));
        }
        CommandSet::Dsp800 => {
            for (start, text) in [(1, &frame[0]), (profile.columns + 1, &frame[1])] {
                out.extend_from_slice(&DSP800_OPEN);
                out.extend_from_slice(&[b'P', dsp800_position(start), DSP800_CLOSE]);
                out.extend(padded(profile, text));
            }
        }
        CommandSet::Aedex => {
            for (line, text) in [(b'1', &frame[0]), (b'2', &frame[1])] {
                out.extend_from_slice(AEDEX_ATTENTION);
                out.push(line);
                out.extend(padded(profile, text));
                out.push(0x0D);
            }
        }
        CommandSet::Cd5220 => {
            out.extend_from_slice(&[ESC, b'Q', b'A']);
            out.extend(padded(profile, &frame[0]));
            out.push(0x0D);
            out.extend_from_slice(&[ESC, b'Q', b'B']);
            out.extend(padded(profile, &frame[1]));
            out.push(0x0D);
        }
    }
    out
}

/// What a display shows after these bytes (for tests and the virtual display): the subset of
/// both command sets that this module writes.
pub fn emulate(profile: &DisplayProfile, bytes: &[u8]) -> Frame {
    let cols = profile.columns;
    let mut cells = vec![vec![b' '; cols]; 2];
    let (mut x, mut y) = (0usize, 0usize);
    let mut i = 0;
    let put = |cells: &mut Vec<Vec<u8>>, x: &mut usize, y: usize, b: u8| {
        if *x < cols && y < 2 {
            cells[y][*x] = b;
        }
        *x += 1;
    };
    while i < bytes.len() {
        if profile.command_set == CommandSet::Aedex && bytes[i..].starts_with(AEDEX_ATTENTION) {
            // `!#n text CR`: 1 the upper line, 2 the lower, 9 both (the lower continues).
            let which = bytes.get(i + 2).copied();
            i += 3;
            let (first, count) = match which {
                Some(b'2') => (1, 1),
                Some(b'9') => (0, 2),
                _ => (0, 1),
            };
            for row in cells.iter_mut().skip(first).take(count) {
                *row = vec![b' '; cols];
            }
            (x, y) = (0, first);
            while i < bytes.len() && bytes[i] != 0x0D {
                if x >= cols && y + 1 < first + count {
                    (x, y) = (0, y + 1);
                }
                put(&mut cells, &mut x, y, bytes[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if profile.command_set == CommandSet::Dsp800 && bytes[i..].starts_with(&DSP800_OPEN) {
            let command = bytes.get(i + 2).copied();
            let at = |k: usize| {
                bytes
                    .get(i + k)
                    .map_or(1, |b| usize::from(b.saturating_sub(0x30)).max(1))
                    - 1
            };
            match command {
                Some(b'P') => {
                    let p = at(3);
                    (x, y) = (p % cols, p / cols);
                    i += 5;
                }
                Some(b'C') => {
                    for p in at(3)..=at(4).min(2 * cols - 1) {
                        cells[p / cols][p % cols] = b' ';
                    }
                    i += 6;
                }
                _ => i += 2,
            }
            continue;
        }
        match bytes[i] {
            ESC if bytes.get(i + 1) == Some(&b'@') => {
                cells = vec![vec![b' '; cols]; 2];
                (x, y) = (0, 0);
                i += 2;
            }
            ESC if profile.command_set == CommandSet::Epson && bytes.get(i + 1) == Some(&b't') => {
                i += 3
            }
            ESC if profile.command_set == CommandSet::Cd5220
                && matches!(bytes.get(i + 1), Some(b'f' | b'c')) =>
            {
                i += 3
            }
            ESC if bytes.get(i + 1) == Some(&0x11) => i += 2,
            ESC if bytes.get(i + 1) == Some(&b'Q') => {
                y = if bytes.get(i + 2) == Some(&b'B') {
                    1
                } else {
                    0
                };
                x = 0;
                cells[y] = vec![b' '; cols];
                i += 3;
                while i < bytes.len() && bytes[i] != 0x0D {
                    put(&mut cells, &mut x, y, bytes[i]);
                    i += 1;
                }
                i += 1;
            }
            US if bytes.get(i + 1) == Some(&b'$') => {
                x = bytes
                    .get(i + 2)
                    .map_or(1, |v| *v as usize)
                    .saturating_sub(1);
                y = bytes
                    .get(i + 3)
                    .map_or(1, |v| *v as usize)
                    .saturating_sub(1);
                i += 4;
            }
            US if bytes.get(i + 1) == Some(&b'C') => i += 3,
            US => i += 2,
            0x0C => {
                cells = vec![vec![b' '; cols]; 2];
                (x, y) = (0, 0);
                i += 1;
            }
            0x0B => {
                (x, y) = (0, 0);
                i += 1;
            }
            b => {
                put(&mut cells, &mut x, y, b);
                i += 1;
            }
        }
    }
    let line = |row: &Vec<u8>| profile.code_page.decode(row).trim_end().to_string();
    [line(&cells[0]), line(&cells[1])]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::profile;

    #[test]
    fn cd5220_selects_cyrillic_its_own_way_and_epson_with_esc_t() {
        let cd = init_bytes(&profile::display("generic-cd5220", None).unwrap());
        let has = |b: &[u8], n: &[u8]| b.windows(n.len()).any(|w| w == n);
        assert!(has(&cd, &[ESC, b'f', b'R']), "{cd:02x?}");
        assert!(has(&cd, &[ESC, b'c', 17]), "{cd:02x?}");
        assert!(!has(&cd, &[ESC, b't']), "{cd:02x?}");
        let epson = init_bytes(&profile::display("epson-dm-d110", None).unwrap());
        assert!(has(&epson, &[ESC, b't']) && !has(&epson, &[ESC, b'f', b'R']));
    }

    #[test]
    fn the_idle_text_is_the_shops_when_set() {
        let mut p = profile::display("generic-cd5220", None).unwrap();
        p.idle = Some(["Ромашка".into(), "Оплата частями".into()]);
        let frame = &frames(&p, Screen::Idle)[0];
        let mut bytes = init_bytes(&p);
        bytes.extend(frame_bytes(&p, frame));
        assert_eq!(emulate(&p, &bytes), ["Ромашка", "Оплата частями"]);
    }

    #[test]
    fn every_state_fits_twenty_columns_on_both_command_sets() {
        for name in [
            "epson-dm-d110",
            "generic-cd5220",
            "generic-aedex",
            "generic-dsp800",
        ] {
            let p = profile::display(name, None).unwrap();
            let amount = Kopecks::new(1_234_500).unwrap();
            let cases = [
                (
                    Screen::AwaitingPayment(amount),
                    ["Итого 12 345,00 руб", "Сканируйте QR-код"],
                ),
                (
                    Screen::AwaitingPayment(Kopecks::new(99_900).unwrap()),
                    ["К оплате 999,00 руб", "Сканируйте QR-код"],
                ),
                (
                    Screen::Paid(amount),
                    ["Оплачено. Спасибо!", "12 345,00 руб"],
                ),
                (Screen::Declined, ["Оплата отклонена", ""]),
                (Screen::Cancelled, ["Продажа отменена", ""]),
                (Screen::Idle, ["Добро пожаловать!", ""]),
            ];
            for (screen, expected) in cases {
                let first = &frames(&p, screen)[0];
                let mut bytes = init_bytes(&p);
                // Something long before, to prove a frame overwrites everything.
                bytes.extend(frame_bytes(&p, &["X".repeat(20), "Y".repeat(20)]));
                bytes.extend(frame_bytes(&p, first));
                assert_eq!(
                    emulate(&p, &bytes),
                    expected.map(String::from),
                    "{name} {screen:?}"
                );
            }
            let awaiting = frames(&p, Screen::AwaitingPayment(amount));
            assert_eq!(awaiting[1][1], "на чеке");
        }
    }
}
