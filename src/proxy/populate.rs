//! `caplab proxy --config populate.json`: proxies created at start from a file in the format of
//! Toxiproxy's `POST /populate` body (and its `-config` flag), a JSON array such as
//! `[{"name": "g1", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379"}]`.
//!
//! Control plane, start-up only. Unlike Toxiproxy, which logs a bad file and starts empty, a
//! file that cannot be read or applied stops the start with an error naming it: a lab that
//! silently lacks its proxies is worse than one that does not start.

use std::path::Path;

use super::ProxyError;
use super::model::ProxyJson;
use super::server::RunningProxy;

/// Creates the proxies listed in the file at `path`.
pub async fn from_file(server: &RunningProxy, path: &Path) -> Result<Vec<ProxyJson>, ProxyError> {
    let body = tokio::fs::read(path)
        .await
        .map_err(|error| ProxyError::ConfigRead {
            path: path.to_path_buf(),
            error,
        })?;
    server
        .populate(body)
        .await
        .map_err(|error| ProxyError::ConfigApply {
            path: path.to_path_buf(),
            error,
        })
}
