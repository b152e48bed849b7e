//! What several benchmarks set up the same way: a real redis-server pair on free ports, the
//! embedded proxy on a thread of its own, and a one-off HTTP request. Each bench includes this folder with
//! `#[path = "support/mod.rs"] mod support;` and uses what it needs.
#![allow(dead_code)]

pub mod http;
pub mod pair;
pub mod proxy_thread;

/// A bench's error: anything, sent across threads.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;
