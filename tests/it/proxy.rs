//! The bank's callback through a real reverse proxy: Debian's nginx, started by the test on
//! 127.0.0.1 with the shipped `config/nginx/chasti.conf` (its listen address, certificate and
//! upstream replaced), terminating TLS with a certificate from a test CA. The sandbox sends its
//! signed callbacks to nginx's HTTPS address; chasti sits behind it with
//! `callback.trusted_proxies` = the proxy and `callback.allow` = 127.0.0.1.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chasti::gateway::checksum::hmac_sha256_checksum;
use chasti::orders::Mode;
use chasti::orders::StateKind;
use chasti::sandbox::{CallbackSettings, SandboxSettings};

use crate::common::{Harness, HarnessOptions, CALLBACK_KEY};

const NGINX: &str = "/usr/sbin/nginx";

/// nginx running in the foreground on a free port; stopped when dropped.
struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts nginx with the shipped site config, pointed at `upstream` (chasti's callback port).
fn nginx(dir: &Path, upstream: u16) -> Nginx {
    let port = crate::common::free_port();
    let site = include_str!("../../config/nginx/chasti.conf")
        .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
        .replace(
            "/etc/ssl/certs/till.shop.example.pem",
            &dir.join("server.pem").display().to_string(),
        )
        .replace(
            "/etc/ssl/private/till.shop.example.key",
            &dir.join("server.key").display().to_string(),
        )
        .replace(
            "proxy_pass http://127.0.0.1:8081;",
            &format!("proxy_pass http://127.0.0.1:{upstream};"),
        );
    std::fs::write(dir.join("chasti.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/chasti.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = std::process::Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts");
    // Ready when it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, port }
}

/// A client that trusts the test CA, connecting from `from`.
fn client(ca: &Path, from: IpAddr) -> reqwest::Client {
    let trust = chasti::gateway::tls::TrustSettings {
        extra_ca_files: vec![ca.to_path_buf()],
        ..Default::default()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(chasti::gateway::tls::client_config(&trust).unwrap())
        .local_address(from)
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banks_callback_reaches_chasti_through_nginx_and_strangers_do_not() {
    if !Path::new(NGINX).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is missing in CI: .ci/run installs it"
        );
        eprintln!("skipped: {NGINX} is not installed (apt-get install nginx)");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    crate::common::pki::make_pki(pki.path());
    let ca: PathBuf = pki.path().join("ca/ca.pem");
    let sandbox = Arc::new(
        crate::common::sandbox_with(SandboxSettings {
            callbacks: CallbackSettings {
                extra_ca_files: vec![ca.clone()],
                ..CallbackSettings::default()
            },
            ..SandboxSettings::default()
        })
        .await,
    );
    let h = Harness::with_sandbox(
        sandbox.clone(),
        HarnessOptions {
            poll_first: Duration::from_secs(600), // only a callback completes the order
            configure: Some(Box::new(|c: &mut chasti::config::Config| {
                c.callback.path = "/chasti/callback".into();
                c.callback.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
                c.callback.allow = vec!["127.0.0.1/32".parse().unwrap()];
            })),
            ..HarnessOptions::default()
        },
    )
    .await;
    let proxy = nginx(pki.path(), h.callback_url.port().unwrap());
    let public =
        url::Url::parse(&format!("https://localhost:{}/chasti/callback", proxy.port)).unwrap();
    sandbox.set_callback_url(Some(public.clone()));

    // The bank (the sandbox) calls back through nginx: the order is paid.
    let order = h.sell(450, Mode::OneStage).await;
    sandbox.pay(Harness::gateway_id(&order)).unwrap();
    crate::common::wait_ledger(&sandbox, "the payment's callback is tried", |l| {
        l.callbacks
            .iter()
            .any(|d| d.order_number == order.order_number.as_str())
    })
    .await;
    let log = sandbox.ledger().callbacks;
    assert!(
        log.iter().any(|d| d.outcome == "delivered"),
        "{log:?}\nnginx: {}",
        std::fs::read_to_string(pki.path().join("error.log")).unwrap_or_default()
    );
    h.wait_state(&order.id, StateKind::Paid).await;

    // A signed callback from an address outside callback.allow, as nginx reports it: refused,
    // also when it claims an allowed address in its own X-Forwarded-For.
    let params = [
        ("mdOrder", Harness::gateway_id(&order)),
        ("orderNumber", order.order_number.to_string()),
        ("operation", "deposited".to_string()),
        ("status", "1".to_string()),
    ];
    let sum = hmac_sha256_checksum(CALLBACK_KEY, params.iter().map(|(k, v)| (*k, v.as_str())));
    let mut query: Vec<(&str, String)> = params.to_vec();
    query.push(("checksum", sum));
    let stranger = client(&ca, "127.0.0.2".parse().unwrap());
    for spoof in [None, Some("127.0.0.1")] {
        let mut request = stranger.get(public.clone()).query(&query);
        if let Some(claimed) = spoof {
            request = request.header("x-forwarded-for", claimed);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 403, "spoofing {spoof:?}");
    }
    // From the allowed address: accepted.
    let bank = client(&ca, "127.0.0.1".parse().unwrap());
    let reply = bank.get(public.clone()).query(&query).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);

    // Only the callback path is forwarded; nothing else of chasti is reachable.
    let other = public.join("/api/v1/health").unwrap();
    assert_eq!(bank.get(other).send().await.unwrap().status().as_u16(), 404);
    // A body over the proxy's limit never reaches chasti.
    let huge = bank
        .post(public.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=".to_string() + &"b".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status().as_u16(), 413);

    // `chasti doctor`'s probe of callback.public_url travels through nginx to chasti's route.
    let doctor_config = |public: &url::Url| {
        let text = format!(
            "[gateway]\nenvironment = \"sandbox\"\nuser_name = \"u\"\npassword = \"p\"\nreturn_url = \"https://shop.example/paid\"\nextra_ca_files = [{:?}]\n[callback]\nlisten = \"127.0.0.1:0\"\nallow = [\"192.0.2.0/24\"]\npublic_url = \"{public}\"\n",
            ca.display().to_string()
        );
        chasti::config::Config::parse(Path::new("doctor.toml"), &text, |_| None).unwrap()
    };
    let probe = chasti::doctor::public_url(&doctor_config(&public)).await;
    assert_eq!(
        probe.verdict,
        chasti::doctor::Verdict::Ok,
        "{}",
        probe.detail
    );
    assert!(
        probe.detail.contains("reaches chasti through the proxy"),
        "{}",
        probe.detail
    );
    assert!(
        probe.detail.contains("127.0.0.1"),
        "the caller as nginx reports it: {}",
        probe.detail
    );
    // A public address whose path the proxy does not forward.
    let wrong = public.join("/callback").unwrap();
    let probe = chasti::doctor::public_url(&doctor_config(&wrong)).await;
    assert_eq!(probe.verdict, chasti::doctor::Verdict::Fail);
    assert!(
        probe.detail.contains("404") && probe.detail.contains("does not forward this path"),
        "{}",
        probe.detail
    );
}
