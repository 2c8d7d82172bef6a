//! What `chasti serve` says when it starts on a till host set up wrong: one clear line for
//! each problem, with the fix, in the words `doctor` uses (a missing printer, no API tokens,
//! a clock minutes off the bank's), and it serves all the same.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::ServeProcess;

/// A stand-in "bank" that answers every request with a `Date` ten minutes behind and a body
/// that is no gateway's (`{}`): enough for the clock check, and the credential check must not
/// take it for an answer. Its address.
async fn skewed_gateway() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf).await;
                let date = (chrono::Utc::now() - chrono::Duration::minutes(10))
                    .format("%a, %d %b %Y %H:%M:%S GMT");
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_says_at_start_what_is_wrong_and_how_to_fix_it() {
    let gateway = skewed_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chasti.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nenvironment = \"test\"\nbase_url = \"http://{gateway}/payment/rest/\"\n\
             user_name = \"shop-api\"\npassword = \"not-checked-here\"\n\
             return_url = \"https://shop.example/paid\"\n\
             [store]\npath = \"{}\"\n[callback]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[printer]]\nname = \"receipt\"\nprofile = \"epson-tm-t20iii\"\nport = \"/dev/ttyUSB-chasti-missing\"\n",
            dir.path().join("orders.db").display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("serve.log");
    let serve = tokio::task::spawn_blocking({
        let (config, log_path) = (config.clone(), log_path.clone());
        move || ServeProcess::start(&config, &log_path, &[])
    })
    .await
    .unwrap();

    let wanted = [
        "printer: receipt: cannot open /dev/ttyUSB-chasti-missing",
        "check the cable, the path (ls -l /dev/serial/by-id)",
        "no [[api.tokens]] configured: every till API call will be refused with 401",
        "clock: the host's clock is",
        "set up NTP (timedatectl set-ntp true)",
        "neither an order status nor an error code: it is not the bank's gateway",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if wanted.iter().all(|w| log.contains(w)) {
            break log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all said within 20 s; missing {:?} in:\n{log}",
            wanted
                .iter()
                .filter(|w| !log.contains(*w))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let skew_line = log
        .lines()
        .find(|l| l.contains("clock: the host's clock"))
        .unwrap();
    assert!(skew_line.contains("WARN"), "{skew_line}");
    // It serves all the same: health answers.
    let health = crate::common::http()
        .get(format!("{}/api/v1/health", serve.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(!log.contains("not-checked-here"), "no secret in the log");
    assert!(!log.contains("credentials accepted"), "{log}");
    serve.terminate();
}
