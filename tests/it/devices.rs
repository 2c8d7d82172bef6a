//! Printers and displays on real pseudo-terminals (`TTYPort::pair()`), with a fake device
//! thread on the master side: the bytes are parsed back (native QR payload, raster decoded
//! with rqrr, Russian text from the code page), status answers, a port that vanishes mid-slip.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chasti::devices::display::{self, Screen};
use chasti::devices::escpos::{parse, raster_pixels, text_lines, Element};
use chasti::devices::link::{DeviceError, PortSettings};
use chasti::devices::pole::Display;
use chasti::devices::printer::{Printer, PrinterEvent};
use chasti::devices::profile::{self, PrinterProfile};
use chasti::devices::slip::{self, SlipOrder, INSTRUCTION};
use chasti::domain::PaymentUrl;
use chasti::money::Kopecks;
use chasti::orders::StateKind;

use crate::common::{settings, FakeDevice};

const LINK: &str = "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=2f5bd8e8-3b3e-7c46-9a8f-4a1e00a8b38b";
const QUERIES: [u8; 9] = [0x10, 0x04, 1, 0x10, 0x04, 2, 0x10, 0x04, 4];

fn sample() -> SlipOrder<'static> {
    SlipOrder {
        shop_name: "Магазин «Ромашка»",
        order_number: "S1-1-261123-0042",
        amount: Kopecks::new(1_234_550).unwrap(),
        link_expires_at: chrono::DateTime::parse_from_rfc3339("2026-11-23T09:20:00Z")
            .unwrap()
            .into(),
    }
}

fn payment_link() -> PaymentUrl {
    PaymentUrl::parse(LINK).unwrap()
}

fn printer_profiles() -> Vec<PrinterProfile> {
    let mut all: Vec<PrinterProfile> = ["epson-tm-t20iii", "xprinter-xp58", "rongta-rp326"]
        .iter()
        .map(|n| profile::printer(n, None).unwrap())
        .collect();
    // A raster-only printer that allows quadruple mode, to cover that path too.
    let mut quad = profile::printer("xprinter-xp58", None).unwrap();
    quad.name = "raster-quadruple".into();
    quad.raster_quadruple = true;
    all.push(quad);
    all
}

pub(crate) fn decode_raster(mode: u8, width_bytes: usize, height: usize, data: &[u8]) -> String {
    let (w, h, pixels) = raster_pixels(mode, width_bytes, height, data, 24);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR symbol in the raster");
    grids[0].decode().expect("the raster decodes").1
}

#[tokio::test]
async fn each_profile_prints_a_slip_that_reads_back_as_the_link_and_russian_text() {
    for profile in printer_profiles() {
        let device = FakeDevice::start(0x12);
        let printer = Printer::spawn(settings(&device.path()), profile.clone());
        let expected = slip::payment_slip(&profile, &sample(), &payment_link()).unwrap();
        printer
            .print("payment slip", expected.clone())
            .await
            .unwrap();
        let got = device.wait_for(QUERIES.len() + expected.len());
        assert_eq!(&got[..9], &QUERIES, "{}: status asked first", profile.name);
        assert_eq!(
            &got[9..],
            expected.as_slice(),
            "{}: the slip as encoded",
            profile.name
        );

        let elements = parse(&got[9..], profile.code_page).unwrap();
        let qr: Vec<String> = elements
            .iter()
            .filter_map(|e| match e {
                Element::NativeQr { data, .. } => Some(String::from_utf8(data.clone()).unwrap()),
                Element::Raster {
                    mode,
                    width_bytes,
                    height,
                    data,
                } => {
                    if profile.raster_quadruple {
                        assert_eq!(*mode, 3, "{}: quadruple mode", profile.name);
                    }
                    Some(decode_raster(*mode, *width_bytes, *height, data))
                }
                _ => None,
            })
            .collect();
        assert_eq!(qr, [LINK], "{}: the QR is the link", profile.name);
        assert_eq!(
            elements
                .iter()
                .any(|e| matches!(e, Element::NativeQr { .. })),
            profile.native_qr,
            "{}: native QR only where the profile has it",
            profile.name
        );
        if profile.fs_dot {
            assert_eq!(
                &got[9..13],
                &[0x1B, b'@', 0x1C, b'.'],
                "{}: FS . after init",
                profile.name
            );
        }

        let lines = text_lines(&elements);
        for needed in [
            "Магазин \"Ромашка\"",
            "Оплата частями",
            "12 345,50 руб.",
            "Заказ S1-1-261123-0042",
            "Ссылка действует до 12:20 (МСК)",
        ] {
            assert!(
                lines.iter().any(|l| l == needed),
                "{}: {needed:?} in {lines:#?}",
                profile.name
            );
        }
        let from = lines
            .iter()
            .position(|l| l.starts_with("Наведите"))
            .unwrap();
        let to = from
            + lines[from..]
                .iter()
                .position(|l| l.ends_with("частями."))
                .unwrap();
        let instruction: Vec<&str> = lines[from..=to].iter().map(|l| l.as_str()).collect();
        assert_eq!(instruction.join(" "), INSTRUCTION, "{}", profile.name);
        let start = lines
            .iter()
            .position(|l| l.starts_with("https://"))
            .unwrap();
        let link_text: String = lines[start..]
            .iter()
            .take_while(|l| !l.is_empty())
            .cloned()
            .collect();
        assert_eq!(link_text, LINK, "{}: the link as text", profile.name);
        for line in &lines {
            assert!(
                line.chars().count() <= profile.columns,
                "{}: {line:?} fits",
                profile.name
            );
            assert!(
                !line.contains('?') || LINK.contains(line.as_str()),
                "{}: no unmappable characters in {line:?}",
                profile.name
            );
        }
    }
}

#[tokio::test]
async fn paper_out_keeps_the_slip_and_it_prints_once_when_paper_is_back() {
    let device = FakeDevice::start(0x72);
    let profile = profile::printer("epson-tm-t20iii", None).unwrap();
    let printer = Printer::spawn(settings(&device.path()), profile.clone());
    let mut events = printer.subscribe();
    let bytes = slip::payment_slip(&profile, &sample(), &payment_link()).unwrap();
    let err = printer
        .print("payment slip", bytes.clone())
        .await
        .unwrap_err();
    assert_eq!(err, DeviceError::PaperOut);
    assert!(err.to_string().contains("закончилась бумага"), "{err}");
    assert_eq!(printer.kept(), 1);
    assert!(
        !contains(&device.captured(), &bytes),
        "nothing printed on an empty printer"
    );

    device.status.store(0x16, Ordering::SeqCst); // cover open now
                                                 // Two more tries with the cover open (each asks the status): still nothing printed.
    let asked = count(&device.captured(), &QUERIES);
    device.wait_until(|got| count(got, &QUERIES) >= asked + 2);
    assert!(!contains(&device.captured(), &bytes));

    device.status.store(0x12, Ordering::SeqCst);
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(PrinterEvent::Printed { label }) = events.recv().await {
                return label;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event, "payment slip");
    // Printed and off the queue: nothing is left that could print it again.
    assert_eq!(printer.kept(), 0);
    device.wait_until(|got| contains(got, &bytes));
    assert_eq!(count(&device.captured(), &bytes), 1, "printed exactly once");
}

#[tokio::test]
async fn a_port_that_vanishes_mid_slip_prints_the_slip_once_whole_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("printer"); // like /dev/serial/by-id/…: stable across replugs
    let first = FakeDevice::start(0x12);
    std::os::unix::fs::symlink(first.path(), &link).unwrap();
    let profile = profile::printer("xprinter-xp58", None).unwrap(); // a ~3 KB raster slip
    let bytes = slip::payment_slip(&profile, &sample(), &payment_link()).unwrap();
    assert!(bytes.len() > 2000);
    *first.hang_up_after.lock().unwrap() = 9 + 700;
    // 9600 baud: the slip takes ~3 s on the wire, so the device vanishes well inside it.
    let slow = PortSettings {
        baud: 9600,
        ..settings(&link)
    };
    let printer = Printer::spawn(slow, profile.clone());
    let mut events = printer.subscribe();
    let err = printer
        .print("payment slip", bytes.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, DeviceError::Port { .. }), "{err:?}");
    let partial = first.captured();
    assert!(
        partial.len() < 9 + bytes.len(),
        "the first device got only part of the slip"
    );

    // The printer comes back (a new device node behind the same link).
    let second = FakeDevice::start(0x12);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(second.path(), &link).unwrap();
    let printed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(PrinterEvent::Printed { label }) = events.recv().await {
                return label;
            }
        }
    })
    .await
    .expect("the kept slip prints on the returned printer");
    assert_eq!(printed, "payment slip");
    assert_eq!(printer.kept(), 0, "nothing left to print");
    let got = second.wait_for(9 + bytes.len());
    assert_eq!(got.len(), 9 + bytes.len(), "nothing more than the slip");
    assert_eq!(&got[9..], bytes.as_slice(), "the whole slip, once");
}

#[tokio::test]
async fn the_display_shows_each_state_on_both_command_sets() {
    for name in [
        "epson-dm-d110",
        "generic-cd5220",
        "generic-aedex",
        "generic-dsp800",
    ] {
        let device = FakeDevice::start(0x12);
        let profile = profile::display(name, None).unwrap();
        let display = Display::spawn(settings(&device.path()), profile.clone());
        let amount = Kopecks::new(1_234_500).unwrap();
        let cases = [
            (
                Screen::AwaitingPayment(amount),
                ["Итого 12 345,00 руб", "Сканируйте QR-код"],
            ),
            (
                Screen::Paid(amount),
                ["Оплачено. Спасибо!", "12 345,00 руб"],
            ),
            (Screen::Declined, ["Оплата отклонена", ""]),
            (Screen::Idle, ["Добро пожаловать!", ""]),
        ];
        for (screen, expected) in cases {
            display.show(screen);
            let expected = expected.map(String::from);
            let mut shown = display::emulate(&profile, &device.captured());
            for _ in 0..100 {
                if shown == expected {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                shown = display::emulate(&profile, &device.captured());
            }
            assert_eq!(shown, expected, "{name}: {screen:?}");
        }
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    count(haystack, needle) > 0
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..250 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn a_sale_prints_its_slip_and_shows_the_amount_then_the_payment() {
    let (paper, pole) = (FakeDevice::start(0x12), FakeDevice::start(0x12));
    let tm = profile::printer("epson-tm-t20iii", None).unwrap();
    let dp = profile::display("epson-dm-d110", None).unwrap();
    let h = crate::common::Harness::new(crate::common::HarnessOptions {
        printer: Some(Printer::spawn(settings(&paper.path()), tm.clone())),
        display: Some(Display::spawn(settings(&pole.path()), dp.clone())),
        ..Default::default()
    })
    .await;

    let order = h
        .engine
        .sell(crate::common::Harness::sale(
            1499,
            chasti::orders::Mode::OneStage,
        ))
        .await
        .map(|sold| sold.order)
        .unwrap();
    let link = crate::common::Harness::link(&order);
    let mut store_qr = vec![
        0x1D,
        b'(',
        b'k',
        ((link.len() + 3) % 256) as u8,
        ((link.len() + 3) / 256) as u8,
        0x31,
        0x50,
        0x30,
    ];
    store_qr.extend_from_slice(link.as_bytes());
    eventually("the payment slip with the order's link", || {
        contains(&paper.captured(), &store_qr)
    })
    .await;
    let number = tm
        .code_page
        .encode(&format!("Заказ {}", order.order_number));
    assert!(contains(&paper.captured(), &number));
    let awaiting = display::frames(&dp, Screen::AwaitingPayment(order.amount))[0].clone();
    assert_eq!(
        awaiting,
        [
            "Итого 1 499,00 руб".to_string(),
            "Сканируйте QR-код".to_string()
        ]
    );
    eventually("the amount on the display", || {
        display::emulate(&dp, &pole.captured()) == awaiting
    })
    .await;

    h.sandbox
        .pay(crate::common::Harness::gateway_id(&order))
        .unwrap();
    let paid = tm.code_page.encode("ОПЛАЧЕНО");
    eventually("the paid slip", || contains(&paper.captured(), &paid)).await;
    let thanks = ["Оплачено. Спасибо!".to_string(), "1 499,00 руб".to_string()];
    eventually("«Оплачено» on the display", || {
        display::emulate(&dp, &pole.captured()) == thanks
    })
    .await;
    assert_eq!(count(&paper.captured(), &store_qr), 1, "one payment slip");
}

#[tokio::test]
async fn an_empty_printer_never_fails_a_sale() {
    let (paper, pole) = (FakeDevice::start(0x72), FakeDevice::start(0x12));
    let printer = Printer::spawn(
        settings(&paper.path()),
        profile::printer("xprinter-xp58", None).unwrap(),
    );
    let display = Display::spawn(
        settings(&pole.path()),
        profile::display("generic-cd5220", None).unwrap(),
    );
    let h = crate::common::Harness::new(crate::common::HarnessOptions {
        printer: Some(printer.clone()),
        display: Some(display),
        ..Default::default()
    })
    .await;
    let order = h
        .engine
        .sell(crate::common::Harness::sale(
            10,
            chasti::orders::Mode::OneStage,
        ))
        .await
        .map(|sold| sold.order)
        .expect("the sale goes through without paper");
    assert!(order.state.bank().is_some(), "the link is still returned");
    eventually("the slip kept for reprint", || printer.kept() == 1).await;
}

/// The printer is off (paper out) while a sale is made; the customer pays from the screen;
/// then the printer comes back. Only the paid slip prints: a kept payment slip never puts a
/// dead QR in a customer's hand.
#[tokio::test]
async fn a_payment_slip_kept_while_the_printer_was_off_is_dropped_once_the_order_is_paid() {
    let paper = FakeDevice::start(0x72);
    let tm = profile::printer("epson-tm-t20iii", None).unwrap();
    let printer = Printer::spawn(settings(&paper.path()), tm.clone());
    let mut events = printer.subscribe();
    let h = crate::common::Harness::new(crate::common::HarnessOptions {
        printer: Some(printer),
        ..Default::default()
    })
    .await;
    let order = h
        .engine
        .sell(crate::common::Harness::sale(
            777,
            chasti::orders::Mode::OneStage,
        ))
        .await
        .map(|sold| sold.order)
        .unwrap();
    let link = crate::common::Harness::link(&order);
    let kept = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(PrinterEvent::Kept { label, .. }) = events.recv().await {
                return label;
            }
        }
    })
    .await
    .expect("the payment slip is kept while the paper is out");
    assert!(
        kept.contains("payment") || kept.contains(order.order_number.as_str()),
        "{kept}"
    );

    h.sandbox
        .pay(crate::common::Harness::gateway_id(&order))
        .unwrap();
    h.wait_state(&order.id, StateKind::Paid).await;
    paper.status.store(0x12, Ordering::SeqCst);
    let paid = tm.code_page.encode("ОПЛАЧЕНО");
    eventually("the paid slip", || contains(&paper.captured(), &paid)).await;
    assert!(
        !contains(&paper.captured(), link.as_bytes()),
        "the payment slip with its link never printed"
    );
}

/// The paper-near-end sensor: the slip prints, and the till, `/metrics` and the devices view
/// say to change the roll.
#[tokio::test]
async fn paper_near_its_end_prints_and_warns_the_till() {
    let paper = FakeDevice::start(0x12);
    paper.paper.store(0x12 | 0x0C, Ordering::SeqCst); // near-end sensor on
    let tm = profile::printer("epson-tm-t20iii", None).unwrap();
    let h = crate::common::Harness::new(crate::common::HarnessOptions {
        printer: Some(Printer::spawn(settings(&paper.path()), tm.clone())),
        ..Default::default()
    })
    .await;
    let till = crate::common::TillClient::new(h.api());
    let sale = till.sale("120.00", "paper-low-1").await;
    let printer = sale["devices"]["printer"].as_str().unwrap();
    assert!(printer.starts_with("чек напечатан"), "{printer}");
    assert!(printer.contains("бумага заканчивается"), "{printer}");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("chasti_device_warnings_total{warning=\"paper_near_end\"} 1"),
        "{metrics}"
    );
}

/// Every profile's payment slip leaves at least four modules of blank paper above and below
/// the QR (the standard's quiet zone), and the symbol prints no bigger than the profile's
/// target (quadruple mode rounds down) unless a smaller module would be below what a scanner
/// reads.
#[test]
fn the_qr_has_its_quiet_zone_and_keeps_to_its_target_size() {
    for profile in printer_profiles() {
        let bytes = slip::payment_slip(&profile, &sample(), &payment_link()).unwrap();
        let elements = chasti::devices::escpos::parse(&bytes, profile.code_page).unwrap();
        let at = elements
            .iter()
            .position(|e| matches!(e, Element::NativeQr { .. } | Element::Raster { .. }))
            .unwrap();
        let line_dots = profile.dots_per_mm as f64 * 25.4 / 6.0;
        let blank = |range: &mut dyn Iterator<Item = &Element>| -> f64 {
            let mut lines = 0.0;
            for e in range {
                match e {
                    Element::Feed(n) => lines += *n as f64,
                    Element::Text { text, .. } if text.trim().is_empty() => lines += 1.0,
                    _ => break,
                }
            }
            lines * line_dots
        };
        let modules = chasti::devices::qr::QrSymbol::encode(LINK).unwrap().modules;
        let module = chasti::devices::escpos::printed_module_dots(&profile, modules) as f64;
        let above = blank(&mut elements[..at].iter().rev());
        let below = blank(&mut elements[at + 1..].iter());
        assert!(
            above >= 4.0 * module,
            "{}: {above} dots above, module {module}",
            profile.name
        );
        assert!(
            below >= 4.0 * module,
            "{}: {below} dots below, module {module}",
            profile.name
        );
        let printed_mm = modules as f64 * module / profile.dots_per_mm as f64;
        let module_mm = module / profile.dots_per_mm as f64;
        assert!(
            module_mm >= chasti::devices::escpos::SCANNER_MIN_MODULE_MM,
            "{}: {module_mm:.2} mm modules",
            profile.name
        );
        assert!(
            printed_mm <= profile.qr_target_mm as f64 + 1.0
                || (module - 2.0) / (profile.dots_per_mm as f64)
                    < chasti::devices::escpos::SCANNER_MIN_MODULE_MM,
            "{}: {printed_mm:.1} mm for a {} mm target",
            profile.name,
            profile.qr_target_mm
        );
    }
}
