//! No bytes panic chasti: property tests (proptest; cargo-fuzz needs a nightly toolchain this
//! project does not install) over every parser that reads the network, a file or a device,
//! and the inputs that once did panic, as regression cases.

use chasti::devices::codepage::CodePage;
use chasti::devices::escpos;
use chasti::gateway::{OrderStatusReport, Registered};
use chasti::money::Kopecks;
use proptest::prelude::*;

/// `GS ( k` with a length that says more than the body holds: the ESC/POS parser indexed past
/// the body (issue 11).
#[test]
fn the_two_escpos_inputs_that_panicked_are_refused() {
    for hex in ["1d286b02003143", "1d286b02003150"] {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let parsed = escpos::parse(&bytes, CodePage::Cp866);
        assert!(parsed.is_err(), "{hex}: {parsed:?}");
    }
}

#[test]
fn a_raster_bigger_than_any_printer_is_refused_not_allocated() {
    // GS v 0, m 0, 65535 bytes x 65535 rows: 4 GB if believed.
    let bytes = [0x1d, b'v', b'0', 0, 0xff, 0xff, 0xff, 0xff];
    let e = escpos::parse(&bytes, CodePage::Cp866).unwrap_err();
    assert!(
        matches!(
            e,
            escpos::EscposError::RasterTooLarge {
                width_bytes: 65_535,
                height: 65_535
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("allowed: up to"), "{e}");
    let (w, h, pixels) = escpos::raster_pixels(0, 65_535, 65_535, &[], 0);
    assert_eq!(pixels.len(), w * h);
    assert!(pixels.len() <= 8 * escpos::MAX_RASTER_WIDTH_BYTES * escpos::MAX_RASTER_HEIGHT);
}

#[test]
fn a_gateway_reply_with_an_amount_above_the_limit_is_unreadable() {
    let body = r#"{"errorCode":"0","orderStatus":2,"orderNumber":"T-1","amount":1000000000000,
        "paymentAmountInfo":{"paymentState":"DEPOSITED","approvedAmount":1000000000000,
        "depositedAmount":1000000000000,"refundedAmount":0}}"#;
    let e = serde_json::from_str::<OrderStatusReport>(body).unwrap_err();
    assert!(e.to_string().contains("above the gateway's limit"), "{e}");
}

#[test]
fn a_printer_profile_with_absurd_numbers_is_refused_at_load() {
    let good = include_str!("../../hardware/xprinter-xp58.toml");
    chasti::devices::profile::parse("xp58.toml", good).unwrap();
    let absurd = good
        .lines()
        .map(|l| {
            if l.starts_with("dots_per_mm") {
                "dots_per_mm = 4000000000".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let e = chasti::devices::profile::parse("xp58.toml", &absurd).unwrap_err();
    assert!(
        e.to_string()
            .contains("dots_per_mm: found 4000000000; allowed: 4..24"),
        "{e}"
    );
}

/// ESC/POS command heads the parser knows, to steer random bytes into its branches.
fn escpos_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..16),
        Just(vec![0x1d, b'(', b'k']),
        Just(vec![0x1d, b'v', b'0']),
        Just(vec![0x1b, b'a']),
        Just(vec![0x1d, b'!']),
        Just(vec![0x1d, b'V', 0x41]),
        Just(vec![0x31, 0x43]),
        Just(vec![0x31, 0x50]),
        Just(vec![0x31, 0x51]),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn escpos_parser_never_panics(bytes in escpos_bytes()) {
        if let Ok(elements) = escpos::parse(&bytes, CodePage::Cp866) {
            for e in elements {
                if let escpos::Element::Raster { mode, width_bytes, height, data } = e {
                    let _ = escpos::raster_pixels(mode, width_bytes, height, &data, 4);
                }
            }
        }
    }

    #[test]
    fn amounts_never_panic(text in "\\PC{0,40}", digits in "[0-9 .,]{0,30}") {
        let _ = Kopecks::parse_amount(&text);
        if let Ok(k) = Kopecks::parse_amount(&digits) {
            prop_assert!(k.get() <= chasti::money::MAX_KOPECKS);
        }
    }

    #[test]
    fn callback_parameters_never_panic(
        query in proptest::option::of("\\PC{0,200}"),
        body in proptest::collection::vec(any::<u8>(), 0..400),
        json in any::<bool>(),
    ) {
        let mut headers = axum::http::HeaderMap::new();
        if json {
            headers.insert("content-type", "application/json".parse().unwrap());
        }
        let _ = chasti::http::callback::callback_params(query.as_deref(), &headers, &body);
        let _ = chasti::http::callback::callback_params(
            query.as_deref(),
            &headers,
            format!("{{\"mdOrder\":{}}}", String::from_utf8_lossy(&body)).as_bytes(),
        );
    }

    #[test]
    fn gateway_replies_never_panic(body in "\\PC{0,300}", amount in any::<u64>(), status in any::<i64>()) {
        let _ = serde_json::from_str::<OrderStatusReport>(&body);
        let _ = serde_json::from_str::<Registered>(&body);
        let shaped = format!(
            r#"{{"errorCode":"0","orderStatus":{status},"amount":{amount},"orderNumber":{body:?}}}"#
        );
        if let Ok(r) = serde_json::from_str::<OrderStatusReport>(&shaped) {
            prop_assert!(r.amount.get() <= chasti::money::MAX_KOPECKS);
        }
    }

    #[test]
    fn config_files_never_panic(text in "\\PC{0,400}", cut in 0usize..2000) {
        let path = std::path::Path::new("chasti.toml");
        let _ = chasti::config::Config::parse(path, &text, |_| None);
        // The shipped config, cut short or with junk spliced in.
        let shipped = include_str!("../../config/chasti.toml");
        let at = shipped.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(shipped.len());
        let spliced = format!("{}{}{}", &shipped[..at], text, &shipped[at..]);
        let _ = chasti::config::Config::parse(path, &spliced, |_| None);
    }

    #[test]
    fn device_profiles_never_panic(text in "\\PC{0,300}", n in any::<u32>()) {
        let _ = chasti::devices::profile::parse("p.toml", &text);
        let good = include_str!("../../hardware/epson-tm-t20iii.toml");
        for key in ["dots_per_mm", "dots_per_line", "paper_mm", "qr_target_mm", "columns"] {
            let changed: Vec<String> = good
                .lines()
                .map(|l| if l.starts_with(key) { format!("{key} = {n}") } else { l.to_string() })
                .collect();
            let _ = chasti::devices::profile::parse("p.toml", &changed.join("\n"));
        }
    }
}
