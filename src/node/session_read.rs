//! The node client's session reads: a record bracketed by `ROLE`, in one pipeline.
//!
//! Data path: third layer, under the mode policies, for reads that carry a session token.
//! On the replica the pipeline is `ROLE`, `HGETALL`, `ROLE`: the first offset is a lower bound
//! of what the read reflects (the policy serves the answer only if it reached the token's
//! offset, docs/design.md's "asked before the data read"), the last an upper bound (the token is
//! raised to it, so the next read, on any instance, cannot go back: monotonic reads). On the
//! primary only the offset after the read is needed: `HGETALL`, `ROLE`. One round trip either
//! way, behind the node's breaker like every other call.

use fred::interfaces::{ClientLike, HashesInterface};
use fred::types::Value;

use super::client::{Node, all_answers, role_command};
use super::error::NodeError;
use super::record::{Record, record_key};
use super::role::Role;

/// A record and the replication offsets around its read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRead {
    /// The record (`None` when the node does not hold the key).
    pub record: Option<Record>,
    /// The node's offset just before the read (asked only when `role_before` was set).
    pub offset_before: Option<u64>,
    /// The node's offset just after the read.
    pub offset_after: u64,
}

impl Node {
    /// Reads `key` with `ROLE` after it, and before it too when `role_before` is set.
    pub async fn read_observed(
        &self,
        key: &str,
        role_before: bool,
    ) -> Result<ObservedRead, NodeError> {
        let pipeline = self.0.client.pipeline().with_options(&self.0.options);
        let n = if role_before { 3 } else { 2 };
        let results = self
            .guarded(|| async {
                if role_before {
                    let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                }
                let _: () = pipeline.hgetall(record_key(key)).await?;
                let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                all_answers(pipeline.try_all::<Value>().await, n)
            })
            .await?;
        let mut values = results
            .into_iter()
            .map(|r| r.map_err(|e| NodeError::from_fred(self.0.name, self.0.timeout, &e)))
            .collect::<Result<Vec<Value>, NodeError>>()?
            .into_iter();
        let mut next = || {
            values
                .next()
                .ok_or_else(|| self.protocol("short pipeline answer".into()))
        };
        let offset = |v: Value| Role::parse(v).map(|r| r.offset);
        let offset_before = if role_before {
            Some(offset(next()?).map_err(|e| self.protocol(e))?)
        } else {
            None
        };
        let fields = next()?
            .convert::<std::collections::HashMap<String, String>>()
            .map_err(|e| self.protocol(e.to_string()))?;
        let record = Record::from_hash(fields).map_err(|e| self.protocol(e))?;
        let offset_after = offset(next()?).map_err(|e| self.protocol(e))?;
        Ok(ObservedRead {
            record,
            offset_before,
            offset_after,
        })
    }
}
