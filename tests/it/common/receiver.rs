//! A real HTTP server that records what the sandbox sends to it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method as HttpMethod, StatusCode};
use axum::routing::any;
use axum::Router;

/// One callback as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: HttpMethod,
    pub params: Vec<(String, String)>,
}

impl Received {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer with, in turn; 200 once used up.
    script: Mutex<VecDeque<u16>>,
}

/// A real HTTP server that records what the sandbox sends to it.
pub struct CallbackReceiver {
    state: Arc<ReceiverState>,
    pub addr: SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl CallbackReceiver {
    pub async fn start() -> CallbackReceiver {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/callback", any(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        CallbackReceiver {
            state,
            addr,
            _server: server,
        }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/callback", self.addr)).unwrap()
    }

    /// Answer the next callbacks with these statuses.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` callbacks arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "expected {n} callbacks within 5 s, got {:?}",
            self.received()
        );
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    method: HttpMethod,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> StatusCode {
    let mut params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    params.extend(serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).unwrap_or_default());
    state
        .received
        .lock()
        .unwrap()
        .push(Received { method, params });
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}
