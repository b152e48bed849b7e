//! The console's HTTP routes: the page and its assets (embedded in the binary), the event
//! stream, the control API, the "try it" relay, scenarios and their reports.
//!
//! Beside the data path. The page talks only to the console. The console has no login, so
//! it binds loopback by default and refuses what a hostile web page in the same browser could
//! send: requests whose `Host` is not the console's own address or `localhost` (DNS
//! rebinding), and state-changing requests that are not `application/json` (a cross-site form
//! cannot send that without a CORS preflight, which the console never grants).
//!
//! | route | what |
//! |---|---|
//! | `GET /` and `/assets/...` | the page, its script and styles, uPlot (vendored, MIT) |
//! | `GET /events` | server-sent events: `history` (the last minute) once, then `tick` twice a second |
//! | `GET /api/state` | the newest tick as JSON |
//! | `POST /api/control` | one control (`{"action": "cut", "link": "cluster_g1"}`) |
//! | `POST /api/traffic` | `{"on": true}` or `{"on": false}` |
//! | `POST /api/try` | one write or read relayed to CP or AP |
//! | `GET /api/scenarios`, `POST /api/scenario` | the shipped scenarios; start one (`{"file": ...}`) |
//! | `GET /runs/{id}/{file}` | a run's `report.html`, `report.md` or `report.json` |
//! | `GET /health` | 200 while the console serves |

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde_json::json;

use super::Shared;
use super::control::{Control, ControlError, apply};

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const UPLOT_JS: &str = include_str!("assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("assets/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("assets/uplot/LICENSE");

/// The console's router over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/assets/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/uplot/uPlot.iife.min.js",
            get(|| async { asset(UPLOT_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/uplot/uPlot.min.css",
            get(|| async { asset(UPLOT_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/uplot/LICENSE",
            get(|| async { asset(UPLOT_LICENSE, "text/plain; charset=utf-8") }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/events", get(events))
        .route("/api/state", get(state))
        .route("/api/control", post(control))
        .route("/api/traffic", post(traffic))
        .route("/api/try", post(try_it))
        .route("/api/scenarios", get(scenarios))
        .route("/api/scenario", post(scenario))
        .route("/runs/{id}/{file}", get(report))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such page".into()) })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A JSON error answer.
fn problem(status: StatusCode, error: String) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// Whether `host` (a `Host` header) names this console: its own address, or a loopback name
/// with its port.
fn host_allowed(host: &str, shared: &Shared) -> bool {
    let port = shared.listen.port();
    let own = shared.listen.to_string();
    host == own
        || [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]
        .iter()
        .any(|h| h == host)
        || (!shared.listen.ip().is_loopback()
            && host
                .rsplit_once(':')
                .is_some_and(|(_, p)| p == port.to_string()))
}

async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, &shared) {
        return problem(
            StatusCode::FORBIDDEN,
            format!(
                "the console answers only requests addressed to {} (Host was `{host}`)",
                shared.listen
            ),
        );
    }
    if request.method() == Method::POST && !is_json(request.headers()) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the console's API takes Content-Type: application/json".into(),
        );
    }
    next.run(request).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        })
}

/// `GET /events`: the last minute once (`history`), the newest tick if there is one, then
/// every tick (`tick`) until the page goes away or the console stops. Every page reads the
/// same serialized tick: the lab is polled once however many pages are open.
async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let history = {
        let h = match shared.history.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        json!({ "points": h.points(), "tick_ms": super::TICK.as_millis() as u64 })
    };
    let mut latest = shared.latest.subscribe();
    let current = latest.borrow_and_update().clone();
    let stopping = shared.stopping.subscribe();
    let first = futures::stream::iter(
        std::iter::once(Event::default().event("history").data(history.to_string()))
            .chain((!current.is_empty()).then(|| Event::default().event("tick").data(&*current)))
            .map(Ok),
    );
    let rest = futures::stream::unfold(
        (latest, stopping),
        |(mut latest, mut stopping)| async move {
            if *stopping.borrow() {
                return None;
            }
            tokio::select! {
                changed = latest.changed() => changed.ok()?,
                _ = stopping.wait_for(|s| *s) => return None,
            }
            let data = latest.borrow_and_update().clone();
            Some((
                Ok(Event::default().event("tick").data(&*data)),
                (latest, stopping),
            ))
        },
    );
    use futures::StreamExt;
    Sse::new(first.chain(rest)).keep_alive(KeepAlive::default())
}

/// `GET /api/state`: the newest tick.
async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let latest = shared.latest.borrow().clone();
    if latest.is_empty() {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first tick has not happened yet".into(),
        );
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        latest.to_string(),
    )
        .into_response()
}

/// `POST /api/control`: 200 with the log line when done; 400 for a control that does not
/// exist, 409 while another control or a scenario acts on the lab, 502 when the lab
/// refused or failed (with the log line).
async fn control(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let control = match Control::parse(&body) {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match apply(&shared, control).await {
        Ok(entry) => axum::Json(entry).into_response(),
        Err(e @ ControlError::Invalid(_)) => problem(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ ControlError::Busy(_)) => problem(StatusCode::CONFLICT, e.to_string()),
        Err(ControlError::Failed(entry)) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({ "error": entry.detail, "entry": entry })),
        )
            .into_response(),
    }
}

/// `POST /api/traffic` `{"on": bool}`: 200 with whether it runs now.
async fn traffic(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Switch {
        on: bool,
    }
    match serde_json::from_slice::<Switch>(&body) {
        Ok(s) => {
            let on = super::traffic::switch(&shared, s.on);
            super::control::log(
                &shared,
                format!("traffic {}", if on { "on" } else { "off" }),
                true,
                if on {
                    format!(
                        "{} client loops per personality, reading and writing 8 keys",
                        super::traffic::WORKERS
                    )
                } else {
                    "the client loops stopped".into()
                },
                std::time::Instant::now(),
            );
            axum::Json(json!({ "on": on })).into_response()
        }
        Err(e) => problem(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"on\": true}} or {{\"on\": false}}: {e}"),
        ),
    }
}

/// `POST /api/try`: the app's answer, whatever its status (the relay itself answers 200);
/// 400 for a request the console will not relay.
async fn try_it(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"via\": \"cp\"|\"ap\", \"op\": \"write\"|\"read\", \"key\": ..., \"value\": ..., \"token\": ...}}: {e}"
                ),
            );
        }
    };
    match super::try_it::relay(&shared, request).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /api/scenarios`.
async fn scenarios(State(shared): State<Arc<Shared>>) -> Response {
    match super::scenarios::list(&shared.scenarios_dir) {
        Ok(list) => axum::Json(json!({ "scenarios": list })).into_response(),
        Err(e) => problem(StatusCode::NOT_FOUND, e),
    }
}

/// `POST /api/scenario` `{"file": "replication-partition.toml"}`: 202, the run started (its
/// progress and verdict come with the ticks); 409 while one runs; 400 for an unknown file.
async fn scenario(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Start {
        file: String,
    }
    let start: Start = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"file\": \"<name>.toml\"}}: {e}"),
            );
        }
    };
    if super::scenarios::running(&shared).is_some() {
        return problem(StatusCode::CONFLICT, "a scenario is already running".into());
    }
    match super::scenarios::start(&shared, &start.file) {
        Ok(view) => (StatusCode::ACCEPTED, axum::Json(view)).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e),
    }
}

/// `GET /runs/{id}/{file}`.
async fn report(
    State(shared): State<Arc<Shared>>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let Some((path, content_type)) = super::scenarios::report_file(&shared, &id, &file) else {
        return problem(StatusCode::NOT_FOUND, format!("no report {id}/{file}"));
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(), // ok: test code
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap()); // ok: test code
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(), // ok: test code
        );
        assert!(!is_json(&h));
    }
}
