//! Serves an axum router on a TCP listener, over plain HTTP or TLS.
//!
//! Written on hyper directly rather than `axum::serve` for two reasons: `axum::serve` has no
//! TLS, and the sandbox must be able to drop a connection without answering (a fault the real
//! gateway shows). Each connection gets a [`ConnectionKill`] in its request extensions; a
//! handler that triggers it makes the server close the socket with no reply.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;
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

/// A running server: its address, and a switch that stops it (also on drop).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every open connection.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
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
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(accept_loop(listener, router, tls, stopped));
    ServerHandle { addr, stop }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        let tls = tls.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, peer, router, stopped).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => serve_connection(stream, peer, router, stopped).await,
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
    mut stopped: watch::Receiver<bool>,
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
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        // Dropping the connection future closes the socket without a reply.
        _ = kill.notified() => {}
        _ = stopped.changed() => {}
    }
}
