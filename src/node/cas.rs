//! Compare-and-set on the primary: one Lua script compares the record's current value and, if
//! it matches, writes the new value exactly as a write does (same record, a new version from
//! the same counter), atomically.
//!
//! Data path: third layer, beside the write path (`node::write`). The script, `ROLE` and, for
//! CP, `WAIT 1 <ms>` go out in one pipeline, on the shared connection (AP) or on a dedicated
//! one (CP, `WaitPool::cas_and_wait`). The script is sent with `EVAL` (Redis caches it by its
//! SHA1 itself), so a server that lost its script cache needs no second attempt.
//!
//! A node that is a replica refuses the write half of the script (`READONLY`); a mismatch it
//! might still report from a replica is not trusted: `ROLE` in the same pipeline says the
//! node is not a primary, and the answer becomes [`NodeError::NotPrimary`] (nothing applied).

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, ServerInterface};
use fred::types::{ClusterHash, CustomCommand, Value};

use super::client::{Node, all_answers, role_command};
use super::error::NodeError;
use super::record::{VERSION_COUNTER_KEY, record_key};
use super::role::Role;
use crate::time::unix_ms;

/// KEYS: record, counter. ARGV: `1` when a value is expected (`0`: the key must be absent),
/// the expected value, the new value, writer ts (ms), write id.
/// Returns `{1, version}` applied, or `{0, current version or 0, current value or nil}`.
pub const CAS_SCRIPT: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'value', 'version')
local matches
if ARGV[1] == '1' then
  matches = cur[1] == ARGV[2]
else
  matches = not cur[1]
end
if not matches then
  return {0, tonumber(cur[2]) or 0, cur[1]}
end
local version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[3], 'version', version, 'ts', ARGV[4], 'wid', ARGV[5])
return {1, version}
"#;

/// One compare-and-set as the service issues it, stamped when the request arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasRequest {
    /// The key.
    pub key: String,
    /// The value the key must hold (`None`: the key must be absent).
    pub expected: Option<String>,
    /// The value to write if it does.
    pub new: String,
    /// The writer's timestamp, Unix ms.
    pub written_at_ms: u64,
    /// A random id of this write.
    pub write_id: String,
}

impl CasRequest {
    /// A cas of `key` from `expected` to `new`, stamped now.
    pub fn new(key: String, expected: Option<String>, new: String) -> CasRequest {
        CasRequest {
            key,
            expected,
            new,
            written_at_ms: unix_ms(),
            write_id: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// `EVAL script 2 <record> <counter> <has_expected> <expected> <new> <ts> <wid>`.
    fn eval_args(&self) -> Vec<String> {
        vec![
            CAS_SCRIPT.to_string(),
            "2".to_string(),
            record_key(&self.key),
            VERSION_COUNTER_KEY.to_string(),
            if self.expected.is_some() { "1" } else { "0" }.to_string(),
            self.expected.clone().unwrap_or_default(),
            self.new.clone(),
            self.written_at_ms.to_string(),
            self.write_id.clone(),
        ]
    }
}

/// What the cas script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasReply {
    /// The key held the expected value; the new one is stored with this version.
    Applied {
        /// The version assigned.
        version: u64,
    },
    /// The key did not hold the expected value; nothing was written.
    Mismatch {
        /// The value it held (`None`: absent).
        current: Option<String>,
        /// Its version (`None`: absent).
        version: Option<u64>,
    },
}

impl CasReply {
    /// Parses the script's answer.
    pub fn parse(reply: Value) -> Result<CasReply, String> {
        let Value::Array(items) = reply else {
            return Err(format!("cas script answered {reply:?}, not an array"));
        };
        let int = |i: usize| match items.get(i) {
            Some(Value::Integer(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        match int(0) {
            Some(1) => Ok(CasReply::Applied {
                version: int(1).ok_or_else(|| format!("cas script answered {items:?}"))?,
            }),
            Some(0) => {
                let current = match items.get(2) {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_string()
                            .ok_or_else(|| format!("cas script answered {items:?}"))?,
                    ),
                };
                let version = int(1).filter(|_| current.is_some());
                Ok(CasReply::Mismatch { current, version })
            }
            _ => Err(format!("cas script answered {items:?}")),
        }
    }
}

/// What a cas left behind on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasAck {
    /// Applied or not.
    pub reply: CasReply,
    /// The node's replication offset from `ROLE`, right after the script.
    pub primary_offset: u64,
    /// CP only: how many replicas `WAIT 1` counted.
    pub replicas_acked: Option<u64>,
}

fn eval_command() -> CustomCommand {
    CustomCommand::new_static("EVAL", ClusterHash::Random, false)
}

impl Node {
    /// Compare-and-set on the shared connection: the script, then `ROLE` (AP).
    pub async fn cas(&self, cas: &CasRequest) -> Result<CasAck, NodeError> {
        self.cas_via(&self.0.client, cas, None).await
    }

    /// Compare-and-set on `conn`: the script, `ROLE` and, if `wait` is given, `WAIT 1
    /// <wait>`, in one pipeline.
    pub async fn cas_via(
        &self,
        conn: &Client,
        cas: &CasRequest,
        wait: Option<Duration>,
    ) -> Result<CasAck, NodeError> {
        let pipeline = conn.pipeline().with_options(&self.0.options);
        let wait_ms = wait.map(|w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX));
        let results = self
            .guarded(|| async {
                let _: () = pipeline.custom(eval_command(), cas.eval_args()).await?;
                let _: () = pipeline.custom(role_command(), Vec::<Value>::new()).await?;
                if let Some(ms) = wait_ms {
                    let _: () = pipeline.wait(1, ms).await?;
                }
                all_answers(
                    pipeline.try_all::<Value>().await,
                    if wait_ms.is_some() { 3 } else { 2 },
                )
            })
            .await?;
        let fred_error =
            |e: fred::error::Error| NodeError::from_fred(self.0.name, self.0.timeout, &e);
        let mut answers = results.into_iter();
        let mut next = || {
            answers
                .next()
                .ok_or_else(|| self.protocol("short pipeline answer".into()))
        };
        let script = next()?.map_err(fred_error)?;
        let reply = CasReply::parse(script).map_err(|e| self.protocol(e))?;
        let role = Role::parse(next()?.map_err(fred_error)?).map_err(|e| self.protocol(e))?;
        if !role.primary {
            // A replica wrote nothing, and its comparison is of a copy that may be behind.
            return Err(NodeError::NotPrimary { node: self.0.name });
        }
        let replicas_acked = match wait {
            None => None,
            Some(_) => {
                let acked = next()?.map_err(fred_error)?;
                Some(
                    acked
                        .as_u64()
                        .ok_or_else(|| self.protocol(format!("WAIT answered {acked:?}")))?,
                )
            }
        };
        Ok(CasAck {
            reply,
            primary_offset: role.offset,
            replicas_acked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn script_replies_parse() -> TestResult {
        let int = Value::Integer;
        let applied = Value::Array(vec![int(1), int(7)]);
        assert_eq!(CasReply::parse(applied)?, CasReply::Applied { version: 7 });
        let held = Value::Array(vec![int(0), int(3), Value::String("a".into())]);
        assert_eq!(
            CasReply::parse(held)?,
            CasReply::Mismatch {
                current: Some("a".into()),
                version: Some(3)
            }
        );
        // A Lua nil ends the table: an absent key answers two elements.
        let absent = Value::Array(vec![int(0), int(0)]);
        assert_eq!(
            CasReply::parse(absent)?,
            CasReply::Mismatch {
                current: None,
                version: None
            }
        );
        assert!(CasReply::parse(int(1)).is_err());
        assert!(CasReply::parse(Value::Array(vec![int(5), int(1)])).is_err());
        Ok(())
    }

    #[test]
    fn arguments_say_whether_a_value_is_expected() {
        let c = CasRequest::new("k".into(), None, "b".into());
        let args = c.eval_args();
        assert_eq!(args[1..5], ["2", "caplab:kv:k", "caplab:version", "0"]);
        assert_eq!(args[6], "b");
        let c = CasRequest::new("k".into(), Some(String::new()), "b".into());
        assert_eq!(c.eval_args()[4..6], ["1", ""]);
    }
}
