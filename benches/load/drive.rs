//! What drives the processes: tills selling over the till API, the same number of register.do
//! calls straight to the sandbox (the peer a sale is compared with), and signed callbacks, each
//! a distinct one chasti must store before it answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chasti::sandbox::{DEFAULT_PASSWORD, DEFAULT_USER};

use super::procs::{CALLBACK_KEY, CASHIER};

/// Latencies of a run and how long it took.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i]
    }
}

/// A counter shared by the clients, for keys and order numbers no one else uses.
static SEQ: AtomicUsize = AtomicUsize::new(0);

fn next() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// How clients make their calls.
#[derive(Clone, Copy)]
pub enum Load {
    /// Each client calls again as soon as its last call is answered (closed loop): measures
    /// throughput, and latency at saturation.
    BackToBack,
    /// Each client starts a call every so often, whatever the others do (open loop), as tills
    /// do: measures latency at a given rate.
    Every(Duration),
}

/// `total` calls made by `clients` concurrent clients, each one after the other.
async fn run<F, Fut>(clients: usize, total: usize, load: Load, call: F) -> Run
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let left = Arc::new(AtomicUsize::new(total));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (call, left) = (call.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ticks = match load {
                Load::BackToBack => None,
                Load::Every(every) => {
                    // Tills spread over the period rather than all at its start.
                    let offset = every * client as u32 / clients as u32;
                    let mut ticks =
                        tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    Some(ticks)
                }
            };
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                let t = Instant::now();
                call().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Run {
        latencies,
        wall: started.elapsed(),
    }
}

/// A sale made: the bank's order id and the order number.
pub type Sold = (String, String);

/// Sales through the till API, as tills do; returns the run and the sales made.
pub async fn sales(
    http: &reqwest::Client,
    api: &str,
    clients: usize,
    total: usize,
    load: Load,
) -> (Run, Vec<Sold>) {
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let (http, url, kept) = (http.clone(), format!("{api}/api/v1/sales"), ids.clone());
    let run = run(clients, total, load, move || {
        let (http, url, kept) = (http.clone(), url.clone(), kept.clone());
        async move {
            let body = serde_json::json!({
                "amount": format!("{}.00", 100 + next() % 50_000),
                "idempotency_key": format!("bench-{}", uuid::Uuid::new_v4()),
            });
            let reply = http
                .post(&url)
                .bearer_auth(CASHIER)
                .json(&body)
                .send()
                .await
                .expect("the till API answers");
            assert_eq!(reply.status().as_u16(), 201, "a sale is created");
            let reply: serde_json::Value = reply.json().await.unwrap();
            let order = &reply["order"];
            if let (Some(id), Some(number)) = (
                order["gateway_order_id"].as_str(),
                order["order_number"].as_str(),
            ) {
                kept.lock()
                    .unwrap()
                    .push((id.to_string(), number.to_string()));
            }
        }
    })
    .await;
    let ids = std::mem::take(&mut *ids.lock().unwrap());
    (run, ids)
}

/// register.do straight to the sandbox: what a sale costs at the bank alone.
pub async fn registers(
    http: &reqwest::Client,
    sandbox: &str,
    clients: usize,
    total: usize,
    load: Load,
) -> Run {
    let (http, url) = (http.clone(), format!("{sandbox}payment/rest/register.do"));
    run(clients, total, load, move || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let form = [
                ("userName", DEFAULT_USER.to_string()),
                ("password", DEFAULT_PASSWORD.to_string()),
                ("orderNumber", format!("DIRECT-{}", next())),
                ("amount", "10000".to_string()),
                ("returnUrl", "https://shop.example/paid".to_string()),
            ];
            let reply = http.post(&url).form(&form).send().await.unwrap();
            assert_eq!(reply.status().as_u16(), 200);
            let _ = reply.bytes().await;
        }
    })
    .await
}

/// The customer pays each order (the sandbox then calls chasti back).
pub async fn pay_all(http: &reqwest::Client, sandbox: &str, sold: &[Sold]) {
    for (id, _) in sold {
        let reply = http
            .post(format!("{sandbox}sandbox/api/orders/{id}/pay"))
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success());
    }
}

/// Signed callbacks straight to chasti's callback route: for each order, one callback per
/// operation, so every one is a distinct message chasti stores (committed) before its 200 —
/// none is a replay. Runs until `total` are answered.
pub async fn callbacks(
    http: &reqwest::Client,
    url: &str,
    orders: &[Sold],
    clients: usize,
    total: usize,
) -> Run {
    let operations = ["approved", "deposited", "declinedByTimeout"];
    let queries: Vec<Vec<(String, String)>> = orders
        .iter()
        .flat_map(|(md, number)| operations.iter().map(move |op| (md, number, op)))
        .take(total)
        .map(|(md, number, op)| {
            let params = [
                ("mdOrder", md.as_str()),
                ("orderNumber", number.as_str()),
                ("operation", op),
                ("status", "0"),
            ];
            let sum = chasti::gateway::checksum::hmac_sha256_checksum(CALLBACK_KEY, params);
            let mut query: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            query.push(("checksum".into(), sum));
            query
        })
        .collect();
    assert_eq!(queries.len(), total, "enough orders for distinct callbacks");
    let queries = Arc::new(queries);
    let at = Arc::new(AtomicUsize::new(0));
    let (http, url) = (http.clone(), url.to_string());
    run(clients, total, Load::BackToBack, move || {
        let (http, url, queries, at) = (http.clone(), url.clone(), queries.clone(), at.clone());
        async move {
            let query = &queries[at.fetch_add(1, Ordering::Relaxed) % queries.len()];
            let reply = http.get(&url).query(query).send().await.unwrap();
            assert_eq!(
                reply.status().as_u16(),
                200,
                "a callback is kept and answered"
            );
        }
    })
    .await
}
