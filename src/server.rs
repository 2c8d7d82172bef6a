//! Serves an axum router on a TCP listener, over plain HTTP or TLS, with a graceful stop.
//!
//! Written on hyper directly rather than `axum::serve` for two reasons: `axum::serve` has no
//! TLS, and the sandbox must be able to drop a connection without answering (a fault the real
//! gateway shows). Each connection gets a [`ConnectionKill`] in its request extensions; a
//! handler that triggers it makes the server close the socket with no reply.
//!
//! Every listener is bounded ([`Limits`]): a cap on open connections (one over it is closed at
//! once, so silent clients cannot take the process's file descriptors), a deadline for a
//! request's headers (and a TLS handshake), an idle timeout between requests, and a cap on the
//! header bytes hyper buffers.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// What one listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; one more is accepted and closed at once.
    pub max_connections: usize,
    /// From the connection's start (or the end of the last reply) to a request's full headers;
    /// also the TLS handshake's deadline.
    pub header_read_timeout: Duration,
    /// A connection with no request under way and no bytes either way for this long is closed.
    /// Server-sent event streams stay open: they send a keep-alive every 15 s.
    pub idle_timeout: Duration,
    /// Bytes hyper buffers for a request line and headers (at least 8 KiB).
    pub max_header_bytes: usize,
}

impl Limits {
    /// The till API: a few tills, the manager's browser, customer screens, the command line.
    pub const API: Limits = Limits {
        max_connections: 256,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_header_bytes: 64 * 1024,
    };
    /// The bank's callbacks: short requests, a few at a time.
    pub const CALLBACK: Limits = Limits {
        max_connections: 128,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        max_header_bytes: 32 * 1024,
    };
    /// The sandbox gateway (its clients: chasti, tests, a browser on the payment page).
    pub const SANDBOX: Limits = Limits {
        max_connections: 1024,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_header_bytes: 64 * 1024,
    };
}

/// Lets a handler close its own connection without a reply.
#[derive(Clone, Debug)]
pub struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// Closes the connection. The calling handler's future is dropped with it.
    pub fn kill(&self) {
        self.0.notify_one();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Still answering (the handlers refuse new sales with a Russian 503 while the daemon
    /// stops), until the requests under way have finished.
    Draining,
    /// Every connection closes now.
    Stopped,
}

/// Requests whose handler has not answered yet.
#[derive(Debug, Default)]
struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: Notify,
}

/// Counts one request while it is being handled: on the server and on its connection.
struct Handling(Arc<InFlight>, Arc<AtomicUsize>);

impl Handling {
    fn start(in_flight: &Arc<InFlight>, on_connection: &Arc<AtomicUsize>) -> Handling {
        in_flight.count.fetch_add(1, Ordering::SeqCst);
        on_connection.fetch_add(1, Ordering::SeqCst);
        Handling(in_flight.clone(), on_connection.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::SeqCst);
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A connection's socket that notes when bytes last moved, for the idle timeout.
struct Watched<S> {
    inner: S,
    started: Instant,
    /// Milliseconds since `started` of the last read or write.
    last: Arc<AtomicU64>,
}

impl<S> Watched<S> {
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A running server: its address, and switches that stop it (hard stop also on drop).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    phase: watch::Sender<Phase>,
    connections: TaskTracker,
    in_flight: Arc<InFlight>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every open connection now.
    pub fn stop(&self) {
        let _ = self.phase.send(Phase::Stopped);
    }

    /// Lets the requests under way finish (up to `limit`) while still answering new ones (the
    /// daemon refuses new sales meanwhile), then closes every connection. True when nothing
    /// was cut short.
    pub async fn shutdown(&self, limit: Duration) -> bool {
        let _ = self.phase.send(Phase::Draining);
        let in_flight = self.in_flight.clone();
        let drained = tokio::time::timeout(limit, async move {
            loop {
                let idle = in_flight.idle.notified();
                if in_flight.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await
        .is_ok();
        self.stop();
        self.connections.close();
        drained
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

pub use crate::gateway::tls::TlsError;

/// A TLS acceptor from a PEM certificate chain and a PEM private key.
pub fn tls_acceptor(cert_pem: &Path, key_pem: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = crate::gateway::tls::pem_certificates(cert_pem, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|source| TlsError::Read {
        what: "private key",
        path: key_pem.display().to_string(),
        source,
    })?;
    let config = rustls::ServerConfig::builder_with_provider(crate::gateway::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Identity)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Starts serving `router` on `listener` in the background, within `limits`.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
) -> ServerHandle {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (phase, phase_rx) = watch::channel(Phase::Serving);
    let connections = TaskTracker::new();
    let in_flight = Arc::new(InFlight::default());
    tokio::spawn(accept_loop(
        listener,
        router,
        tls,
        limits,
        phase_rx,
        connections.clone(),
        in_flight.clone(),
    ));
    ServerHandle {
        addr,
        phase,
        connections,
        in_flight,
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut phase: watch::Receiver<Phase>,
    connections: TaskTracker,
    in_flight: Arc<InFlight>,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused_since_warning = 0u64;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = phase.wait_for(|p| *p == Phase::Stopped) => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Over the cap: closed at once (dropping the stream), so the descriptor is back.
            drop(stream);
            refused_since_warning += 1;
            if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                tracing::warn!(
                    listener = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                    refused = refused_since_warning,
                    cap = limits.max_connections,
                    "connections over the cap were closed"
                );
                refused_since_warning = 0;
                last_warning = Some(Instant::now());
            }
            continue;
        };
        let router = router.clone();
        let tls = tls.clone();
        let phase = phase.clone();
        let in_flight = in_flight.clone();
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, peer, router, limits, phase, in_flight).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, router, limits, phase, in_flight).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut phase: watch::Receiver<Phase>,
    in_flight: Arc<InFlight>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let handle = ConnectionKill(kill.clone());
    let requests = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stream = Watched {
        inner: stream,
        started,
        last: last.clone(),
    };
    let on_connection = requests.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(handle.clone());
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let handling = Handling::start(&in_flight, &on_connection);
            let answer = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = answer.await;
                drop(handling);
                response
            }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let idle_check = limits.idle_timeout.min(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(idle_check) => {
                let quiet = started.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                if requests.load(Ordering::SeqCst) == 0 && quiet >= limits.idle_timeout {
                    tracing::debug!(%peer, "idle connection closed");
                    return;
                }
            }
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            // Dropping the connection future closes the socket without a reply.
            _ = kill.notified() => return,
            changed = phase.changed() => {
                let now = *phase.borrow_and_update();
                if changed.is_err() || now == Phase::Stopped {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
