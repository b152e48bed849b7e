//! The demo's load: a few concurrent client loops per personality, each reading and writing a
//! handful of keys over HTTP, and a recorder that keeps what each operation saw.
//!
//! Client side of the data path: it talks to app_cp and app_ap exactly as a user would. A
//! read is *stale* when it returns an older version than a write of the same key that was
//! acknowledged (200) before the read began; its age is how long before the read the first
//! such newer write was acknowledged. Each phase writes its own keys (`demo-<mode>-p<phase>-<n>`;
//! the split brain new ones every half second), so a key the deposed primary took in the split
//! brain is not written again afterwards and
//! reading it back at the end shows whether its acknowledged value survived ([`lost_writes`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which personality an operation went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// app_cp.
    Cp,
    /// app_ap.
    Ap,
}

impl Target {
    /// `cp` or `ap`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Cp => "cp",
            Target::Ap => "ap",
        }
    }
}

/// What one operation saw.
#[derive(Debug, Clone)]
pub struct Op {
    /// Where it went.
    pub target: Target,
    /// A write (else a read).
    pub write: bool,
    /// When it was sent.
    pub invoked: Instant,
    /// How long the answer took.
    pub latency: Duration,
    /// Answered with success: 200 (or 404 for a read, 202 for a queued AP write).
    pub ok: bool,
    /// For a stale read: how long before the read the first newer write was acknowledged.
    pub stale_age: Option<Duration>,
    /// For a successful read: the `staleness_ms` the answer reported.
    pub reported_staleness_ms: Option<u64>,
}

/// Acknowledged versions per key, in acknowledgement order.
type Acked = HashMap<String, Vec<(u64, Instant)>>;

/// One write the load sent.
#[derive(Debug, Clone)]
pub struct Written {
    /// Where it went.
    pub target: Target,
    /// Its key.
    pub key: String,
    /// Its value (unique per personality).
    pub value: String,
    /// When it was sent.
    pub invoked: Instant,
    /// When it was acknowledged (200), if it was.
    pub acked: Option<Instant>,
}

/// Everything the load recorded. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    ops: Arc<Mutex<Vec<Op>>>,
    acked: Arc<Mutex<Acked>>,
    writes: Arc<Mutex<Vec<Written>>>,
}

impl Recorder {
    /// Every operation so far.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().map(|ops| ops.clone()).unwrap_or_default()
    }

    /// Every write so far.
    pub fn writes(&self) -> Vec<Written> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Takes every operation recorded so far, forgets the writes kept for the lost-writes
    /// count, and forgets acknowledgements older than
    /// `forget_acks_before` except each key's newest: a loop that runs for hours (the
    /// console's traffic switch) then keeps a bounded recorder. A read is still found stale
    /// against any newer acknowledgement kept.
    pub fn drain(&self, forget_acks_before: Instant) -> Vec<Op> {
        if let Ok(mut acked) = self.acked.lock() {
            for acks in acked.values_mut() {
                let newest = acks.iter().map(|(v, _)| *v).max();
                acks.retain(|(v, at)| *at >= forget_acks_before || Some(*v) == newest);
            }
        }
        if let Ok(mut writes) = self.writes.lock() {
            writes.clear();
        }
        self.ops
            .lock()
            .map(|mut ops| std::mem::take(&mut *ops))
            .unwrap_or_default()
    }

    fn push(&self, op: Op) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op);
        }
    }

    fn ack(&self, key: &str, version: u64, at: Instant) {
        if let Ok(mut acked) = self.acked.lock() {
            acked
                .entry(key.to_string())
                .or_default()
                .push((version, at));
        }
    }

    /// The age of a read of `key` that began at `invoked` and saw `version` (0 = missing),
    /// if a newer write had been acknowledged before it began.
    fn stale_age(&self, key: &str, version: u64, invoked: Instant) -> Option<Duration> {
        let acked = self.acked.lock().ok()?;
        let first_newer = acked
            .get(key)?
            .iter()
            .filter(|(v, at)| *v > version && *at < invoked)
            .map(|(_, at)| *at)
            .min()?;
        Some(invoked - first_newer)
    }
}

/// The load's shape.
#[derive(Debug, Clone)]
pub struct LoadShape {
    /// Client loops per personality.
    pub workers: usize,
    /// Keys per personality.
    pub keys: usize,
    /// Pause between two operations of one loop.
    pub pause: Duration,
}

/// Starts `shape.workers` loops against `url`; they run until `stop` is set, on the keys
/// named by the number `phase` holds (`1000 * phase index`, plus a slice within the split
/// brain).
pub fn spawn_load(
    target: Target,
    url: String,
    shape: &LoadShape,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        // ok: building fails only if the TLS backend cannot start.
        .unwrap_or_default();
    let counter = Arc::new(AtomicU64::new(0));
    (0..shape.workers)
        .map(|_| {
            let (client, url, recorder, stop, counter, phase) = (
                client.clone(),
                url.clone(),
                recorder.clone(),
                stop.clone(),
                counter.clone(),
                phase.clone(),
            );
            let (keys, pause) = (shape.keys.max(1), shape.pause);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let key = format!(
                        "demo-{}-p{}-{}",
                        target.name(),
                        phase.load(Ordering::Relaxed),
                        rand::random_range(0..keys)
                    );
                    let op = if rand::random_bool(0.5) {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        write(&client, &url, target, &key, n, &recorder).await
                    } else {
                        read(&client, &url, target, &key, &recorder).await
                    };
                    recorder.push(op);
                    tokio::time::sleep(pause).await;
                }
            })
        })
        .collect()
}

/// Sends one request: its status (0 when no answer came) and its JSON body, if it had one.
async fn send(request: reqwest::RequestBuilder) -> (u16, Option<serde_json::Value>) {
    match request.send().await {
        Ok(resp) => (
            resp.status().as_u16(),
            resp.json::<serde_json::Value>().await.ok(),
        ),
        Err(_) => (0, None),
    }
}

async fn write(
    client: &reqwest::Client,
    url: &str,
    target: Target,
    key: &str,
    n: u64,
    recorder: &Recorder,
) -> Op {
    let invoked = Instant::now();
    let (status, body) = send(client.post(format!("{url}/write/{key}/v{n}"))).await;
    let latency = invoked.elapsed();
    let now = Instant::now();
    if status == 200
        && let Some(version) = body.as_ref().and_then(|b| b["version"].as_u64())
    {
        recorder.ack(key, version, now);
    }
    if let Ok(mut writes) = recorder.writes.lock() {
        writes.push(Written {
            target,
            key: key.to_string(),
            value: format!("v{n}"),
            invoked,
            acked: (status == 200).then_some(now),
        });
    }
    Op {
        target,
        write: true,
        invoked,
        latency,
        ok: status == 200 || status == 202,
        stale_age: None,
        reported_staleness_ms: None,
    }
}

async fn read(
    client: &reqwest::Client,
    url: &str,
    target: Target,
    key: &str,
    recorder: &Recorder,
) -> Op {
    let invoked = Instant::now();
    let (status, body) = send(client.get(format!("{url}/read/{key}"))).await;
    let latency = invoked.elapsed();
    let seen = match status {
        200 => body.as_ref().and_then(|b| b["version"].as_u64()),
        404 => Some(0),
        _ => None,
    };
    Op {
        target,
        write: false,
        invoked,
        latency,
        ok: seen.is_some(),
        stale_age: seen.and_then(|v| recorder.stale_age(key, v, invoked)),
        reported_staleness_ms: body.as_ref().and_then(|b| b["staleness_ms"].as_u64()),
    }
}

/// The acknowledged writes the final state does not reflect. `final_value` gives each key's
/// value read back at the end (`Some(None)`: absent; `None`: could not be read, so its writes
/// are not judged). Values are unique, so the final value names the write it came from; an
/// acknowledged write is lost when it is not that write and began after that write had
/// certainly finished (acknowledged before it was sent): no order of the two ends with the
/// final value. A final value written by an unacknowledged write may have landed any time, and
/// an absent key loses every acknowledged write to it.
pub fn lost_writes(
    writes: &[Written],
    final_value: impl Fn(Target, &str) -> Option<Option<String>>,
) -> Vec<&Written> {
    writes
        .iter()
        .filter(|w| {
            if w.acked.is_none() {
                return false;
            }
            match final_value(w.target, &w.key) {
                None => false,
                Some(None) => true,
                Some(Some(v)) if v == w.value => false,
                Some(Some(v)) => writes
                    .iter()
                    .find(|s| s.target == w.target && s.key == w.key && s.value == v)
                    .is_none_or(|s| s.acked.is_some_and(|end| end < w.invoked)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_older_than_an_earlier_ack_is_stale_by_the_first_newer_ack() {
        let recorder = Recorder::default();
        let t0 = Instant::now();
        recorder.ack("k", 1, t0);
        recorder.ack("k", 2, t0 + Duration::from_millis(10));
        recorder.ack("k", 3, t0 + Duration::from_millis(30));
        let read_at = t0 + Duration::from_millis(50);
        assert_eq!(recorder.stale_age("k", 3, read_at), None);
        assert_eq!(
            recorder.stale_age("k", 2, read_at),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            recorder.stale_age("k", 1, read_at),
            Some(Duration::from_millis(40))
        );
        assert_eq!(
            recorder.stale_age("k", 0, read_at),
            Some(Duration::from_millis(50))
        );
        // A write acknowledged after the read began does not make it stale.
        assert_eq!(
            recorder.stale_age("k", 2, t0 + Duration::from_millis(20)),
            None
        );
        assert_eq!(recorder.stale_age("other", 0, read_at), None);
    }

    #[test]
    fn an_acknowledged_write_is_lost_when_the_final_value_came_from_an_earlier_write() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let w = |key: &str, value: &str, invoked: u64, acked: Option<u64>| Written {
            target: Target::Ap,
            key: key.into(),
            value: value.into(),
            invoked: at(invoked),
            acked: acked.map(at),
        };
        let writes = [
            w("a", "v1", 0, Some(10)),
            w("a", "v2", 20, Some(30)), // lost: the final v1 finished before it began
            w("b", "v3", 0, Some(10)),
            w("b", "v4", 5, Some(15)), // overlaps v3, which may have landed last: kept
            w("c", "v5", 0, Some(10)), // the key is gone: lost
            w("d", "v6", 0, None),     // never acknowledged: nothing promised
            w("e", "v7", 0, Some(10)), // the key could not be read back: not judged
        ];
        let finals = |_: Target, key: &str| match key {
            "a" => Some(Some("v1".to_string())),
            "b" => Some(Some("v3".to_string())),
            "c" | "d" => Some(None),
            _ => None,
        };
        let lost: Vec<&str> = lost_writes(&writes, finals)
            .iter()
            .map(|w| w.value.as_str())
            .collect();
        assert_eq!(lost, ["v2", "v5"]);
    }

    #[test]
    fn drain_takes_the_ops_and_keeps_each_keys_newest_ack() {
        let recorder = Recorder::default();
        let t0 = Instant::now();
        recorder.ack("k", 1, t0);
        recorder.ack("k", 2, t0 + Duration::from_millis(10));
        recorder.push(Op {
            target: Target::Ap,
            write: false,
            invoked: t0,
            latency: Duration::ZERO,
            ok: true,
            stale_age: None,
            reported_staleness_ms: None,
        });
        if let Ok(mut writes) = recorder.writes.lock() {
            writes.push(Written {
                target: Target::Ap,
                key: "k".into(),
                value: "v2".into(),
                invoked: t0,
                acked: Some(t0),
            });
        }
        assert_eq!(recorder.drain(t0 + Duration::from_secs(1)).len(), 1);
        assert!(recorder.ops().is_empty());
        assert!(
            recorder.writes().is_empty(),
            "a long traffic loop keeps no writes"
        );
        // Version 1's ack is forgotten, version 2's (the newest) is kept.
        let read_at = t0 + Duration::from_secs(2);
        assert_eq!(
            recorder.stale_age("k", 1, read_at),
            Some(read_at - (t0 + Duration::from_millis(10)))
        );
    }
}
