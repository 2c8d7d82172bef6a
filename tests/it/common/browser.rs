//! Headless Chromium (Debian's `chromium` + `chromium-driver`) driven with fantoccini over
//! WebDriver, for the tests of the web pages.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::MANAGER;

/// The customer screen's state (`idle`, `awaiting`, `paid`, …), as the page marks it.
pub const SCREEN_STATE: &str = "return document.getElementById('screen').dataset.state";

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// The browser must be there when these tests are not ignored.
pub fn require_browser() {
    let present = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(DRIVER).exists();
    assert!(
        present,
        "Chromium is missing: `bash .ci/run` installs chromium and chromium-driver"
    );
}

/// ChromeDriver and a headless Chromium session; both end when dropped.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
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
        let profile = tempfile::tempdir().unwrap();
        let caps: serde_json::Map<String, Value> = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         format!("--user-data-dir={}", profile.path().display()), "--window-size=1000,1000"]
            }
        })
        .as_object()
        .unwrap()
        .clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        // The driver takes a moment to listen: connect until it answers (bounded).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    panic!("ChromeDriver did not start a session within 20 s: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client: Some(client),
            driver,
            _profile: profile,
        }
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Makes the page's own area (the viewport) `width`×`height`: a WebDriver window size
    /// includes the browser's frame, so the frame is measured and added. Panics when the
    /// browser will not take the size.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.c().set_window_size(width, height).await.unwrap();
        let frame = self
            .script("return [outerWidth - innerWidth, outerHeight - innerHeight]")
            .await;
        let extra = |i: usize| u32::try_from(frame[i].as_u64().unwrap_or(0)).unwrap_or(0);
        self.c()
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .unwrap();
        let inner = self.script("return [innerWidth, innerHeight]").await;
        assert_eq!(
            inner,
            json!([width, height]),
            "the viewport did not take the size"
        );
    }

    pub async fn script(&self, script: &str) -> Value {
        self.c().execute(script, vec![]).await.unwrap()
    }

    /// The manager's page of `api`, signed in with the manager's token.
    pub async fn manager_page(&self, api: &str) {
        self.sign_in_with_token(api, MANAGER).await;
    }

    /// The manager's page of `api`, signed in with `token` (the page then shows today's
    /// orders): waits until it says who is signed in.
    pub async fn sign_in_with_token(&self, api: &str, token: &str) {
        let c = self.c();
        c.goto(&format!("{api}/manager")).await.unwrap();
        self.wait_for(
            "return document.getElementById('sign-in').hidden ? '' : 'asks'",
            "asks",
        )
        .await;
        self.type_into("token", token).await;
        self.click("enter").await;
        self.wait_for(
            "return document.getElementById('who').hidden ? '' : document.getElementById('signed-in').textContent",
            "Вы вошли",
        )
        .await;
    }

    /// Today's orders on the manager's page, once the order's row shows `state`: the row's
    /// CSS selector.
    pub async fn manager_row(&self, api: &str, order: &uuid::Uuid, state: &str) -> String {
        self.manager_page(api).await;
        self.c()
            .find(Locator::Id("load"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let row = format!("tr[data-id='{order}']");
        self.wait_for(
            &format!("return document.querySelector(\"{row}\")?.dataset.state || ''"),
            state,
        )
        .await;
        row
    }

    /// Clicks the element with this id.
    pub async fn click(&self, id: &str) {
        self.c()
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Types `text` into the field with this id (after what it holds).
    pub async fn type_into(&self, id: &str, text: &str) {
        self.c()
            .find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Till 1's customer screen of `api`, once it shows idle.
    pub async fn open_screen(&self, api: &str) {
        self.c()
            .goto(&format!("{api}/screen?till=1"))
            .await
            .unwrap();
        self.wait_for(SCREEN_STATE, "idle").await;
    }

    /// Waits (bounded) until `script` returns a string containing `want`.
    pub async fn wait_for(&self, script: &str, want: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let last = self.script(script).await;
            if last.as_str().is_some_and(|s| s.contains(want)) {
                return last;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{script} never gave {want:?}; last: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn screenshot(&self) -> image::GrayImage {
        let png = self.c().screenshot().await.unwrap();
        image::load_from_memory(&png).unwrap().to_luma8()
    }

    pub async fn close(mut self) {
        // Ends the session (which closes Chromium) before the driver stops.
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub fn decode_qr(img: &image::GrayImage) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare(img.clone());
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}
