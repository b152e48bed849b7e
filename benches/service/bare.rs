//! The baseline of the service benchmark: bare axum handlers doing the same Redis commands as
//! the personalities, with nothing around them (no breaker, no metrics, no staleness, no input
//! checks).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use caplab::node::WriteRequest;
use caplab::node::record::WRITE_SCRIPT;
use fred::clients::Client;
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface, ServerInterface};
use fred::types::{Builder, ClusterHash, CustomCommand, Value};
use tokio::sync::Semaphore;

use super::{Failure, POOL, loopback};

pub async fn client(url: &str) -> Result<Client, Failure> {
    let client = Builder::from_config(fred::prelude::Config::from_url(url)?)
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(1))
        .build()?;
    client.init().await?;
    Ok(client)
}

/// The floor: the same Redis commands behind axum, with nothing else (no breaker, no metrics,
/// no staleness, no input checks).
#[derive(Clone)]
struct Bare {
    g2: Client,
    sha: Arc<String>,
    idle: Arc<Mutex<Vec<Client>>>,
    permits: Arc<Semaphore>,
}

pub async fn start_bare(g1: &str, g2: &str) -> Result<SocketAddr, Failure> {
    let mut pool = Vec::new();
    for _ in 0..POOL {
        pool.push(client(g1).await?);
    }
    let loader = client(g1).await?;
    let load = CustomCommand::new_static("SCRIPT", ClusterHash::Random, false);
    let sha: String = loader.custom(load, vec!["LOAD", WRITE_SCRIPT]).await?;
    let state = Bare {
        g2: client(g2).await?,
        sha: Arc::new(sha),
        idle: Arc::new(Mutex::new(pool)),
        permits: Arc::new(Semaphore::new(POOL)),
    };
    let router = Router::new()
        .route("/read/{key}", get(bare_read))
        .route("/write/{key}/{value}", post(bare_write))
        .route("/write-design/{key}/{value}", post(bare_write_design))
        .with_state(state);
    let listener = loopback().await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

async fn bare_read(State(s): State<Bare>, Path(key): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match s
        .g2
        .hgetall::<std::collections::HashMap<String, String>, _>(format!("caplab:kv:{key}"))
        .await
    {
        Ok(fields) => axum::Json(fields).into_response(),
        Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn bare_write(
    State(s): State<Bare>,
    Path((key, value)): Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(_permit) = s.permits.acquire().await else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let Some(conn) = s.idle.lock().ok().and_then(|mut v| v.pop()) else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let pipeline = conn.pipeline();
    let queued: Result<(), _> = async {
        let _: () = pipeline
            .set(format!("bare:{key}"), value.as_str(), None, None, false)
            .await?;
        let _: () = pipeline.wait(1, 500).await?;
        Ok::<(), fred::error::Error>(())
    }
    .await;
    let result = match queued {
        Ok(()) => pipeline.all::<Vec<Value>>().await,
        Err(e) => Err(e),
    };
    if let Ok(mut idle) = s.idle.lock() {
        idle.push(conn);
    }
    match result {
        Ok(values) if values.get(1).and_then(Value::as_u64) >= Some(1) => {
            axum::Json(serde_json::json!({"key": key, "value": value, "replicated": true}))
                .into_response()
        }
        _ => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The same Redis commands as a CP write (the record script, `ROLE`, `WAIT 1`) in one pipeline
/// on a dedicated connection, with nothing else around them.
async fn bare_write_design(
    State(s): State<Bare>,
    Path((key, value)): Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(_permit) = s.permits.acquire().await else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let Some(conn) = s.idle.lock().ok().and_then(|mut v| v.pop()) else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let write = WriteRequest::new(key.clone(), value.clone());
    let mut args = vec![s.sha.as_str().to_string(), "2".to_string()];
    args.extend(write.script_keys());
    args.extend(write.script_args(false));
    let pipeline = conn.pipeline();
    let queued: Result<(), fred::error::Error> = async {
        let _: () = pipeline
            .custom(
                CustomCommand::new_static("EVALSHA", ClusterHash::Random, false),
                args,
            )
            .await?;
        let _: () = pipeline
            .custom(
                CustomCommand::new_static("ROLE", ClusterHash::Random, false),
                Vec::<Value>::new(),
            )
            .await?;
        let _: () = pipeline.wait(1, 500).await?;
        Ok(())
    }
    .await;
    let result = match queued {
        Ok(()) => pipeline.all::<Vec<Value>>().await,
        Err(e) => Err(e),
    };
    if let Ok(mut idle) = s.idle.lock() {
        idle.push(conn);
    }
    match result {
        Ok(values) if values.get(2).and_then(Value::as_u64) >= Some(1) => {
            axum::Json(serde_json::json!({"key": key, "value": value, "replicated": true}))
                .into_response()
        }
        _ => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
