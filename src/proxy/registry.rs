//! Every proxy of the server, and the operations of the API on them, with Toxiproxy's rules:
//! which checks come first, what a partial update keeps, what populate and reset do.
//!
//! Control plane: the registry is owned by the control task ([`super::control`]), which runs
//! one operation at a time, so operations may await (closing a proxy's connections) without
//! any lock. Each operation validates its input before it changes anything.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::addr;
use super::entry::ProxyEntry;
use super::error::ApiError;
use super::input::{ProxyInput, new_toxic, parse_body, populate_list, toxic_update};
use super::metrics::ProxyMetrics;
use super::model::{ProxyJson, ToxicJson};
use super::toxics::ToxicConfig;
use super::upstream::UpstreamPolicy;

/// The proxies, by name, and what every proxy shares: the upstream policy and the metrics.
pub struct Registry {
    proxies: BTreeMap<String, ProxyEntry>,
    revision: u64,
    policy: UpstreamPolicy,
    metrics: Arc<ProxyMetrics>,
}

/// Whether a proxy's listen address `current` should be kept when `wanted` is asked for:
/// the same text, or the same socket once resolved (as Toxiproxy's `Differs` resolves it).
async fn keeps_listen(current: &str, wanted: &str) -> Result<bool, ApiError> {
    if current == wanted {
        return Ok(true);
    }
    addr::same_listen(current, wanted)
        .await
        .map_err(ApiError::Address)
}

impl Registry {
    /// An empty registry whose proxies follow `policy` and count bytes in `metrics`.
    pub fn new(policy: UpstreamPolicy, metrics: Arc<ProxyMetrics>) -> Registry {
        Registry {
            proxies: BTreeMap::new(),
            revision: 0,
            policy,
            metrics,
        }
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn entry(&self, name: &str) -> Result<&ProxyEntry, ApiError> {
        self.proxies.get(name).ok_or(ApiError::ProxyNotFound)
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut ProxyEntry, ApiError> {
        self.proxies.get_mut(name).ok_or(ApiError::ProxyNotFound)
    }

    /// `GET /proxies`.
    pub fn list(&self) -> BTreeMap<String, ProxyJson> {
        self.proxies
            .iter()
            .map(|(name, p)| (name.clone(), p.to_json()))
            .collect()
    }

    /// `GET /proxies/{name}`.
    pub fn show(&self, name: &str) -> Result<ProxyJson, ApiError> {
        Ok(self.entry(name)?.to_json())
    }

    /// `POST /proxies`: the duplicate check comes before the upstream check and any bind.
    pub async fn create(&mut self, body: &[u8]) -> Result<ProxyJson, ApiError> {
        let input = ProxyInput::from_value(&parse_body(body)?)?;
        let name = input.required_name("")?;
        let upstream = input.required_upstream("")?;
        if self.proxies.contains_key(&name) {
            return Err(ApiError::ProxyAlreadyExists);
        }
        self.policy.check(&upstream).await?;
        let mut entry = ProxyEntry::new(name.clone(), input.listen.unwrap_or_default(), upstream);
        if input.enabled.unwrap_or(true) {
            entry.start(self.policy, &self.metrics).await?;
        }
        let json = entry.to_json();
        self.proxies.insert(name, entry);
        Ok(json)
    }

    /// `POST /populate`: validates every proxy first (fields, names, upstreams), then creates
    /// or replaces them in order; on a failure, returns what was done before it with the error.
    pub async fn populate(&mut self, body: &[u8]) -> (Vec<ProxyJson>, Option<ApiError>) {
        let checked = match self.check_populate(body).await {
            Ok(checked) => checked,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let mut done = Vec::with_capacity(checked.len());
        for (name, listen, upstream, enabled) in checked {
            match self.add_or_replace(name, listen, upstream, enabled).await {
                Ok(json) => done.push(json),
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    /// Populate's list, read and checked: `(name, listen, upstream, enabled)` per proxy.
    async fn check_populate(
        &self,
        body: &[u8],
    ) -> Result<Vec<(String, String, String, bool)>, ApiError> {
        let inputs = populate_list(body)?;
        let mut checked = Vec::with_capacity(inputs.len());
        let mut names = HashSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let at = format!(" at proxy {}", i + 1);
            let name = input.required_name(&at)?;
            let upstream = input.required_upstream(&at)?;
            if !names.insert(name.clone()) {
                return Err(ApiError::BadRequestBody(format!(
                    "duplicate proxy name {name:?}"
                )));
            }
            let listen = input.listen.clone().unwrap_or_default();
            checked.push((name, listen, upstream, input.enabled.unwrap_or(true)));
        }
        for (_, _, upstream, _) in &checked {
            self.policy.check(upstream).await?;
        }
        Ok(checked)
    }

    /// Keeps a proxy whose listen resolves to the same address and whose upstream is the
    /// same text (Toxiproxy's comparison), with its toxics, connections and enabled state;
    /// replaces one that differs.
    async fn add_or_replace(
        &mut self,
        name: String,
        listen: String,
        upstream: String,
        enabled: bool,
    ) -> Result<ProxyJson, ApiError> {
        if let Some(existing) = self.proxies.get(&name) {
            if existing.upstream() == upstream && keeps_listen(existing.listen(), &listen).await? {
                return Ok(existing.to_json());
            }
            if let Some(mut old) = self.proxies.remove(&name)
                && let Some(listening) = old.stop()
            {
                listening.shutdown().await;
            }
        }
        let mut entry = ProxyEntry::new(name.clone(), listen, upstream);
        if enabled {
            entry.start(self.policy, &self.metrics).await?;
        }
        let json = entry.to_json();
        self.proxies.insert(name, entry);
        Ok(json)
    }

    /// `POST|PATCH /proxies/{name}`: unnamed fields keep their values; a listen address that
    /// resolves elsewhere or a new upstream restarts the proxy; `enabled` starts or stops it
    /// (stopping closes every connection).
    pub async fn update(&mut self, name: &str, body: &[u8]) -> Result<ProxyJson, ApiError> {
        let (policy, metrics) = (self.policy, self.metrics.clone());
        let entry = self.proxies.get_mut(name).ok_or(ApiError::ProxyNotFound)?;
        let input = ProxyInput::from_value(&parse_body(body)?)?;
        let enabled = input.enabled.unwrap_or(entry.enabled());
        let upstream = input
            .upstream
            .unwrap_or_else(|| entry.upstream().to_string());
        let new_upstream = upstream != entry.upstream();
        if new_upstream {
            policy.check(&upstream).await?;
        }
        let new_listen = match input.listen {
            Some(listen) if !keeps_listen(entry.listen(), &listen).await? => Some(listen),
            _ => None,
        };
        if new_upstream || new_listen.is_some() {
            if let Some(listening) = entry.stop() {
                listening.shutdown().await;
            }
            let listen = new_listen.unwrap_or_else(|| entry.listen().to_string());
            entry.set_addresses(listen, upstream);
        }
        if enabled && !entry.enabled() {
            entry.start(policy, &metrics).await?;
        } else if !enabled && let Some(listening) = entry.stop() {
            listening.shutdown().await;
        }
        Ok(entry.to_json())
    }

    /// `DELETE /proxies/{name}`: closes the listener and every connection.
    pub async fn delete(&mut self, name: &str) -> Result<(), ApiError> {
        let mut entry = self.proxies.remove(name).ok_or(ApiError::ProxyNotFound)?;
        if let Some(listening) = entry.stop() {
            listening.shutdown().await;
        }
        Ok(())
    }

    /// `POST /reset`: enables every proxy and removes every toxic; stops at the first proxy
    /// that cannot listen, as Toxiproxy does.
    pub async fn reset(&mut self) -> Result<(), ApiError> {
        for entry in self.proxies.values_mut() {
            entry.start(self.policy, &self.metrics).await?;
            entry.clear_toxics();
        }
        Ok(())
    }

    /// Stops every proxy (server shutdown).
    pub async fn shutdown(&mut self) {
        for entry in self.proxies.values_mut() {
            if let Some(listening) = entry.stop() {
                listening.shutdown().await;
            }
        }
    }

    /// `GET /proxies/{name}/toxics`.
    pub fn toxics(&self, proxy: &str) -> Result<Vec<ToxicJson>, ApiError> {
        Ok(self.entry(proxy)?.toxics_json())
    }

    /// `POST /proxies/{name}/toxics`.
    pub fn add_toxic(&mut self, proxy: &str, body: &[u8]) -> Result<ToxicJson, ApiError> {
        let revision = self.next_revision();
        let entry = self.entry_mut(proxy)?;
        let (new, attributes) = new_toxic(body)?;
        if entry.toxic(&new.name).is_some() {
            return Err(ApiError::ToxicAlreadyExists);
        }
        let mut kind = new.kind;
        kind.merge(&attributes)
            .map_err(|e| ApiError::BadRequestBody(e.to_string()))?;
        Ok(entry.add_toxic(ToxicConfig {
            name: new.name,
            kind,
            stream: new.stream,
            toxicity: new.toxicity,
            revision,
        }))
    }

    /// `GET /proxies/{name}/toxics/{toxic}`.
    pub fn show_toxic(&self, proxy: &str, toxic: &str) -> Result<ToxicJson, ApiError> {
        let entry = self.entry(proxy)?;
        entry.toxic(toxic).ok_or(ApiError::ToxicNotFound)?;
        entry
            .toxics_json()
            .into_iter()
            .find(|t| t.name == toxic)
            .ok_or(ApiError::ToxicNotFound)
    }

    /// `POST|PATCH /proxies/{name}/toxics/{toxic}`: new attributes or toxicity; live
    /// connections pick them up without losing data.
    pub fn update_toxic(
        &mut self,
        proxy: &str,
        toxic: &str,
        body: &[u8],
    ) -> Result<ToxicJson, ApiError> {
        let revision = self.next_revision();
        let entry = self.entry_mut(proxy)?;
        let current = entry.toxic(toxic).ok_or(ApiError::ToxicNotFound)?;
        let mut kind = current.kind;
        let mut toxicity = current.toxicity;
        toxic_update(body, &mut kind, &mut toxicity)?;
        let updated = ToxicConfig {
            name: current.name.clone(),
            kind,
            stream: current.stream,
            toxicity,
            revision,
        };
        Ok(entry.replace_toxic(updated))
    }

    /// `DELETE /proxies/{name}/toxics/{toxic}`.
    pub fn remove_toxic(&mut self, proxy: &str, toxic: &str) -> Result<(), ApiError> {
        if self.entry_mut(proxy)?.remove_toxic(toxic) {
            Ok(())
        } else {
            Err(ApiError::ToxicNotFound)
        }
    }
}
