//! The listener's bounds, with limits small enough to see them act.

use std::time::{Duration, Instant};

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{spawn, Limits};

const SMALL: Limits = Limits {
    max_connections: 4,
    header_read_timeout: Duration::from_millis(300),
    idle_timeout: Duration::from_millis(600),
    max_header_bytes: 8192,
};

async fn server(limits: Limits) -> super::ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = axum::Router::new().route("/", get(|| async { "ok" }));
    spawn(listener, router, None, limits)
}

/// Reads until the server closes the connection; the bytes it sent.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut all)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {limit:?}"
    );
    all
}

#[tokio::test]
async fn a_connection_over_the_cap_is_closed_at_once_and_the_cap_frees_up() {
    let server = server(SMALL).await;
    let mut held = Vec::new();
    for _ in 0..SMALL.max_connections {
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut reply = [0u8; 64];
        assert!(s.read(&mut reply).await.unwrap() > 0);
        held.push(s);
    }
    let mut over = TcpStream::connect(server.local_addr()).await.unwrap();
    let started = Instant::now();
    assert!(until_closed(&mut over, Duration::from_secs(2))
        .await
        .is_empty());
    assert!(started.elapsed() < Duration::from_millis(250));

    drop(held);
    // Each held connection's task ends when its socket closes; then a new one is served.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        if !until_closed(&mut s, Duration::from_secs(2))
            .await
            .is_empty()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the cap never freed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_forever_are_cut_off() {
    let server = server(SMALL).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // A slowloris: one header byte every 50 ms, never the blank line.
    let mut cut_off = false;
    for _ in 0..100 {
        if s.write_all(b"x").await.is_err() {
            cut_off = true;
            break;
        }
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(50), s.read(&mut byte)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(
        cut_off,
        "the connection was still open after 5 s of trickled headers"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = server(SMALL).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = [0u8; 256];
    assert!(s.read(&mut reply).await.unwrap() > 0);
    let started = Instant::now();
    until_closed(&mut s, Duration::from_secs(10)).await;
    let quiet = started.elapsed();
    assert!(quiet >= Duration::from_millis(250), "{quiet:?}");
}

#[tokio::test]
async fn a_huge_request_line_is_refused_without_reading_it_all() {
    let server = server(SMALL).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let line = format!(
        "GET /?{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(line.as_bytes()).await; // the server may close before it is all sent
    let reply = until_closed(&mut s, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.is_empty()
            || text.starts_with("HTTP/1.1 431")
            || text.starts_with("HTTP/1.1 414")
            || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
}
