//! The local lab: the whole topology of docs/design.md on one machine, no Docker.
//!
//! | module | what |
//! |---|---|
//! | [`command`] | `caplab lab up / status / failover / down / cert` |
//! | [`cert`] | `caplab lab cert`: a self-signed pair for trying HTTPS |
//! | [`demo`](mod@demo) | `caplab demo`: lab up, CP and AP under partitions side by side, lab down |
//! | [`topology`] | [`Lab`]: up (in order, each part checked), node actions, failover, down, detach |
//! | [`start`] | the steps of `up`: directory and ports, nodes, proxies, sentinels, apps |
//! | [`primary`] | which node is primary now: the sentinels' answer and each node's own role |
//! | [`failover`] | a forced failover (`SENTINEL FAILOVER`), confirmed by the promotion |
//! | [`options`] | [`LabOptions`], [`LabPorts`] (the documented defaults, or free ports) |
//! | [`password`] | [`LabPassword`]: the lab's Redis password, `<dir>/redis.password` (0600) |
//! | [`record`] | [`LabRecord`], `<dir>/lab.json`: what runs where, by pid and start time |
//! | [`process`] | the lab's `caplab` child processes; stopping a recorded pid safely |
//! | [`health`] | waiting for and probing the parts |
//! | [`error`] | [`LabError`] |
//! | [`redis_node`] | real `redis-server` processes (the test harness uses it too) |
//! | [`sentinel`] | real Redis Sentinel processes, and what they say of the primary |
//! | `redis_process` | one `redis-server` process (a node or a sentinel): spawn, PING, signal, kill |
//! | [`ports`] | free ports, a taken port reported by name |
//! | [`node_action`] | [`LabNode`], [`NodeAction`]: what a scenario's node steps do |
//! | [`recorded`] | [`RecordedLab`]: a lab known from `lab.json`, its nodes acted on by pid (the console) |
//!
//! ```no_run
//! use caplab::lab::{Lab, LabNode, LabOptions, LabPorts, NodeAction};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let options = LabOptions::new(".caplab-test", "target/debug/caplab").with_ports(LabPorts::free()?);
//! let mut lab = Lab::up(options).await?;
//! println!("CP at {}, AP at {}, Toxiproxy at {}", lab.cp_url(), lab.ap_url(), lab.toxiproxy_url());
//! lab.node_action(LabNode::G2, NodeAction::Kill).await?;
//! lab.node_action(LabNode::G2, NodeAction::Restart).await?;
//! assert_eq!(lab.primary().await?, LabNode::G1);
//! assert_eq!(lab.failover().await?, LabNode::G2); // the sentinels promote g2
//! println!("{}", lab.primary_report().await); // g1 says master until they demote it
//! lab.down().await?;
//! # Ok(()) }
//! ```

pub use command::{LabArgs, run};
pub use demo::{DemoArgs, DemoError, demo};
pub use error::LabError;
pub use node_action::{LabNode, NodeAction};
pub use options::{LabOptions, LabPorts};
pub use password::LabPassword;
pub use record::LabRecord;
pub use recorded::RecordedLab;
pub use topology::Lab;

pub mod cert;
pub mod command;
pub mod demo;
pub mod error;
pub mod failover;
pub mod health;
pub mod node_action;
pub mod options;
pub mod password;
pub mod ports;
pub mod primary;
pub mod process;
pub mod record;
pub mod recorded;
pub mod redis_node;
mod redis_process;
pub mod sentinel;
pub mod start;
pub mod topology;
