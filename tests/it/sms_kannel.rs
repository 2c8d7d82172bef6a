//! Kannel for real: Debian's `kannel` (bearerbox + smsbox) with the fake SMSC from
//! `kannel-extras` (`/usr/lib/kannel/test/fakesmsc`) on 127.0.0.1, and a real `chasti serve`
//! sending the payment link through smsbox's `sendsms`. The message must arrive at the fake
//! SMSC with the link intact, in UCS-2, and the number must reach chasti's log only masked.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{start_daemon_with, Daemon};

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

/// The Kannel processes, killed when the test ends however it ends.
struct Kannel {
    children: Vec<Child>,
    sendsms: u16,
    fake_log: std::path::PathBuf,
}

impl Drop for Kannel {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn spawn(program: &str, args: &[&str], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(program)
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// bearerbox, the fake SMSC connected to it, smsbox with a `sendsms` user `chasti`.
fn kannel(dir: &Path) -> Kannel {
    let (admin, boxes, smsc, sendsms) = (
        crate::common::free_port(),
        crate::common::free_port(),
        crate::common::free_port(),
        crate::common::free_port(),
    );
    let d = dir.display();
    let config = format!(
        "group = core\nadmin-port = {admin}\nadmin-password = adm\nadmin-interface = 127.0.0.1\nsmsbox-port = {boxes}\nbox-allow-ip = 127.0.0.1\nlog-file = \"{d}/bearerbox.log\"\nlog-level = 1\n\n\
group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {smsc}\nconnect-allow-ip = 127.0.0.1\n\n\
group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {boxes}\nsendsms-port = {sendsms}\nsendsms-interface = 127.0.0.1\nlog-file = \"{d}/smsbox.log\"\nlog-level = 1\n\n\
group = sendsms-user\nusername = chasti\npassword = kannel-secret\nconcatenation = true\nmax-messages = 3\n\n\
group = sms-service\nkeyword = default\ntext = \"ok\"\n"
    );
    let conf = dir.join("kannel.conf");
    std::fs::write(&conf, config).unwrap();
    let conf = conf.display().to_string();
    let mut k = Kannel {
        children: Vec::new(),
        sendsms,
        fake_log: dir.join("fakesmsc.log"),
    };
    k.children
        .push(spawn(BEARERBOX, &[&conf], &dir.join("bearerbox.out")));
    wait_for("bearerbox's admin port", Duration::from_secs(20), || {
        listening(admin)
    });
    wait_for("bearerbox's SMSC port", Duration::from_secs(20), || {
        listening(smsc)
    });
    let port = smsc.to_string();
    // -m 0: send nothing, print what the SMSC receives.
    k.children.push(spawn(
        FAKESMSC,
        &["-H", "127.0.0.1", "-r", &port, "-m", "0", "1 2 text x"],
        &k.fake_log,
    ));
    k.children
        .push(spawn(SMSBOX, &[&conf], &dir.join("smsbox.out")));
    wait_for("smsbox's sendsms port", Duration::from_secs(20), || {
        listening(sendsms)
    });
    let status = format!("http://127.0.0.1:{admin}/status.txt?password=adm");
    wait_for("the fake SMSC online", Duration::from_secs(20), || {
        Command::new("curl")
            .args(["-s", &status])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("online"))
            .unwrap_or(false)
    });
    k
}

/// What the fake SMSC received: the number and the message put together from its parts, once
/// every part is there, and how many parts. Each part is a line `Got message N: <from to TYPE
/// …>`: `ucs-2 DATA` for a single Cyrillic part, `udh UDH data DATA` for a part of a
/// concatenated one (UDH `05 00 03 ref total seq`); DATA is URL-encoded UTF-16BE either way.
fn received(log: &Path) -> Option<(String, String, usize)> {
    let text = std::fs::read_to_string(log).ok()?;
    let mut to = String::new();
    let mut parts: Vec<(u8, u8, Vec<u8>)> = Vec::new();
    for line in text.lines().filter(|l| l.contains("Got message")) {
        let inner = line.split_once('<')?.1.trim_end_matches('>');
        let fields: Vec<&str> = inner.split(' ').collect();
        to = fields.get(1)?.to_string();
        match *fields.get(2)? {
            "ucs-2" => parts.push((1, 1, form_decode(fields.get(3)?))),
            "udh" => {
                let udh = form_decode(fields.get(3)?);
                // 05 00 03 ref total seq (8-bit reference).
                let (total, seq) = (*udh.get(4)?, *udh.get(5)?);
                // `udh UDH data DATA`
                parts.push((seq, total, form_decode(fields.get(5)?)));
            }
            other => panic!("a part sent as {other}, not UCS-2: {line}"),
        }
    }
    let total = parts.first()?.1 as usize;
    if parts.len() < total {
        return None;
    }
    parts.sort_by_key(|p| p.0);
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.2.clone()).collect();
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    Some((to, String::from_utf16_lossy(&units), total))
}

/// `application/x-www-form-urlencoded` bytes (`+` a space, `%XX` a byte).
fn form_decode(data: &str) -> Vec<u8> {
    let spaced = data.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_arrives_at_kannels_fake_smsc_in_ucs2_with_the_link_intact() {
    if !Path::new(FAKESMSC).exists() || !Path::new(BEARERBOX).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kannel and kannel-extras are missing in CI: .ci/run installs them"
        );
        eprintln!("skipped: Kannel is not installed (apt-get install kannel kannel-extras)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = kannel(dir.path());
    let url = format!("http://127.0.0.1:{}/cgi-bin/sendsms", k.sendsms);
    let d: Daemon = start_daemon_with(|text| {
        text + &format!(
            "\n[sms]\nprovider = \"kannel\"\nurl = \"{url}\"\nuser = \"chasti\"\npassword = \"kannel-secret\"\nsender = \"Magazin\"\n"
        )
    });
    let body = serde_json::json!({
        "amount": "1499.50",
        "idempotency_key": uuid::Uuid::new_v4().to_string(),
        "phone": "8 (912) 345-67-89",
    });
    let sale = crate::common::post_json(
        format!("{}/api/v1/sales", d.serve.api),
        Some("demo-cashier-token-change-me"),
        &body,
    )
    .await;
    assert_eq!(sale["sms"]["status"], "queued", "{sale}");
    let link = sale["payment_url"].as_str().unwrap();

    let mut got = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.is_none() {
        assert!(
            Instant::now() < deadline,
            "nothing at the fake SMSC: {}\nsmsbox: {}",
            std::fs::read_to_string(&k.fake_log).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("smsbox.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = received(&k.fake_log);
    }
    let (to, text, parts) = got.unwrap();
    assert_eq!(to, "+79123456789");
    assert!(parts <= 2, "{parts} parts: {text}");
    assert!(text.contains(link), "the link intact: {text}");
    assert!(
        text.starts_with("Магазин: оплата частями 1 499,50 ₽"),
        "{text}"
    );
    assert!(text.contains("МСК"), "{text}");
    // The link opens the sandbox's payment page.
    let page = crate::common::http().get(link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);

    // The order's history says it was sent, then (Kannel's delivery report: the fake SMSC
    // reports delivery) delivered; the log has the number only masked.
    let id = sale["order"]["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let order = crate::common::get_json(
            format!("{}/api/v1/orders/{id}", d.serve.api),
            "demo-cashier-token-change-me",
        )
        .await;
        let texts: Vec<&str> = order["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["text"].as_str())
            .collect();
        let sent = texts.contains(&"Ссылка на оплату отправлена по SMS на +7912***6789");
        let delivered = texts.contains(&"SMS на +7912***6789 доставлено");
        if sent && delivered {
            break;
        }
        assert!(Instant::now() < deadline, "{order}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(d._dir.path().join("serve.log")).unwrap();
    assert!(log.contains("+7912***6789"), "{log}");
    assert!(
        !log.contains("9123456789"),
        "a whole number in the log: {log}"
    );
    assert!(!log.contains("kannel-secret"), "the password in the log");
}
