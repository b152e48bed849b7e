//! One blocking conversation with a Toxiproxy: a fresh `toxiproxy_rust` client, the change,
//! and the read-back that confirms it.
//!
//! Control plane, off the async runtime: [`super::FaultDriver`] runs each [`Session`] call on
//! `spawn_blocking` inside `catch_unwind`, because `toxiproxy_rust` blocks, panics on some
//! failures and does not check HTTP status. Every change here is confirmed by reading the proxy
//! back; a state that does not match is [`FaultError::UnexpectedState`]. The few calls the
//! client cannot make are plain HTTP (`Session::http`), each saying why.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::{Proxy, ProxyPack};

use crate::proxy::ErrorBody;
use crate::proxy::model::{ProxyJson, ToxicJson, ToxicKind};

use super::error::FaultError;
use super::spec::{ProxySpec, ToxicSpec};

/// How long the reachability probe waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a plain HTTP call may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to one Toxiproxy API for one driver call.
pub struct Session {
    api: String,
    addr: SocketAddr,
    client: Client,
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit(':').next().and_then(|p| p.parse().ok())
}

fn toxic_json(pack: &toxiproxy_rust::toxic::ToxicPack) -> ToxicJson {
    ToxicJson {
        name: pack.name.clone(),
        kind: pack.r#type.clone(),
        stream: pack.stream.clone(),
        toxicity: pack.toxicity,
        attributes: pack
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(*v)))
            .collect(),
    }
}

fn proxy_json(pack: &ProxyPack) -> ProxyJson {
    ProxyJson {
        name: pack.name.clone(),
        listen: pack.listen.clone(),
        upstream: pack.upstream.clone(),
        enabled: pack.enabled,
        toxics: pack.toxics.iter().map(toxic_json).collect(),
    }
}

/// Whether a toxic read back is the one asked for.
fn matches(toxic: &ToxicJson, spec: &ToxicSpec) -> bool {
    toxic.kind == spec.kind.type_name()
        && toxic.stream == spec.stream.as_str()
        && (toxic.toxicity - spec.toxicity).abs() < 1e-6
        && spec.kind.fields().iter().all(|(name, value)| {
            toxic.attributes.get(*name).and_then(Value::as_i64) == Some(*value)
        })
}

impl Session {
    /// Resolves `api` (`host:port`), checks that something listens there, and makes a fresh
    /// client.
    pub fn open(api: &str) -> Result<Session, FaultError> {
        let unreachable = |reason: String| FaultError::Unreachable {
            api: api.to_string(),
            reason,
        };
        let addr = api
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve it: {e}")))?
            .next()
            .ok_or_else(|| unreachable("it resolves to no address".into()))?;
        TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
            .map_err(|e| unreachable(format!("cannot connect to {addr}: {e}")))?;
        Ok(Session {
            api: api.to_string(),
            addr,
            client: Client::new(addr),
        })
    }

    fn client_error(&self, op: &str, message: String) -> FaultError {
        FaultError::Client {
            api: self.api.clone(),
            op: op.to_string(),
            message,
        }
    }

    fn unexpected(&self, op: &str, what: String) -> FaultError {
        FaultError::UnexpectedState {
            api: self.api.clone(),
            op: op.to_string(),
            what,
        }
    }

    /// A plain HTTP call, for what `toxiproxy_rust` cannot do; checks the status.
    fn http(
        &self,
        op: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(), FaultError> {
        // HTTP/1.1 only: Toxiproxy's API is plain HTTP, and this keeps reqwest 0.11's h2 0.3
        // (RUSTSEC-2026-0258) out of every request (see the README's security notes).
        let http = reqwest::blocking::Client::builder()
            .http1_only()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| self.client_error(op, e.to_string()))?;
        let mut request = http.request(method, format!("http://{}{path}", self.addr));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .map_err(|e| self.client_error(op, e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text).map_or(text, |b| b.error);
        Err(FaultError::Rejected {
            api: self.api.clone(),
            op: op.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    /// `GET /version`.
    pub fn version(&self) -> Result<String, FaultError> {
        let body = self
            .client
            .version()
            .map_err(|e| self.client_error("version", e))?;
        Ok(serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string()))
    }

    /// Every proxy with its toxics.
    pub fn proxies(&self) -> Result<BTreeMap<String, ProxyJson>, FaultError> {
        let all = self
            .client
            .all()
            .map_err(|e| self.client_error("list proxies", e))?;
        Ok(all
            .into_iter()
            .map(|(name, p)| (name, proxy_json(&p.proxy_pack)))
            .collect())
    }

    /// One proxy with its toxics.
    pub fn proxy(&self, name: &str) -> Result<ProxyJson, FaultError> {
        self.proxies()?
            .remove(name)
            .ok_or_else(|| FaultError::ProxyNotFound {
                api: self.api.clone(),
                proxy: name.to_string(),
            })
    }

    fn find(&self, name: &str) -> Result<Proxy, FaultError> {
        match self.client.find_proxy(name) {
            Ok(p) => Ok(p),
            // The client reads a 404's error body as a proxy and fails to parse it.
            Err(message) => match self.proxy(name) {
                Ok(_) => Err(self.client_error("find proxy", message)),
                Err(e) => Err(e),
            },
        }
    }

    /// Creates the proxies that are missing or differ (`POST /populate`), then checks each.
    pub fn populate(&self, specs: &[ProxySpec]) -> Result<Vec<ProxyJson>, FaultError> {
        let packs = specs
            .iter()
            .map(|s| ProxyPack::new(s.name.clone(), s.listen.clone(), s.upstream.clone()))
            .collect();
        let sent = self.client.populate(packs);
        let said = sent
            .err()
            .map(|e| format!(" (populate said: {e})"))
            .unwrap_or_default();
        let mut now = self.proxies()?;
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let Some(p) = now.remove(&spec.name) else {
                return Err(
                    self.unexpected("populate", format!("proxy {} is missing{said}", spec.name))
                );
            };
            let want_port = port_of(&spec.listen).filter(|p| *p != 0);
            if p.upstream != spec.upstream
                || !p.enabled
                || (want_port.is_some() && port_of(&p.listen) != want_port)
            {
                return Err(self.unexpected(
                    "populate",
                    format!(
                        "proxy {} is listen {} upstream {} enabled {}, not listen {} upstream {} enabled{said}",
                        spec.name, p.listen, p.upstream, p.enabled, spec.listen, spec.upstream
                    ),
                ));
            }
            out.push(p);
        }
        Ok(out)
    }

    /// Enables or disables a proxy; disabling closes its connections.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<ProxyJson, FaultError> {
        let proxy = self.find(name)?;
        let sent = if enabled {
            proxy.enable()
        } else {
            proxy.disable()
        };
        let now = self.proxy(name)?;
        if now.enabled != enabled {
            let said = sent
                .err()
                .map(|e| format!(" (the call said: {e})"))
                .unwrap_or_default();
            let state = if now.enabled { "enabled" } else { "disabled" };
            let op = if enabled { "enable" } else { "disable" };
            return Err(self.unexpected(op, format!("proxy {name} is still {state}{said}")));
        }
        Ok(now)
    }

    fn confirm_toxic(
        &self,
        op: &str,
        proxy: &str,
        spec: &ToxicSpec,
    ) -> Result<ToxicJson, FaultError> {
        let name = spec.name();
        let now = self.proxy(proxy)?;
        match now.toxics.into_iter().find(|t| t.name == name) {
            Some(t) if matches(&t, spec) => Ok(t),
            Some(t) => Err(self.unexpected(
                op,
                format!(
                    "toxic {name} on {proxy} is {} {} toxicity {} {:?}, not as asked",
                    t.kind, t.stream, t.toxicity, t.attributes
                ),
            )),
            None => Err(self.unexpected(op, format!("toxic {name} is not on proxy {proxy}"))),
        }
    }

    /// Adds a toxic named `<type>_<stream>`.
    pub fn add_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<ToxicJson, FaultError> {
        spec.validate()?;
        let p = self.find(proxy)?;
        let stream = spec.stream.as_str().to_string();
        let (t, a) = (spec.toxicity, |n| spec.attr(n));
        match spec.kind {
            ToxicKind::Latency { .. } => drop(p.with_latency(stream, a("latency"), a("jitter"), t)),
            ToxicKind::Bandwidth { .. } => drop(p.with_bandwidth(stream, a("rate"), t)),
            ToxicKind::SlowClose { .. } => drop(p.with_slow_close(stream, a("delay"), t)),
            ToxicKind::Timeout { .. } => drop(p.with_timeout(stream, a("timeout"), t)),
            ToxicKind::Slicer { .. } => drop(p.with_slicer(
                stream,
                a("average_size"),
                a("size_variation"),
                a("delay"),
                t,
            )),
            ToxicKind::LimitData { .. } => drop(p.with_limit_data(stream, a("bytes"), t)),
            // Plain HTTP: toxiproxy_rust 0.1.6 has no helper for these types.
            ToxicKind::ResetPeer { .. } | ToxicKind::Noop => self.http(
                "add toxic",
                reqwest::Method::POST,
                &format!("/proxies/{proxy}/toxics"),
                Some(json!({
                    "name": spec.name(),
                    "type": spec.kind.type_name(),
                    "stream": spec.stream.as_str(),
                    "toxicity": spec.toxicity,
                    "attributes": spec.kind.attributes(),
                })),
            )?,
        }
        self.confirm_toxic("add toxic", proxy, spec)
    }

    /// Changes the attributes and toxicity of the toxic `<type>_<stream>`.
    pub fn update_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<ToxicJson, FaultError> {
        spec.validate()?;
        self.find(proxy)?;
        // Plain HTTP: toxiproxy_rust 0.1.6 cannot update a toxic. POST rather than PATCH,
        // which every Toxiproxy 2.x accepts.
        self.http(
            "update toxic",
            reqwest::Method::POST,
            &format!("/proxies/{proxy}/toxics/{}", spec.name()),
            Some(json!({"attributes": spec.kind.attributes(), "toxicity": spec.toxicity})),
        )?;
        self.confirm_toxic("update toxic", proxy, spec)
    }

    /// Adds the toxic, or updates it if the proxy has one of that name.
    pub fn set_toxic(&self, proxy: &str, spec: &ToxicSpec) -> Result<ToxicJson, FaultError> {
        let exists = self
            .proxy(proxy)?
            .toxics
            .iter()
            .any(|t| t.name == spec.name());
        if exists {
            self.update_toxic(proxy, spec)
        } else {
            self.add_toxic(proxy, spec)
        }
    }

    /// Removes a toxic; one already absent is fine.
    pub fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        self.find(proxy)?;
        // Plain HTTP: toxiproxy_rust 0.1.6 can only delete all toxics of a proxy.
        let sent = self.http(
            "remove toxic",
            reqwest::Method::DELETE,
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            None,
        );
        match sent {
            Ok(()) | Err(FaultError::Rejected { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        if self.proxy(proxy)?.toxics.iter().any(|t| t.name == toxic) {
            return Err(
                self.unexpected("remove toxic", format!("toxic {toxic} is still on {proxy}"))
            );
        }
        Ok(())
    }

    /// `POST /reset`: every proxy enabled, every toxic gone.
    pub fn reset(&self) -> Result<(), FaultError> {
        let sent = self.client.reset();
        let said = sent
            .err()
            .map(|e| format!(" (reset said: {e})"))
            .unwrap_or_default();
        for (name, p) in self.proxies()? {
            if !p.enabled || !p.toxics.is_empty() {
                return Err(self.unexpected(
                    "reset",
                    format!(
                        "proxy {name} is enabled {} with {} toxics{said}",
                        p.enabled,
                        p.toxics.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Deletes a proxy (and closes its connections).
    pub fn delete_proxy(&self, name: &str) -> Result<(), FaultError> {
        let proxy = self.find(name)?;
        let sent = proxy.delete();
        if self.proxies()?.contains_key(name) {
            let said = sent
                .err()
                .map(|e| format!(" (delete said: {e})"))
                .unwrap_or_default();
            return Err(self.unexpected("delete proxy", format!("proxy {name} still exists{said}")));
        }
        Ok(())
    }
}
