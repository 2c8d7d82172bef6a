//! The add-in as 1C drives it, without 1C: the test host in `support/native_api.rs` loads
//! `libchasti_onec.so` and calls it through the Native API against a running chasti (started
//! as `chasti serve` starts it) and the sandbox bank: payments, a return, a cancel, an
//! emergency reversal, the day's settlement, a customer who never pays, a daemon that is down.

mod support;

use support::native_api::{Library, Object, V};
use support::shop::{Shop, CASHIER, MANAGER};

fn set(t: &mut Object<'_>, name: &str, value: V) {
    let c = t.call("SetParameter", &[V::s(name), value]);
    assert!(c.yes(), "SetParameter({name}): {:?}", t.last_error());
}

fn operation(amount: &str, rrn: &str) -> V {
    V::Str(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OperationParameters MerchantNumber=\"0\" \
         Amount=\"{amount}\" AmountOriginalTransaction=\"{amount}\" RRNCode=\"{rrn}\" \
         ReceiptNumber=\"17\" AmountCash=\"0\" ConsumerPresentedQR=\"false\"/>"
    ))
}

/// `Pay` in the XML form; the RRN and the slip when it paid.
fn pay(t: &mut Object<'_>, amount: &str) -> (String, String) {
    let c = t.call(
        "Оплатить",
        &[V::s("chasti-1"), operation(amount, ""), V::Empty, V::Empty],
    );
    assert!(c.yes(), "Pay {amount}: {:?}", t.last_error());
    let out = roxmltree::Document::parse(c.params[2].text()).unwrap();
    let rrn = out.root_element().attribute("RRNCode").unwrap().to_string();
    assert_eq!(out.root_element().attribute("ReceiptNumber"), Some("17"));
    (rrn, c.params[3].text().to_string())
}

fn connected<'l>(lib: &'l Library, api: &str) -> Object<'l> {
    let mut t = lib.create("ChastiTerminal");
    set(&mut t, "ApiUrl", V::s(api));
    set(&mut t, "Token", V::s(CASHIER));
    set(&mut t, "ТокенМенеджера", V::s(MANAGER));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_1c_configuration_pays_returns_cancels_and_settles_through_the_add_in() {
    let shop = Shop::open().await;
    let customer = shop.customer_pays();
    let api = shop.api.clone();
    let (first, second, third, by_card) = tokio::task::spawn_blocking(move || {
        let lib = Library::load();
        assert_eq!(lib.class_names(), ["ChastiTerminal"]);
        assert_eq!(lib.attach_type(), 3, "AttachType::Any");
        let mut t = lib.create("ChastiTerminal");
        assert_eq!(t.extension, "ChastiTerminal");
        // The names 1C lists, in both languages.
        assert!(t.methods() >= 20);
        let pay_at = t.find_method("PAY");
        assert_eq!(t.method_name(pay_at, 0), "Pay");
        assert_eq!(t.method_name(pay_at, 1), "Оплатить");
        assert_eq!(
            t.find_method("ВернутьПлатеж"),
            t.find_method("returnpayment")
        );
        assert_eq!(t.find_method("NoSuchMethod"), -1);
        assert_eq!(t.call("GetInterfaceRevision", &[]).value, V::I4(4004));
        let d = t.call("GetDescription", &[V::Empty]);
        assert!(
            d.yes()
                && d.params[0]
                    .text()
                    .contains("EquipmentType=\"ЭквайринговыйТерминал\"")
        );
        let p = t.call("GetParameters", &[V::Empty]);
        for name in ["ApiUrl", "Token", "ManagerToken", "PayTimeout", "SlipWidth"] {
            assert!(
                p.params[0].text().contains(&format!("Name=\"{name}\"")),
                "{name}"
            );
        }
        // The equipment form's settings; a wrong value is refused and named.
        set(&mut t, "ApiUrl", V::s(&api));
        set(&mut t, "Token", V::s("not-a-token-chasti-knows"));
        set(&mut t, "ManagerToken", V::s(MANAGER));
        set(&mut t, "SlipWidth", V::I4(42));
        set(&mut t, "Model", V::s("1C passes parameters of its own"));
        let wide = t.call("SetParameter", &[V::s("SlipWidth"), V::I4(40)]);
        assert!(wide.ok && !wide.yes());
        let (code, text) = t.last_error();
        assert_eq!(code, 1);
        assert!(text.contains("32, 42 или 48"), "{text}");
        assert_eq!(
            t.get_prop("ManagerToken"),
            V::s("********"),
            "tokens never read back"
        );
        // A token chasti does not know: Open fails with chasti's own words.
        let open = t.call("Open", &[V::Empty]);
        assert!(open.ok && !open.yes());
        let (code, text) = t.last_error();
        assert_eq!(code, 4, "{text}");
        assert!(!text.is_empty() && !text.contains("not-a-token"), "{text}");
        set(&mut t, "Token", V::s(CASHIER));
        let open = t.call("Подключить", &[V::Empty]);
        assert!(open.yes(), "{:?}", t.last_error());
        assert_eq!(open.params[0], V::s("chasti-1"));
        let test = t.call("DeviceTest", &[V::Empty, V::Empty]);
        assert!(
            test.yes() && test.params[0].text().contains("готов"),
            "{test:?}"
        );
        assert_eq!(test.params[1], V::Bool(false));
        let tp = t.call("ПараметрыТерминала", &[V::s("chasti-1"), V::Empty]);
        assert!(tp.params[1]
            .text()
            .contains("PartialCancellation=\"false\""));
        assert!(tp.params[1].text().contains("CashWithdrawal=\"false\""));
        assert_eq!(t.call("PrintSlipOnTerminal", &[]).value, V::Bool(false));

        // A payment: Pay waits until the customer has paid.
        let (first, slip) = pay(&mut t, "1499.00");
        assert!(slip.contains("ОДОБРЕНО") && slip.contains(&first), "{slip}");
        assert!(slip.lines().all(|l| l.chars().count() <= 42), "{slip}");
        // A return of part of it: a refund.
        let back = t.call(
            "ReturnPayment",
            &[
                V::s("chasti-1"),
                operation("499.00", &first),
                V::Empty,
                V::Empty,
            ],
        );
        assert!(back.yes(), "{:?}", t.last_error());
        assert!(
            back.params[3].text().contains("ВОЗВРАТ"),
            "{:?}",
            back.params[3]
        );
        // A partial cancel is not what chasti does: said so, nothing changes.
        let part = t.call(
            "CancelPayment",
            &[
                V::s("chasti-1"),
                operation("100.00", &first),
                V::Empty,
                V::Empty,
            ],
        );
        assert!(!part.yes());
        let (code, text) = t.last_error();
        assert_eq!(code, 9);
        assert!(text.contains("частичная отмена"), "{text}");

        // A second payment cancelled the same day: a reversal.
        let (second, _) = pay(&mut t, "2000.00");
        let cancel = t.call(
            "ОтменитьПлатеж",
            &[
                V::s("chasti-1"),
                operation("2000.00", &second),
                V::Empty,
                V::Empty,
            ],
        );
        assert!(cancel.yes(), "{:?}", t.last_error());
        assert!(
            cancel.params[3].text().contains("ОТМЕНА ОПЛАТЫ"),
            "{:?}",
            cancel.params[3]
        );

        // A third, and 1C could not finish the sale: the emergency reversal undoes it, once.
        let (third, _) = pay(&mut t, "300.00");
        assert!(
            t.call("EmergencyReversal", &[V::s("chasti-1")]).yes(),
            "{:?}",
            t.last_error()
        );
        assert!(!t.call("АварийнаяОтменаОперации", &[V::s("chasti-1")]).yes());
        assert_eq!(t.last_error().0, 10);

        // The by-card form of older revisions: the amount as a number.
        let card = t.call(
            "PayByPaymentCard",
            &[
                V::s("chasti-1"),
                V::I4(0),
                V::R8(150.1),
                V::Empty,
                V::s("18"),
                V::Empty,
                V::Empty,
                V::Empty,
            ],
        );
        assert!(card.yes(), "{:?}", t.last_error());
        let by_card = card.params[5].text().to_string();
        assert!(card.params[7].text().contains("ОДОБРЕНО"));

        // Settlement: the day's close, as its slip.
        let day = t.call("Settlement", &[V::s("chasti-1"), V::Empty]);
        assert!(day.yes(), "{:?}", t.last_error());
        let report = day.params[1].text();
        assert!(report.contains("Магазин"), "{report}");
        assert!(report.contains("Оплаты: 4"), "{report}");
        assert!(report.contains("Отмены: 2"), "{report}");
        assert!(report.contains("Возвраты: 1"), "{report}");
        assert!(report.contains("Расхождений с банком нет"), "{report}");

        assert!(t.call("Close", &[V::s("chasti-1")]).yes());
        assert!(t.reported().is_empty(), "{:?}", t.reported());
        assert_eq!(
            t.destroy(),
            (0, 0),
            "every string the add-in returned was freed, nothing else"
        );
        (first, second, third, by_card)
    })
    .await
    .unwrap();
    customer.abort();
    // What chasti keeps agrees with what 1C was told.
    use chasti::orders::StateKind;
    let paid = shop.order(&first);
    assert_eq!(paid.state.kind(), StateKind::PartiallyRefunded);
    assert_eq!(paid.refunds.len(), 1);
    assert_eq!(paid.refunds[0].amount.get(), 49_900);
    assert_eq!(shop.order(&second).state.kind(), StateKind::Reversed);
    assert_eq!(shop.order(&third).state.kind(), StateKind::Reversed);
    let card = shop.order(&by_card);
    assert_eq!(
        (card.state.kind(), card.amount.get()),
        (StateKind::Paid, 15_010)
    );
    shop.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_who_does_not_pay_in_time_leaves_a_cancelled_sale_and_a_clear_error() {
    let shop = Shop::open().await;
    let mut updates = shop.engine.subscribe();
    let api = shop.api.clone();
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || {
        let lib = Library::load();
        let mut t = connected(&lib, &api);
        set(&mut t, "PayTimeout", V::I4(5));
        let c = t.call(
            "Pay",
            &[
                V::s("chasti-1"),
                operation("1499.00", ""),
                V::Empty,
                V::Empty,
            ],
        );
        assert!(c.ok && !c.yes());
        let (code, text) = t.last_error();
        assert_eq!(code, 7);
        assert!(text.contains("не оплатил за 5 с"), "{text}");
        assert_eq!(t.get_prop("LastError"), V::Str(text));
        assert_eq!(t.destroy(), (0, 0));
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(5),
        "the customer had the whole PayTimeout: {waited:?}"
    );
    assert!(waited < std::time::Duration::from_secs(30), "{waited:?}");
    let order = updates.try_recv().expect("a sale was made");
    let order = shop.engine.get(&order.id).unwrap();
    assert_eq!(order.state.kind(), chasti::orders::StateKind::Cancelled);
    shop.close().await;
}

#[test]
fn a_daemon_that_is_down_is_named_and_nothing_is_sold() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("http://127.0.0.1:{port}");
    let lib = Library::load();
    let mut t = connected(&lib, &api);
    let open = t.call("Open", &[V::Empty]);
    assert!(open.ok && !open.yes());
    let (code, text) = t.last_error();
    assert_eq!(code, 3);
    assert!(
        text.contains("Нет связи с chasti") && text.contains(&api),
        "{text}"
    );
    let test = t.call("DeviceTest", &[V::Empty, V::Empty]);
    assert!(!test.yes() && test.params[0].text().contains("Нет связи"));
    let c = t.call(
        "Pay",
        &[V::s("chasti-1"), operation("10.00", ""), V::Empty, V::Empty],
    );
    assert!(c.ok && !c.yes());
    assert_eq!(t.last_error().0, 3);
    assert_eq!(
        c.params[3],
        V::Empty,
        "no slip for a payment that never started"
    );
    // Bad input from 1C: refused with what was wrong, before anything is sent.
    for (xml, expected) in [
        ("not xml", "не XML"),
        ("<Other/>", "OperationParameters"),
        ("<OperationParameters/>", "сумма оплаты"),
        ("<OperationParameters Amount=\"-5\"/>", "не понята"),
        (
            "<OperationParameters Amount=\"10\" AmountCash=\"100\"/>",
            "выдача наличных",
        ),
    ] {
        let c = t.call("Pay", &[V::s("chasti-1"), V::s(xml), V::Empty, V::Empty]);
        assert!(c.ok && !c.yes(), "{xml}");
        let (_, text) = t.last_error();
        assert!(text.contains(expected), "{xml}: {text}");
    }
    let bad_url = t.call("SetParameter", &[V::s("ApiUrl"), V::s("chasti.local")]);
    assert!(bad_url.yes(), "an address is checked when used");
    assert!(!t.call("Open", &[V::Empty]).yes());
    assert!(t.last_error().1.contains("http://"));
    assert_eq!(t.destroy(), (0, 0));
}
