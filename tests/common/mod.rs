//! Helpers shared by the integration tests: real `redis-server` processes on free ports, and
//! the embedded Toxiproxy-compatible server.
//!
//! Each integration test file does `mod common;` and uses what it needs; helpers a given test
//! file does not use are allowed to be dead there.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod check;
pub mod console;
pub mod failover;
pub mod lab;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod sentinels;
pub mod serve;
pub mod topology;
