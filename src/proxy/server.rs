//! The embedded server as a library: [`ProxyServer::start`] binds the API (port 0 allowed) and
//! returns a [`RunningProxy`] that stops everything on [`RunningProxy::shutdown`] or on drop.
//!
//! Control plane root: it owns the HTTP API task and the control task; the proxies and their
//! connections live under the control task. The lab embeds it in-process, `caplab proxy` runs
//! it until a signal, the tests start one per test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ProxyError;
use super::api;
use super::control::Control;
use super::error::ApiError;
use super::metrics::{MetricsOptions, ProxyMetrics};
use super::model::ProxyJson;
use super::registry::Registry;
use super::upstream::UpstreamPolicy;

/// How long a shutdown waits for in-flight API requests.
const API_DRAIN: Duration = Duration::from_secs(5);

/// What a server does beyond Toxiproxy's API: its metrics and where proxies may forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Which metrics `/metrics` serves.
    pub metrics: MetricsOptions,
    /// Loopback-only upstreams, or any.
    pub upstreams: UpstreamPolicy,
}

impl Default for ProxyOptions {
    /// Byte counters on, process metrics off, upstreams on loopback only.
    fn default() -> Self {
        ProxyOptions {
            metrics: MetricsOptions {
                proxy: true,
                runtime: false,
            },
            upstreams: UpstreamPolicy::default(),
        }
    }
}

/// Starts embedded Toxiproxy-compatible servers.
pub struct ProxyServer;

impl ProxyServer {
    /// Binds the HTTP API on `api_addr` (port 0 picks a free port) and starts serving, with
    /// the default [`ProxyOptions`].
    pub async fn start(api_addr: SocketAddr) -> Result<RunningProxy, ProxyError> {
        ProxyServer::start_with(api_addr, ProxyOptions::default()).await
    }

    /// Binds the HTTP API on `api_addr` and starts serving with `options`.
    pub async fn start_with(
        api_addr: SocketAddr,
        options: ProxyOptions,
    ) -> Result<RunningProxy, ProxyError> {
        let bind_error = |error| ProxyError::Bind {
            addr: api_addr.to_string(),
            error,
        };
        let metrics = Arc::new(ProxyMetrics::new(options.metrics).map_err(ProxyError::Metrics)?);
        let listener = TcpListener::bind(api_addr).await.map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let registry = Registry::new(options.upstreams, metrics.clone());
        let (control, control_task) = Control::start(registry);
        let (stop, stopped) = oneshot::channel::<()>();
        let served_metrics = (options.metrics.proxy || options.metrics.runtime).then_some(metrics);
        let app = api::router(control.clone(), served_metrics);
        let serve_task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "proxy API server failed");
            }
        });
        tracing::debug!(api = %bound, "proxy API listening");
        Ok(RunningProxy {
            api_addr: bound,
            control: Some(control),
            stop: Some(stop),
            serve_task: Some(serve_task),
            control_task: Some(control_task),
        })
    }
}

/// A running server. Dropping it aborts its tasks, which closes the API, every proxy listener
/// and every connection shortly after; [`RunningProxy::shutdown`] does it and waits.
pub struct RunningProxy {
    api_addr: SocketAddr,
    control: Option<Control>,
    stop: Option<oneshot::Sender<()>>,
    serve_task: Option<JoinHandle<()>>,
    control_task: Option<JoinHandle<()>>,
}

impl RunningProxy {
    /// The address the API is bound to.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The API's base URL, such as `http://127.0.0.1:8474`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Creates or replaces proxies from a populate body (a JSON array of proxies), as
    /// `POST /populate` does; the error of the first proxy that failed, if any.
    pub async fn populate(&self, body: Vec<u8>) -> Result<Vec<ProxyJson>, ApiError> {
        let control = self.control.as_ref().ok_or(ApiError::ShuttingDown)?;
        let (done, error) = control
            .run(move |r| Box::pin(async move { r.populate(&body).await }))
            .await?;
        match error {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Stops the API, then every proxy and connection, and waits until they are closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.serve_task.take()
            && tokio::time::timeout(API_DRAIN, &mut task).await.is_err()
        {
            task.abort();
        }
        // The API's handles on the control task are gone with the server; dropping the last
        // one makes the control task stop every proxy and end.
        self.control = None;
        if let Some(task) = self.control_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        for task in [self.serve_task.take(), self.control_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
