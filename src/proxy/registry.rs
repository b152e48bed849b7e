//! Every proxy of the server, and the operations of the API on them, with Toxiproxy's rules:
//! which checks come first, what a partial update keeps, what populate and reset do.
//!
//! Control plane: the registry is owned by the control task ([`super::control`]), which runs
//! one operation at a time, so operations may await (closing a proxy's connections) without
//! any lock. Each operation validates its input before it changes anything.

use std::collections::{BTreeMap, HashSet};

use super::entry::ProxyEntry;
use super::error::ApiError;
use super::input::{ProxyInput, new_toxic, parse_body, populate_list, toxic_update};
use super::model::{ProxyJson, ToxicJson};
use super::toxics::ToxicConfig;

/// The proxies, by name.
#[derive(Default)]
pub struct Registry {
    proxies: BTreeMap<String, ProxyEntry>,
    revision: u64,
}

impl Registry {
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

    /// `POST /proxies`: the duplicate check comes before any bind.
    pub fn create(&mut self, body: &[u8]) -> Result<ProxyJson, ApiError> {
        let input = ProxyInput::from_value(&parse_body(body)?)?;
        let name = input.required_name("")?;
        let upstream = input.required_upstream("")?;
        if self.proxies.contains_key(&name) {
            return Err(ApiError::ProxyAlreadyExists);
        }
        let mut entry = ProxyEntry::new(name.clone(), input.listen.unwrap_or_default(), upstream);
        if input.enabled.unwrap_or(true) {
            entry.start()?;
        }
        let json = entry.to_json();
        self.proxies.insert(name, entry);
        Ok(json)
    }

    /// `POST /populate`: validates every proxy first, then creates or replaces them in order;
    /// on a failure, returns what was done before it with the error.
    pub async fn populate(&mut self, body: &[u8]) -> (Vec<ProxyJson>, Option<ApiError>) {
        let inputs = match populate_list(body) {
            Ok(inputs) => inputs,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let mut checked = Vec::with_capacity(inputs.len());
        let mut names = HashSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let at = format!(" at proxy {}", i + 1);
            let name = match input.required_name(&at) {
                Ok(n) => n,
                Err(e) => return (Vec::new(), Some(e)),
            };
            let upstream = match input.required_upstream(&at) {
                Ok(u) => u,
                Err(e) => return (Vec::new(), Some(e)),
            };
            if !names.insert(name.clone()) {
                let e = ApiError::BadRequestBody(format!("duplicate proxy name {name:?}"));
                return (Vec::new(), Some(e));
            }
            let listen = input.listen.clone().unwrap_or_default();
            checked.push((name, listen, upstream, input.enabled.unwrap_or(true)));
        }
        let mut done = Vec::with_capacity(checked.len());
        for (name, listen, upstream, enabled) in checked {
            match self.add_or_replace(name, listen, upstream, enabled).await {
                Ok(json) => done.push(json),
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    /// Keeps a proxy that already has these addresses; replaces one that has others.
    async fn add_or_replace(
        &mut self,
        name: String,
        listen: String,
        upstream: String,
        enabled: bool,
    ) -> Result<ProxyJson, ApiError> {
        if let Some(existing) = self.proxies.get(&name) {
            if existing.listen() == listen && existing.upstream() == upstream {
                return Ok(existing.to_json());
            }
            if let Some(mut old) = self.proxies.remove(&name) {
                if let Some(listening) = old.stop() {
                    listening.shutdown().await;
                }
            }
        }
        let mut entry = ProxyEntry::new(name.clone(), listen, upstream);
        if enabled {
            entry.start()?;
        }
        let json = entry.to_json();
        self.proxies.insert(name, entry);
        Ok(json)
    }

    /// `POST|PATCH /proxies/{name}`: unnamed fields keep their values; a new address restarts
    /// the proxy; `enabled` starts or stops it (stopping closes every connection).
    pub async fn update(&mut self, name: &str, body: &[u8]) -> Result<ProxyJson, ApiError> {
        let entry = self.entry_mut(name)?;
        let input = ProxyInput::from_value(&parse_body(body)?)?;
        let listen = input.listen.unwrap_or_else(|| entry.listen().to_string());
        let upstream = input
            .upstream
            .unwrap_or_else(|| entry.upstream().to_string());
        let enabled = input.enabled.unwrap_or(entry.enabled());
        if listen != entry.listen() || upstream != entry.upstream() {
            if let Some(listening) = entry.stop() {
                listening.shutdown().await;
            }
            entry.set_addresses(listen, upstream);
        }
        if enabled && !entry.enabled() {
            entry.start()?;
        } else if !enabled {
            if let Some(listening) = entry.stop() {
                listening.shutdown().await;
            }
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
    pub fn reset(&mut self) -> Result<(), ApiError> {
        for entry in self.proxies.values_mut() {
            entry.start()?;
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
