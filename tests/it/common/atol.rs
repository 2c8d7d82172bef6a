//! A fake of the ATOL ККТ driver's web server («Web Requests», ДТО 10), on 127.0.0.1, for
//! `[fiscal] mode = "atol"`. A mock, because no real driver or ККТ can run here: written from
//! ATOL's public description of its JSON tasks and job API as collected in the project's
//! reference (`fiscal.md` §2: `POST /api/v2/requests {uuid, request}` → 201, 409 for a uuid it
//! has, `GET /api/v2/requests/{uuid}` → `{results: [{status, error, result}]}` with `wait` /
//! `inProgress` / `ready` / `error`, 404 for one it has not; `sell` / `sellReturn` with
//! `fiscalParams` in the result; the driver's error codes). It checks what a ККТ checks (the
//! lines add up to the total, the payment covers it, the tax rate suits the taxation system)
//! and can be told to fail jobs with a given ККТ error, to hold jobs in progress, or to lose
//! the reply to a job it took.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A receipt the fake ККТ printed.
#[derive(Debug, Clone)]
pub struct Printed {
    pub uuid: String,
    pub task: Value,
    pub document_number: u64,
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, Job>,
    /// Errors the next fiscal tasks end with, one each (code, description).
    fail_next: VecDeque<(i64, String)>,
    /// Jobs stay `inProgress` until released.
    hold: bool,
    /// The next job is taken but its reply is lost (the connection answers 502).
    lose_next_reply: bool,
    printed: Vec<Printed>,
    next_document: u64,
    /// Jobs that ended with an error: (uuid, code).
    failed: Vec<(String, i64)>,
    shift_expired: bool,
}

struct Job {
    tasks: Vec<Value>,
    results: Option<Vec<Value>>,
}

#[derive(Clone)]
pub struct FakeAtol {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeAtol {
    pub async fn start() -> FakeAtol {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeAtol {
            inner: Arc::new(Mutex::new(Inner {
                next_document: 100,
                ..Inner::default()
            })),
            url: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = axum::Router::new()
            .route("/api/v2/requests", axum::routing::post(queue))
            .route("/api/v2/requests/{uuid}", axum::routing::get(result))
            .route(
                "/api/v2/serverInfo",
                axum::routing::get(|| async { Json(json!({"version": "10.10.0.0"})) }),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn fail_next(&self, code: i64, description: &str) {
        self.lock()
            .fail_next
            .push_back((code, description.to_string()));
    }

    pub fn hold(&self, hold: bool) {
        self.lock().hold = hold;
    }

    pub fn lose_next_reply(&self) {
        self.lock().lose_next_reply = true;
    }

    pub fn expire_shift(&self, expired: bool) {
        self.lock().shift_expired = expired;
    }

    pub fn printed(&self) -> Vec<Printed> {
        self.lock().printed.clone()
    }

    pub fn failed(&self) -> Vec<(String, i64)> {
        self.lock().failed.clone()
    }

    pub fn jobs(&self) -> usize {
        self.lock().jobs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }
}

fn error(status: StatusCode, code: i64, description: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "description": description}})),
    )
        .into_response()
}

async fn queue(State(fake): State<FakeAtol>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 400, "Невалидный JSON");
    };
    let (Some(uuid), Some(tasks)) = (body["uuid"].as_str(), body["request"].as_array()) else {
        return error(StatusCode::BAD_REQUEST, 400, "Нужны uuid и request");
    };
    if uuid.is_empty() || tasks.is_empty() {
        return error(StatusCode::BAD_REQUEST, 400, "Пустой uuid или request");
    }
    let mut inner = fake.lock();
    if inner.jobs.contains_key(uuid) {
        return error(StatusCode::CONFLICT, 409, "Задание с таким uuid уже есть");
    }
    inner.jobs.insert(
        uuid.to_string(),
        Job {
            tasks: tasks.clone(),
            results: None,
        },
    );
    let number = inner.jobs.len();
    if std::mem::take(&mut inner.lose_next_reply) {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({"number": number, "uuid": uuid, "isBlocked": false})),
    )
        .into_response()
}

async fn result(State(fake): State<FakeAtol>, Path(uuid): Path<String>) -> Response {
    let mut inner = fake.lock();
    let hold = inner.hold;
    let Some(tasks) = inner.jobs.get(&uuid).map(|j| j.tasks.clone()) else {
        return error(StatusCode::NOT_FOUND, 404, "Задание не найдено");
    };
    if let Some(results) = inner.jobs.get(&uuid).and_then(|j| j.results.clone()) {
        return Json(json!({"results": results})).into_response();
    }
    if hold {
        return Json(json!({"results": [{"status": "inProgress"}]})).into_response();
    }
    let mut results = Vec::new();
    let mut broken = false;
    for task in &tasks {
        if broken {
            results.push(
                json!({"status": "interrupted", "error": {"code": 502, "description": "Прервано"}}),
            );
            continue;
        }
        let outcome = run(&mut inner, &uuid, task);
        broken = outcome["status"] == "error";
        if let Some(code) = outcome["error"]["code"].as_i64().filter(|_| broken) {
            inner.failed.push((uuid.clone(), code));
        }
        results.push(outcome);
    }
    if let Some(job) = inner.jobs.get_mut(&uuid) {
        job.results = Some(results.clone());
    }
    Json(json!({"results": results})).into_response()
}

/// Kopecks of a number in the driver's JSON (roubles with up to two decimals).
fn kopecks(v: &Value) -> Option<i64> {
    let text = v.as_number()?.to_string();
    let (whole, part) = text.split_once('.').unwrap_or((&text, ""));
    if part.len() > 2 {
        return None;
    }
    Some(whole.parse::<i64>().ok()? * 100 + format!("{part:0<2}").parse::<i64>().ok()?)
}

fn failed(code: i64, description: &str) -> Value {
    json!({"status": "error", "error": {"code": code, "description": description}})
}

fn run(inner: &mut Inner, uuid: &str, task: &Value) -> Value {
    match task["type"].as_str() {
        Some("getShiftStatus") => {
            let state = if inner.shift_expired {
                "expired"
            } else {
                "opened"
            };
            json!({"status": "ready", "result": {"shiftStatus": {"state": state, "number": 7}}})
        }
        Some(kind @ ("sell" | "sellReturn")) => {
            if let Some((code, description)) = inner.fail_next.pop_front() {
                return failed(code, &description);
            }
            if inner.shift_expired {
                return failed(68, "Смена превысила 24 часа");
            }
            let taxation = task["taxationType"].as_str().unwrap_or("");
            if !["osn", "usnIncome", "usnIncomeOutcome", "esn", "patent"].contains(&taxation) {
                return failed(143, "Неверная система налогообложения");
            }
            let items = task["items"].as_array().cloned().unwrap_or_default();
            let mut sum = 0;
            for item in &items {
                let tax = item["tax"]["type"].as_str().unwrap_or("");
                let known = [
                    "none", "vat0", "vat5", "vat7", "vat10", "vat22", "vat105", "vat107", "vat110",
                    "vat122", "vat20", "vat120",
                ];
                if !known.contains(&tax) || (taxation != "osn" && tax != "none") {
                    return failed(144, "Неверная ставка НДС");
                }
                match kopecks(&item["amount"]) {
                    Some(amount) => sum += amount,
                    None => return failed(24, "Неверная сумма позиции"),
                }
            }
            let total = kopecks(&task["total"]);
            let paid: Option<i64> = task["payments"]
                .as_array()
                .map(|p| p.iter().filter_map(|p| kopecks(&p["sum"])).sum());
            if total != Some(sum) || paid != total || items.is_empty() {
                return failed(24, "Сумма позиций или оплаты не совпадает с итогом чека");
            }
            inner.next_document += 1;
            let number = inner.next_document;
            inner.printed.push(Printed {
                uuid: uuid.to_string(),
                task: task.clone(),
                document_number: number,
            });
            json!({"status": "ready", "result": {"fiscalParams": {
                "fiscalDocumentNumber": number,
                "fiscalDocumentSign": format!("{}", 3_000_000_000u64 + number),
                "fiscalDocumentDateTime": "2026-12-06T12:00:00+03:00",
                "fiscalReceiptNumber": number - 100,
                "shiftNumber": 7,
                "fnNumber": "9999078900001234",
                "registrationNumber": "0000000001002292",
                "total": task["total"],
                "type": kind,
            }}})
        }
        _ => failed(25, "Неизвестный тип задания"),
    }
}
