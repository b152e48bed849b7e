//! [`FaultDriver`]: the async face of the fault driver, for the scenario runner and the lab.
//!
//! Control plane: each call runs one [`Session`] (a fresh blocking `toxiproxy_rust` client,
//! the change, the read-back) on `spawn_blocking`, inside `catch_unwind`, so the async runtime
//! never blocks and a panicking client becomes a [`FaultError::Panicked`].

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::proxy::model::{ProxyJson, ToxicJson};

use super::LAB_PROXIES;
use super::error::FaultError;
use super::session::Session;
use super::spec::{ProxySpec, ToxicSpec};

/// Talks to one Toxiproxy (real, or `caplab proxy`) at an API address.
#[derive(Debug, Clone)]
pub struct FaultDriver {
    api: String,
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl FaultDriver {
    /// A driver for the API at `api`: `host:port`, or `http://host:port` (a trailing `/` is
    /// fine). Nothing is contacted until the first call.
    pub fn new(api: &str) -> Result<FaultDriver, FaultError> {
        let invalid = |reason: &str| FaultError::InvalidAddress {
            api: api.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = api.trim();
        let bare = trimmed
            .strip_prefix("http://")
            .unwrap_or(trimmed)
            .trim_end_matches('/');
        if trimmed.starts_with("https://") {
            return Err(invalid(
                "Toxiproxy's API is plain HTTP; use http://host:port",
            ));
        }
        let (host, port) = bare
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected host:port"))?;
        if host.is_empty() || host.contains('/') {
            return Err(invalid("expected host:port"));
        }
        port.parse::<u16>()
            .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
        Ok(FaultDriver {
            api: bare.to_string(),
        })
    }

    /// The API address, `host:port`.
    pub fn api(&self) -> &str {
        &self.api
    }

    async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, FaultError>
    where
        T: Send + 'static,
        F: FnOnce(&Session) -> Result<T, FaultError> + Send + 'static,
    {
        let api = self.api.clone();
        let joined = tokio::task::spawn_blocking(move || {
            catch_unwind(AssertUnwindSafe(|| {
                let session = Session::open(&api)?;
                f(&session)
            }))
            .unwrap_or_else(|payload| {
                Err(FaultError::Panicked {
                    api: api.clone(),
                    op: op.to_string(),
                    message: panic_message(payload),
                })
            })
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(FaultError::Task {
                op: op.to_string(),
                reason: e.to_string(),
            })
        })
    }

    /// The server's version.
    pub async fn version(&self) -> Result<String, FaultError> {
        self.call("version", |s| s.version()).await
    }

    /// Waits until the API answers (for a server just started), up to `timeout`.
    pub async fn wait_until_up(&self, timeout: Duration) -> Result<String, FaultError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.version().await {
                Ok(v) => return Ok(v),
                Err(e @ FaultError::Unreachable { .. })
                    if tokio::time::Instant::now() >= deadline =>
                {
                    return Err(e);
                }
                Err(FaultError::Unreachable { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every proxy with its toxics.
    pub async fn proxies(&self) -> Result<BTreeMap<String, ProxyJson>, FaultError> {
        self.call("list proxies", |s| s.proxies()).await
    }

    /// One proxy with its toxics.
    pub async fn proxy(&self, name: &str) -> Result<ProxyJson, FaultError> {
        let name = name.to_string();
        self.call("show proxy", move |s| s.proxy(&name)).await
    }

    /// Creates the proxies that are missing (or have other addresses) and checks that each
    /// now exists as asked and is enabled. Proxies that already match keep their toxics.
    pub async fn ensure_proxies(&self, specs: &[ProxySpec]) -> Result<Vec<ProxyJson>, FaultError> {
        let specs = specs.to_vec();
        self.call("populate", move |s| s.populate(&specs)).await
    }

    /// [`FaultDriver::ensure_proxies`] for the lab: exactly the five of [`LAB_PROXIES`].
    pub async fn ensure_lab_proxies(
        &self,
        specs: &[ProxySpec],
    ) -> Result<Vec<ProxyJson>, FaultError> {
        let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        let mut want = LAB_PROXIES.to_vec();
        want.sort_unstable();
        if names != want {
            return Err(FaultError::InvalidSpec {
                what: "lab proxies".into(),
                reason: format!("expected exactly {LAB_PROXIES:?}, got {names:?}"),
            });
        }
        self.ensure_proxies(specs).await
    }

    /// Enables (`true`) or disables a proxy; disabling closes its listener and connections.
    pub async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<ProxyJson, FaultError> {
        let proxy = proxy.to_string();
        self.call("set enabled", move |s| s.set_enabled(&proxy, enabled))
            .await
    }

    /// Adds a toxic (named `<type>_<stream>`).
    pub async fn add_toxic(&self, proxy: &str, toxic: ToxicSpec) -> Result<ToxicJson, FaultError> {
        let proxy = proxy.to_string();
        self.call("add toxic", move |s| s.add_toxic(&proxy, &toxic))
            .await
    }

    /// Changes an existing toxic's attributes and toxicity.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        toxic: ToxicSpec,
    ) -> Result<ToxicJson, FaultError> {
        let proxy = proxy.to_string();
        self.call("update toxic", move |s| s.update_toxic(&proxy, &toxic))
            .await
    }

    /// Adds the toxic, or updates the one of the same name.
    pub async fn set_toxic(&self, proxy: &str, toxic: ToxicSpec) -> Result<ToxicJson, FaultError> {
        let proxy = proxy.to_string();
        self.call("set toxic", move |s| s.set_toxic(&proxy, &toxic))
            .await
    }

    /// Removes a toxic by name (see [`ToxicSpec::name`]); an absent one is fine.
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        let (proxy, toxic) = (proxy.to_string(), toxic.to_string());
        self.call("remove toxic", move |s| s.remove_toxic(&proxy, &toxic))
            .await
    }

    /// Enables every proxy and removes every toxic.
    pub async fn reset(&self) -> Result<(), FaultError> {
        self.call("reset", |s| s.reset()).await
    }

    /// Deletes a proxy.
    pub async fn delete_proxy(&self, proxy: &str) -> Result<(), FaultError> {
        let proxy = proxy.to_string();
        self.call("delete proxy", move |s| s.delete_proxy(&proxy))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn addresses_are_checked_up_front() -> TestResult {
        assert_eq!(
            FaultDriver::new("http://127.0.0.1:8474/")?.api(),
            "127.0.0.1:8474"
        );
        assert_eq!(FaultDriver::new("localhost:8474")?.api(), "localhost:8474");
        for bad in [
            "",
            "8474",
            "https://x:1",
            "host:port",
            "http://h:1/path:2",
            ":80",
        ] {
            assert!(
                matches!(
                    FaultDriver::new(bad),
                    Err(FaultError::InvalidAddress { .. })
                ),
                "{bad}"
            );
        }
        Ok(())
    }
}
