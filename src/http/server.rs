//! Serves an axum router on a TCP listener, over plain HTTP or TLS, with a graceful stop.
//!
//! Written on hyper directly rather than `axum::serve` for two reasons: `axum::serve` has no
//! TLS, and the sandbox must be able to drop a connection without answering (a fault the real
//! gateway shows). Each connection gets a [`ConnectionKill`] in its request extensions; a
//! handler that triggers it makes the server close the socket with no reply.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

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

/// Counts one request while it is being handled.
struct Handling(Arc<InFlight>);

impl Handling {
    fn start(in_flight: &Arc<InFlight>) -> Handling {
        in_flight
            .count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Handling(in_flight.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
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

/// A TLS acceptor from a PEM certificate chain and a PEM private key.
pub fn tls_acceptor(cert_pem: &Path, key_pem: &Path) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert_pem.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate {} is not valid PEM: {e}", cert_pem.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert_pem.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .map_err(|e| format!("cannot read private key {}: {e}", key_pem.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(crate::gateway::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not make a TLS identity: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Starts serving `router` on `listener` in the background.
pub fn spawn(listener: TcpListener, router: Router, tls: Option<TlsAcceptor>) -> ServerHandle {
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
    mut phase: watch::Receiver<Phase>,
    connections: TaskTracker,
    in_flight: Arc<InFlight>,
) {
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
        let router = router.clone();
        let tls = tls.clone();
        let phase = phase.clone();
        let in_flight = in_flight.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(stream, peer, router, phase, in_flight).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => serve_connection(stream, peer, router, phase, in_flight).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    mut phase: watch::Receiver<Phase>,
    in_flight: Arc<InFlight>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let handle = ConnectionKill(kill.clone());
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(handle.clone());
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let handling = Handling::start(&in_flight);
            let answer = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = answer.await;
                drop(handling);
                response
            }
        });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    loop {
        tokio::select! {
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
