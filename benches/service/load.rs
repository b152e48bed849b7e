//! The load generator of the service benchmark: keep-alive HTTP/1 connections, each sending
//! its next request when the last answered, latencies in an HDR histogram.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::{CONNECTIONS, Failure, KEYS};

/// One request on a new connection, for seeding: its status.
pub async fn send(addr: SocketAddr, method: &str, path: &str) -> Result<u16, Failure> {
    Ok(crate::support::http::send(addr, method, path).await?.0)
}

/// What one scenario measured.
pub struct Measured {
    pub count: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Measured {
    pub fn new() -> Result<Measured, Failure> {
        Ok(Measured {
            count: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        })
    }

    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }

    pub fn add(&mut self, other: &Measured) -> Result<(), Failure> {
        self.count += other.count;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latency.add(&other.latency)?;
        Ok(())
    }
}

/// Makes the path of the i-th request.
pub type PathFn = fn(u64) -> String;
pub type Target = (&'static str, SocketAddr, PathFn);

pub fn read_path(i: u64) -> String {
    format!("/read/bench-{}", i as usize % KEYS)
}

pub fn write_path(i: u64) -> String {
    format!("/write/bench-{}/v{i}", i as usize % KEYS)
}

pub fn design_path(i: u64) -> String {
    format!("/write-design/bench-{}/v{i}", i as usize % KEYS)
}

/// Runs the targets in alternating rounds and sums each one's rounds.
pub async fn alternate(
    rounds: u64,
    round: Duration,
    targets: &[Target],
) -> Result<Vec<Measured>, Failure> {
    let mut sums = Vec::new();
    for (method, addr, path) in targets {
        // One short warm-up each, not counted.
        load(method, *addr, *path, round.min(Duration::from_millis(500))).await?;
        sums.push(Measured::new()?);
    }
    for r in 0..rounds {
        // a b c, then c b a, ...: whoever runs first in a round does not always run first.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (method, addr, path) = targets[i];
            sums[i].add(&load(method, addr, path, round).await?)?;
        }
    }
    Ok(sums)
}

/// 32 keep-alive connections, each sending its next request as soon as the last answered.
pub async fn load(
    method: &'static str,
    addr: SocketAddr,
    path: PathFn,
    length: Duration,
) -> Result<Measured, Failure> {
    load_with(method, addr, path, length, CONNECTIONS).await
}

pub async fn load_with(
    method: &'static str,
    addr: SocketAddr,
    path: PathFn,
    length: Duration,
    connections: usize,
) -> Result<Measured, Failure> {
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = Vec::new();
    for c in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut m = Measured::new()?;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut i = c as u64 * 1_000_000;
            while Instant::now() < deadline {
                i += 1;
                let request = hyper::Request::builder()
                    .method(method)
                    .uri(path(i))
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())?;
                let sent = Instant::now();
                let response = sender.send_request(request).await?;
                let ok = response.status().is_success();
                let _ = response.into_body().collect().await?;
                m.latency.record(sent.elapsed().as_micros().max(1) as u64)?;
                m.count += 1;
                m.errors += u64::from(!ok);
            }
            Ok::<Measured, Failure>(m)
        }));
    }
    let mut total = Measured::new()?;
    for task in tasks {
        let m = task.await??;
        total.count += m.count;
        total.errors += m.errors;
        total.latency.add(&m.latency)?;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
