//! The bank's callbacks against a running daemon: hostile and repeated ones, every way the bank
//! sends them, the allow-list, late ones, and the bank's own checksum vectors.

use std::time::Duration;

use crate::common::{Harness, HarnessOptions, CALLBACK_KEY};
use chasti::gateway::checksum::{hmac_sha256_checksum, CallbackPublicKey};
use chasti::http::callback::{CallbackAuth, Rejection};
use chasti::orders::{Mode, StateKind};
use chasti::sandbox::{CallbackFaults, Faults};
use chasti::secret::Secret;

fn callbacks_only() -> HarnessOptions {
    // Polls so rare that only a callback can complete the order within the test.
    HarnessOptions {
        poll_first: Duration::from_secs(600),
        ..HarnessOptions::default()
    }
}

async fn send(h: &Harness, params: &[(&str, &str)]) -> u16 {
    crate::common::http()
        .get(h.callback_url.clone())
        .query(params)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn hostile_and_repeated_callbacks_do_no_harm() {
    let h = Harness::new(callbacks_only()).await;
    let order = h.sell(50, Mode::TwoStage).await;
    let gid = Harness::gateway_id(&order);
    let number = order.order_number.clone();

    // Forged: says deposited, checksum made with the wrong key.
    let base = [
        ("mdOrder", gid.as_str()),
        ("orderNumber", number.as_str()),
        ("operation", "deposited"),
        ("status", "1"),
    ];
    let forged = hmac_sha256_checksum("not-the-key", base);
    let mut params = base.to_vec();
    params.push(("checksum", &forged));
    assert_eq!(send(&h, &params).await, 403);
    // Unsigned while a key is set.
    assert_eq!(send(&h, &base).await, 403);
    // Unknown order, properly signed: acknowledged, nothing happens.
    let unknown = [
        ("mdOrder", "no-such-order"),
        ("operation", "deposited"),
        ("status", "1"),
    ];
    let sum = hmac_sha256_checksum(CALLBACK_KEY, unknown);
    let mut params = unknown.to_vec();
    params.push(("checksum", &sum));
    assert_eq!(send(&h, &params).await, 200);
    // A true callback for an order not paid yet: confirmed with the gateway, nothing moves.
    let sum = hmac_sha256_checksum(CALLBACK_KEY, base);
    let mut params = base.to_vec();
    params.push(("checksum", &sum));
    assert_eq!(send(&h, &params).await, 200);
    h.quiet().await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        StateKind::AwaitingPayment
    );
    assert_eq!(
        h.engine.store().callbacks().unwrap().len(),
        2,
        "only verified callbacks are kept"
    );

    // Every real callback twice, and late: still exactly one deposit.
    h.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            duplicate: true,
            delay_ms: 150,
            ..CallbackFaults::default()
        },
        ..Faults::default()
    });
    h.sandbox.pay(&gid).unwrap();
    h.wait_state(&order.id, StateKind::Paid).await;
    h.callbacks_handled(number.as_str(), 2).await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        StateKind::Paid
    );
    assert_eq!(h.sandbox.ledger().count_ok("deposit.do", &number), 1);
}

#[tokio::test]
async fn post_form_and_json_callbacks_are_accepted_when_signed() {
    let h = Harness::new(callbacks_only()).await;
    let form_order = h.sell(15, Mode::OneStage).await;
    let json_order = h.sell(16, Mode::OneStage).await;
    h.sandbox.set_callback_url(None);
    h.sandbox.pay(Harness::gateway_id(&form_order)).unwrap();
    h.sandbox.pay(Harness::gateway_id(&json_order)).unwrap();
    let http = crate::common::http();

    let gid = Harness::gateway_id(&form_order);
    let fields = [
        ("mdOrder", gid.as_str()),
        ("operation", "deposited"),
        ("status", "1"),
    ];
    let sum = hmac_sha256_checksum(CALLBACK_KEY, fields);
    let mut form = fields.to_vec();
    form.push(("checksum", &sum));
    let status = http
        .post(h.callback_url.clone())
        .form(&form)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    h.wait_state(&form_order.id, StateKind::Paid).await;

    // ecom style: a JSON body; numbers count as their text in the checksum.
    let gid = Harness::gateway_id(&json_order);
    let sum = hmac_sha256_checksum(
        CALLBACK_KEY,
        [
            ("mdOrder", gid.as_str()),
            ("operation", "deposited"),
            ("status", "1"),
        ],
    );
    let body = serde_json::json!({"mdOrder": gid, "operation": "deposited", "status": 1, "checksum": sum, "additionalParams": {"x": "y"}});
    let status = http
        .post(h.callback_url.clone())
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    h.wait_state(&json_order.id, StateKind::Paid).await;
    let unsigned = serde_json::json!({"mdOrder": gid, "operation": "deposited", "status": 1});
    let status = http
        .post(h.callback_url.clone())
        .json(&unsigned)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    let empty = http
        .post(h.callback_url.clone())
        .json(&serde_json::json!({"status": 1}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(empty, 400, "a callback naming no order");
}

#[test]
fn the_callback_allow_list_and_trusted_proxies() {
    let auth = CallbackAuth {
        allow: vec!["192.0.2.0/24".parse().unwrap()],
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    };
    let none = axum::http::HeaderMap::new();
    assert!(auth.source_allowed("192.0.2.7".parse().unwrap(), &none));
    assert!(!auth.source_allowed("198.51.100.1".parse().unwrap(), &none));
    let mut via_proxy = axum::http::HeaderMap::new();
    via_proxy.insert("x-forwarded-for", "203.0.113.9, 192.0.2.8".parse().unwrap());
    assert!(
        auth.source_allowed("127.0.0.1".parse().unwrap(), &via_proxy),
        "the proxy's last hop is the bank"
    );
    assert!(
        !auth.source_allowed("127.0.0.1".parse().unwrap(), &none),
        "a proxy without the header"
    );
    // An untrusted peer cannot claim an address with the header.
    assert!(!auth.source_allowed("198.51.100.1".parse().unwrap(), &via_proxy));
    assert!(
        CallbackAuth::default().source_allowed("198.51.100.1".parse().unwrap(), &none),
        "no list: anyone"
    );
}

#[tokio::test]
async fn a_reordered_old_callback_does_not_undo_a_payment() {
    let h = Harness::new(callbacks_only()).await;
    let order = h.paid_sale(50, Mode::OneStage).await;
    // An old "declined" callback arrives late (correctly signed): the gateway says paid.
    let gid = Harness::gateway_id(&order);
    let old = [
        ("mdOrder", gid.as_str()),
        ("operation", "deposited"),
        ("status", "0"),
    ];
    let sum = hmac_sha256_checksum(CALLBACK_KEY, old);
    let mut params = old.to_vec();
    params.push(("checksum", &sum));
    assert_eq!(send(&h, &params).await, 200);
    h.quiet().await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        StateKind::Paid
    );
}

#[test]
fn all_four_checksum_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/callback-checksum.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let params: Vec<(String, String)> = v["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let auth = match v["kind"].as_str().unwrap() {
            "hmac-sha256" => CallbackAuth {
                hmac_key: Some(Secret::new(v["key"].as_str().unwrap())),
                ..Default::default()
            },
            "rsa-sha512" => {
                let key = if let Some(pem) = v["public_key_pem"].as_str() {
                    CallbackPublicKey::from_pem(pem).unwrap()
                } else {
                    use base64_der::decode;
                    CallbackPublicKey::from_certificate_der(&decode(
                        v["certificate_der_base64"].as_str().unwrap(),
                    ))
                    .unwrap()
                };
                CallbackAuth {
                    public_key: Some(key),
                    ..Default::default()
                }
            }
            other => panic!("unknown kind {other}"),
        };
        let result = auth.verify(&params);
        if v["valid"].as_bool().unwrap() {
            assert!(result.is_ok(), "{}: {result:?}", v["name"]);
        } else {
            assert_eq!(result, Err(Rejection::BadChecksum), "{}", v["name"]);
        }
    }
}

/// Base64 for the test vector's certificate; a dozen lines, not worth a dependency.
mod base64_der {
    pub fn decode(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in text
            .bytes()
            .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        {
            let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}

#[tokio::test]
async fn the_callback_route_refuses_sources_outside_the_allow_list() {
    for (allow, expected) in [("192.0.2.0/24", 403), ("127.0.0.0/8", 200)] {
        let h = Harness::new(HarnessOptions {
            configure: Some(Box::new(move |c: &mut chasti::config::Config| {
                c.callback.allow = vec![allow.parse().unwrap()];
            })),
            ..callbacks_only()
        })
        .await;
        let order = h.sell(5, Mode::OneStage).await;
        let gid = Harness::gateway_id(&order);
        let fields = [
            ("mdOrder", gid.as_str()),
            ("operation", "deposited"),
            ("status", "1"),
        ];
        let sum = hmac_sha256_checksum(CALLBACK_KEY, fields);
        let mut query = fields.to_vec();
        query.push(("checksum", &sum));
        assert_eq!(send(&h, &query).await, expected, "allow {allow}");
        let refused = h
            .engine
            .metrics()
            .render()
            .contains("chasti_callbacks_total{outcome=\"not_allowed\"} 1");
        assert_eq!(refused, expected == 403);
    }
}

/// A burst of the same callback (the bank retrying, a proxy repeating) costs a couple of status
/// calls, not one per callback: looks at one order coalesce, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_callbacks_for_one_order_coalesces_into_a_few_looks() {
    let h = Harness::new(callbacks_only()).await;
    let order = h.sell(70, Mode::OneStage).await;
    let gid = Harness::gateway_id(&order);
    let number = order.order_number.to_string();
    // The payment's own callback is lost in transit; the burst below is what tells chasti.
    h.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            drop_next: 1,
            ..CallbackFaults::default()
        },
        ..Faults::default()
    });
    h.sandbox.pay(&gid).unwrap();
    let base = [
        ("mdOrder", gid.as_str()),
        ("orderNumber", number.as_str()),
        ("operation", "deposited"),
        ("status", "1"),
    ];
    // Forty distinct callbacks (a replay of one would be answered and ignored; see hostile.rs).
    let bursts: Vec<Vec<(String, String)>> = (0..40)
        .map(|i| {
            let stamp = format!("{}", 1_700_000_000_000u64 + i);
            let mut params: Vec<(&str, &str)> = base.to_vec();
            params.push(("callbackCreationDate", stamp.as_str()));
            let sum = hmac_sha256_checksum(CALLBACK_KEY, params.iter().copied());
            let mut owned: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            owned.push(("checksum".into(), sum));
            owned
        })
        .collect();
    let h = &h;
    let sent = futures_util::future::join_all(bursts.iter().map(|params| async move {
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        send(h, &params).await
    }))
    .await;
    assert!(sent.iter().all(|s| *s == 200), "{sent:?}");
    h.quiet().await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        StateKind::Paid
    );
    let looks = h
        .sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation == "getOrderStatusExtended.do")
        .filter(|o| o.order_number.as_deref() == Some(number.as_str()))
        .count();
    // One look per callback would be 40; coalesced, a look runs at most once more after each.
    assert!(looks <= 20, "{looks} status calls for 40 callbacks");
    assert_eq!(
        h.engine.store().callbacks().unwrap().len(),
        40,
        "each one kept"
    );
}
