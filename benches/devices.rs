//! `cargo bench --bench devices`: for each printer profile, the payment slip's bytes on the
//! wire and its encode time, native QR and raster, and the transfer time at 9600 and 115200
//! baud (8N1: 10 bits a byte). Prints a Markdown table.

use std::hint::black_box;
use std::time::Instant;

use chasti::devices::escpos::{parse, Element};
use chasti::devices::profile::{self, PrinterProfile};
use chasti::devices::slip::{payment_slip, SlipOrder};
use chasti::money::Kopecks;

const RUNS: u32 = 2000;
/// Links: the bank's full form (130 characters) and a ~100-character one.
const LINKS: [&str; 2] = [
    "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=2f5bd8e8-3b3e-7c46-9a8f-4a1e00a8b38b",
    "https://securepayments.sberbank.ru/payment/merchants/sbersafe/pay?mdOrder=2f5bd8e8-3b3e-7c46-9a8f",
];

fn qr_bytes(profile: &PrinterProfile, slip: &[u8]) -> usize {
    parse(slip, profile.code_page)
        .unwrap()
        .iter()
        .map(|e| match e {
            Element::NativeQr { data, .. } => 41 + data.len(),
            Element::Raster {
                width_bytes,
                height,
                ..
            } => 8 + width_bytes * height,
            _ => 0,
        })
        .sum()
}

fn main() {
    for link in LINKS {
        table(link);
        println!();
    }
}

fn table(link: &str) {
    println!("Link of {} characters:", link.len());
    println!();
    let order = SlipOrder {
        shop_name: "Магазин «Ромашка»",
        order_number: "S1-1-261123-0042",
        amount: Kopecks::new(1_234_550).unwrap(),
        link_expires_at: chrono::Utc::now(),
    };
    let url = chasti::domain::PaymentUrl::parse(link).unwrap();
    let mut cases: Vec<(String, PrinterProfile)> = Vec::new();
    for name in ["epson-tm-t20iii", "rongta-rp326", "xprinter-xp58"] {
        let p = profile::printer(name, None).unwrap();
        let how = if p.native_qr { "native" } else { "raster" };
        cases.push((format!("{name} ({how})"), p.clone()));
        if p.native_qr {
            let mut raster = p.clone();
            raster.native_qr = false;
            raster.raster_quadruple = false;
            cases.push((format!("{name} (raster, forced)"), raster.clone()));
            raster.raster_quadruple = true;
            cases.push((format!("{name} (raster, quadruple)"), raster));
        } else {
            let mut quad = p.clone();
            quad.raster_quadruple = true;
            cases.push((format!("{name} (raster, quadruple)"), quad));
        }
    }
    println!(
        "| profile (QR) | QR mm | slip bytes | of which QR | encode µs | 9600 baud | 115200 baud |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, p) in cases {
        let slip = payment_slip(&p, &order, &url).unwrap();
        let started = Instant::now();
        for _ in 0..RUNS {
            black_box(payment_slip(black_box(&p), black_box(&order), &url).unwrap());
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / RUNS as f64;
        let modules = chasti::devices::qr::QrSymbol::encode(link).unwrap().modules;
        // As printed: quadruple mode prints each sent dot as 2 x 2.
        let dots = chasti::devices::escpos::printed_module_dots(&p, modules);
        let mm = (modules as u32 * dots) as f64 / p.dots_per_mm as f64;
        let wire = |baud: f64| slip.len() as f64 * 10.0 / baud;
        println!(
            "| {label} | {mm:.1} | {} | {} | {micros:.0} | {:.2} s | {:.3} s |",
            slip.len(),
            qr_bytes(&p, &slip),
            wire(9600.0),
            wire(115_200.0)
        );
    }
}
