//! The web pages in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven
//! over WebDriver): the customer screen's QR decodes to the payment link and turns to
//! «Оплачено» after the sandbox payment; the manager's reverse button reverses.
//! Outside CI a missing Chromium is said plainly and the test passes; in CI it fails.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Harness, HarnessOptions};
use base64::Engine as _;
use chasti::config::{ApiToken, Role};
use chasti::http::api::{router, Api};
use chasti::orders::Mode;
use chasti::secret::Secret;
use serde_json::{json, Value};

const MANAGER: &str = "manager-token-0123456789";
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

fn browser_available() -> bool {
    let present = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(DRIVER).exists();
    if !present {
        if std::env::var_os("CI").is_some() {
            panic!("Chromium is missing in CI: .ci/run installs chromium and chromium-driver");
        }
        eprintln!("SKIPPED: Chromium is not installed here (apt-get install chromium chromium-driver); the browser tests did not run");
    }
    present
}

struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Ends the WebDriver session (which closes Chromium) before stopping the driver: killing
    /// the driver alone leaves the browser running.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!("DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.session);
            if s.write_all(request.as_bytes()).is_ok() {
                let mut reply = Vec::new();
                let _ = s.read_to_end(&mut reply);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = crate::common::http();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.path().display()), "--window-size=1000,1000"]}}}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = if method == "GET" {
            self.http.get(url)
        } else {
            self.http.post(url).json(&body)
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url})).await;
    }

    async fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn click(&self, css: &str) {
        let found = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string();
        self.cmd("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn screenshot(&self) -> image::GrayImage {
        let b64 = self.cmd("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        image::load_from_memory(&png).unwrap().to_luma8()
    }

    /// Waits (bounded) until `script` returns `want`.
    async fn wait_for(&self, script: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..150 {
            last = self.script(script).await;
            if last.as_str().is_some_and(|s| s.contains(want)) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{script} never gave {want:?}; last: {last}");
    }
}

async fn serve_api(h: &Harness) -> (String, chasti::serve::ServerHandle) {
    let api = Api {
        engine: h.engine.clone(),
        tokens: Arc::new(vec![ApiToken {
            name: "boss".into(),
            role: Role::Manager,
            token: Secret::new(MANAGER),
        }]),
        devices: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (base, chasti::serve::spawn(listener, router(api), None))
}

fn decode_qr(img: &image::GrayImage) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare(img.clone());
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_screen_shows_a_scannable_qr_then_paid() {
    if !browser_available() {
        return;
    }
    let h = Harness::new(HarnessOptions::default()).await;
    let (base, _server) = serve_api(&h).await;
    let browser = Browser::start().await;
    browser.open(&format!("{base}/screen?till=1")).await;
    browser
        .wait_for(
            "return document.getElementById('screen').dataset.state",
            "idle",
        )
        .await;

    let order = h
        .engine
        .create_sale(Harness::sale(1499, Mode::OneStage))
        .await
        .unwrap();
    browser
        .wait_for(
            "return document.getElementById('screen').dataset.state",
            "awaiting",
        )
        .await;
    let text = browser.script("return document.body.innerText").await;
    assert!(text.as_str().unwrap().contains("1 499,00 ₽"), "{text}");
    let shot = browser.screenshot().await;
    assert_eq!(
        decode_qr(&shot),
        [order.payment_url.clone().unwrap()],
        "the QR on the screen is the link"
    );

    h.sandbox.pay(&Harness::gateway_id(&order)).unwrap();
    browser
        .wait_for(
            "return document.getElementById('screen').dataset.state",
            "paid",
        )
        .await;
    let title = browser
        .script("return document.getElementById('title').textContent")
        .await;
    assert_eq!(title, "Оплачено");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managers_reverse_button_reverses_the_payment() {
    if !browser_available() {
        return;
    }
    let h = Harness::new(HarnessOptions::default()).await;
    let (base, _server) = serve_api(&h).await;
    let order = h
        .engine
        .create_sale(Harness::sale(700, Mode::OneStage))
        .await
        .unwrap();
    h.sandbox.pay(&Harness::gateway_id(&order)).unwrap();
    h.wait_state(&order.id, "paid").await;

    let browser = Browser::start().await;
    browser.open(&format!("{base}/manager")).await;
    browser
        .script(&format!(
            "document.getElementById('token').value = '{MANAGER}'; return 1"
        ))
        .await;
    browser.click("#load").await;
    let row = format!("tr[data-id='{}']", order.id);
    browser
        .wait_for(
            &format!("return document.querySelector(\"{row}\")?.dataset.state || ''"),
            "paid",
        )
        .await;
    let totals = browser
        .script("return document.getElementById('totals').textContent")
        .await;
    assert!(totals.as_str().unwrap().contains("700,00 ₽"), "{totals}");
    browser.click(&format!("{row} button.reverse")).await;
    browser
        .wait_for(
            &format!("return document.querySelector(\"{row}\")?.dataset.state || ''"),
            "reversed",
        )
        .await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state,
        chasti::orders::State::Reversed
    );
    assert_eq!(
        h.sandbox
            .ledger()
            .count_ok("reverse.do", &order.order_number),
        1
    );
}
