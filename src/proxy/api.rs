//! The HTTP routes of the Toxiproxy 2.x API and their handlers.
//!
//! Control plane entry: each handler takes the raw body (any content type, as Toxiproxy
//! accepts), hands the operation to the control task ([`super::control`]) and turns the answer
//! into Toxiproxy's status code and JSON. Errors become responses in one place,
//! [`ApiError`]'s `IntoResponse`. Every response carries a fresh `X-Toxiproxy-Request-Id` (an
//! xid, as Toxiproxy's request-id middleware makes), and `/metrics` serves the proxy's
//! registry ([`super::metrics`]) when metrics are on.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Serialize;

use super::control::Control;
use super::error::{ApiError, ErrorBody};
use super::metrics::ProxyMetrics;
use super::model::ProxyJson;

/// What `GET /version` reports.
pub const VERSION: &str = concat!("caplab-", env!("CARGO_PKG_VERSION"));

/// The header Toxiproxy puts a request id in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-toxiproxy-request-id");

/// The API's routes, Toxiproxy's paths and methods; `/metrics` only with `metrics`.
pub fn router(control: Control, metrics: Option<Arc<ProxyMetrics>>) -> Router {
    let mut routes = Router::new();
    if let Some(metrics) = metrics {
        // Any method, as Toxiproxy registers it.
        routes = routes.route(
            "/metrics",
            any(move || async move { serve_metrics(&metrics) }),
        );
    }
    routes
        .route("/reset", post(reset))
        .route("/proxies", get(list).post(create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(delete),
        )
        .route("/proxies/{proxy}/toxics", get(toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(show_toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(remove_toxic),
        )
        .route("/version", get(version))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(refuse_browsers))
        .layer(middleware::from_fn(request_id))
        .with_state(control)
}

/// Adds a new request id to the response, as Toxiproxy's `hlog.RequestIDHandler` does. (The
/// xid generator reads the system clock and would panic only on a clock set before 1970.)
async fn request_id(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Ok(id) = HeaderValue::from_str(&xid::new().to_string()) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

fn serve_metrics(metrics: &ProxyMetrics) -> Response {
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode the proxy metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Toxiproxy refuses browsers (`User-Agent: Mozilla/...`) so a web page cannot drive it.
async fn refuse_browsers(request: Request, next: Next) -> Response {
    let from_browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if from_browser {
        return ApiError::BrowserForbidden.into_response();
    }
    next.run(request).await
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn version() -> Response {
    let mut response = format!("{{\"version\": \"{VERSION}\"}}\n").into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

async fn reset(State(control): State<Control>) -> ApiResult {
    control
        .run(|r| Box::pin(async move { r.reset().await }))
        .await??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(State(control): State<Control>) -> ApiResult {
    let proxies = control.run_sync(|r| r.list()).await?;
    Ok(json(StatusCode::OK, &proxies))
}

async fn create(State(control): State<Control>, body: Bytes) -> ApiResult {
    let proxy = control
        .run(move |r| Box::pin(async move { r.create(&body).await }))
        .await??;
    Ok(json(StatusCode::CREATED, &proxy))
}

/// Populate's answer: the proxies done, and the error if one stopped it.
#[derive(Serialize)]
struct PopulateAnswer {
    #[serde(flatten)]
    error: Option<ErrorBody>,
    proxies: Vec<ProxyJson>,
}

async fn populate(State(control): State<Control>, body: Bytes) -> ApiResult {
    let (proxies, error) = control
        .run(move |r| Box::pin(async move { r.populate(&body).await }))
        .await?;
    let status = error.as_ref().map_or(StatusCode::CREATED, ApiError::status);
    if let Some(e) = &error {
        tracing::warn!(error = %e, done = proxies.len(), "populate stopped");
    }
    let answer = PopulateAnswer {
        error: error.map(|e| e.body()),
        proxies,
    };
    Ok(json(status, &answer))
}

async fn show(State(control): State<Control>, Path(proxy): Path<String>) -> ApiResult {
    let proxy = control.run_sync(move |r| r.show(&proxy)).await??;
    Ok(json(StatusCode::OK, &proxy))
}

async fn update(
    State(control): State<Control>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> ApiResult {
    let proxy = control
        .run(move |r| Box::pin(async move { r.update(&proxy, &body).await }))
        .await??;
    Ok(json(StatusCode::OK, &proxy))
}

async fn delete(State(control): State<Control>, Path(proxy): Path<String>) -> ApiResult {
    control
        .run(move |r| Box::pin(async move { r.delete(&proxy).await }))
        .await??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn toxics(State(control): State<Control>, Path(proxy): Path<String>) -> ApiResult {
    let toxics = control.run_sync(move |r| r.toxics(&proxy)).await??;
    Ok(json(StatusCode::OK, &toxics))
}

async fn add_toxic(
    State(control): State<Control>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> ApiResult {
    let toxic = control
        .run_sync(move |r| r.add_toxic(&proxy, &body))
        .await??;
    Ok(json(StatusCode::OK, &toxic))
}

async fn show_toxic(
    State(control): State<Control>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> ApiResult {
    let toxic = control
        .run_sync(move |r| r.show_toxic(&proxy, &toxic))
        .await??;
    Ok(json(StatusCode::OK, &toxic))
}

async fn update_toxic(
    State(control): State<Control>,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let toxic = control
        .run_sync(move |r| r.update_toxic(&proxy, &toxic, &body))
        .await??;
    Ok(json(StatusCode::OK, &toxic))
}

async fn remove_toxic(
    State(control): State<Control>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> ApiResult {
    control
        .run_sync(move |r| r.remove_toxic(&proxy, &toxic))
        .await??;
    Ok(StatusCode::NO_CONTENT.into_response())
}
