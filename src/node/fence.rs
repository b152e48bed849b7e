//! CP's read fence: a record read, then proof that the node was still the primary of a live
//! replica after it.
//!
//! Data path: third layer, under the CP policy, on one of the node's dedicated
//! [`WaitPool`] connections (`WAIT` blocks its connection and counts only that connection's
//! writes). One pipeline, one round trip to the node plus one replica acknowledgement:
//!
//! 1. `HGETALL caplab:kv:<key>`: the data;
//! 2. `INCR caplab:fence:<instance>`: a write, which a replica refuses with `READONLY`;
//! 3. `ROLE`: the node's offset after the read (for read-your-writes tokens);
//! 4. `WAIT 1 <CP_WAIT_TIMEOUT_MS>`: how many replicas acknowledged the fence write.
//!
//! The node executes them in this order, so an `INCR` it took as a primary and a replica's
//! acknowledgement of it prove that, after the data was read, the node was a primary whose
//! replica had everything it held. The CP policy serves the data only then; the argument is
//! in docs/decisions.md ("Following the primary and CP's read fence").

use std::collections::HashMap;
use std::time::Duration;

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, HashesInterface, KeysInterface, ServerInterface};
use fred::types::Value;

use super::client::{Node, all_answers, role_command};
use super::error::NodeError;
use super::record::{Record, record_key};
use super::role::Role;
use super::wait_pool::WaitPool;

/// The key one app instance increments to fence its reads.
pub fn fence_key(instance_id: &str) -> String {
    format!("caplab:fence:{instance_id}")
}

/// What a fenced read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedRead {
    /// The record (`None` when the node does not hold the key).
    pub record: Option<Record>,
    /// The node's replication offset after the fence write.
    pub offset_after: u64,
    /// How many replicas `WAIT 1` counted for the fence write: 0 means the node could not
    /// prove it was still the primary of a live replica, and the read must not be served.
    pub replicas_acked: u64,
}

impl WaitPool {
    /// Reads `key` and fences the read with `fence_key` on a dedicated connection. A node that
    /// is a replica answers [`NodeError::NotPrimary`]; a fence no replica confirmed comes back
    /// with `replicas_acked == 0`, for the caller to refuse.
    pub async fn fenced_read(&self, key: &str, fence_key: &str) -> Result<FencedRead, NodeError> {
        let lease = self.lease().await?;
        let Some(conn) = lease.client.as_ref() else {
            // ok: a lease always holds its client until dropped.
            return Err(self.exhausted(Duration::ZERO));
        };
        self.node()
            .fence_pipeline(conn, key, fence_key, self.wait_timeout())
            .await
    }
}

impl Node {
    async fn fence_pipeline(
        &self,
        conn: &Client,
        key: &str,
        fence_key: &str,
        wait: Duration,
    ) -> Result<FencedRead, NodeError> {
        let pipeline = conn.pipeline().with_options(&self.0.options);
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let results = self
            .guarded(|| async {
                let _: () = pipeline.hgetall(record_key(key)).await?;
                let _: () = pipeline.incr(fence_key).await?;
                let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                let _: () = pipeline.wait(1, wait_ms).await?;
                all_answers(pipeline.try_all::<Value>().await, 4)
            })
            .await?;
        let fred = |e: FredError| NodeError::from_fred(self.0.name, self.0.timeout, &e);
        let mut answers = results.into_iter();
        let mut next = || {
            answers
                .next()
                .ok_or_else(|| self.protocol("short pipeline answer".into()))
        };
        let data = next()?.map_err(fred)?;
        // The fence write decides first: a replica refuses it (NotPrimary), and its WAIT then
        // fails too, for the same reason.
        let _fence = next()?.map_err(fred)?;
        let fields = data
            .convert::<HashMap<String, String>>()
            .map_err(|e| self.protocol(e.to_string()))?;
        let record = Record::from_hash(fields).map_err(|e| self.protocol(e))?;
        let role = next()?.map_err(fred)?;
        let offset_after = Role::parse(role).map_err(|e| self.protocol(e))?.offset;
        let acked = next()?.map_err(fred)?;
        let replicas_acked = acked
            .as_u64()
            .ok_or_else(|| self.protocol(format!("WAIT answered {acked:?}")))?;
        Ok(FencedRead {
            record,
            offset_after,
            replicas_acked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_fences_with_its_own_key() {
        assert_eq!(fence_key("cp-1"), "caplab:fence:cp-1");
        assert_ne!(fence_key("cp-1"), fence_key("cp-2"));
    }
}
