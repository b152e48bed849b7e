//! The record format and the one Lua script that writes it.
//!
//! Data path: the bottom, just above Redis. Each key is stored once, on the primary, as a small
//! hash at `caplab:kv:<key>`: `value`, `version` (assigned by the primary from the counter
//! `caplab:version`, inside the same script call, so versions are unique and grow), `ts` (the
//! writer's clock in Unix ms) and `wid` (a random id of the write). Both personalities share
//! this keyspace. The same script serves the AP queue's drain in its conditional form: apply
//! only if no newer write (by writer timestamp) landed meanwhile, and recognise its own write
//! (same `wid`) if an earlier attempt timed out but did land.

use std::collections::HashMap;

use fred::types::Value;

use crate::time::unix_ms;

/// Prefix of every record key.
pub const RECORD_PREFIX: &str = "caplab:kv:";
/// The primary's version counter.
pub const VERSION_COUNTER_KEY: &str = "caplab:version";

/// The Redis key holding `key`'s record.
pub fn record_key(key: &str) -> String {
    format!("{RECORD_PREFIX}{key}")
}

/// KEYS: record, counter. ARGV: value, writer ts (ms), write id, `1` to apply only if newer.
/// Returns `{code, version}`: 1 applied, 2 this write had already landed, 0 superseded.
pub const WRITE_SCRIPT: &str = r#"
local ts = tonumber(ARGV[2])
if ARGV[4] == '1' then
  local cur = redis.call('HMGET', KEYS[1], 'ts', 'wid', 'version')
  if cur[2] == ARGV[3] then
    return {2, tonumber(cur[3]) or 0}
  end
  if cur[1] and tonumber(cur[1]) and tonumber(cur[1]) >= ts then
    return {0, tonumber(cur[3]) or 0}
  end
end
local version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'version', version, 'ts', ARGV[2], 'wid', ARGV[3])
return {1, version}
"#;

/// A stored value with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value.
    pub value: String,
    /// The primary-assigned version.
    pub version: u64,
    /// The writer's timestamp, Unix ms.
    pub written_at_ms: u64,
    /// The id of the write that stored it.
    pub write_id: String,
}

impl Record {
    /// Reads a record from an `HGETALL` answer; an empty hash is a missing key.
    pub fn from_hash(mut fields: HashMap<String, String>) -> Result<Option<Record>, String> {
        if fields.is_empty() {
            return Ok(None);
        }
        let mut number = |name: &str| -> Result<u64, String> {
            let text = fields
                .remove(name)
                .ok_or_else(|| format!("record has no {name:?} field"))?;
            text.parse()
                .map_err(|_| format!("record field {name:?} is not a number: {text:?}"))
        };
        let version = number("version")?;
        let written_at_ms = number("ts")?;
        let value = fields
            .remove("value")
            .ok_or_else(|| "record has no \"value\" field".to_string())?;
        let write_id = fields.remove("wid").unwrap_or_default();
        Ok(Some(Record {
            value,
            version,
            written_at_ms,
            write_id,
        }))
    }
}

/// One write as the service issues it: the writer's timestamp and id are fixed when the
/// request arrives, so a queued or retried write keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The writer's timestamp, Unix ms.
    pub written_at_ms: u64,
    /// A random id of this write.
    pub write_id: String,
}

impl WriteRequest {
    /// A write of `value` to `key`, stamped now.
    pub fn new(key: String, value: String) -> WriteRequest {
        WriteRequest {
            key,
            value,
            written_at_ms: unix_ms(),
            write_id: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// The script's KEYS.
    pub fn script_keys(&self) -> Vec<String> {
        vec![record_key(&self.key), VERSION_COUNTER_KEY.to_string()]
    }

    /// The script's ARGV; `only_if_newer` is the AP drain's conditional form.
    pub fn script_args(&self, only_if_newer: bool) -> Vec<String> {
        vec![
            self.value.clone(),
            self.written_at_ms.to_string(),
            self.write_id.clone(),
            if only_if_newer { "1" } else { "0" }.to_string(),
        ]
    }
}

/// What the write script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptReply {
    /// Stored with this new version.
    Applied {
        /// The version assigned.
        version: u64,
    },
    /// This very write (same id) was already stored by an earlier attempt.
    AlreadyApplied {
        /// Its version.
        version: u64,
    },
    /// Not stored: a write at least as new (by writer timestamp) holds the key.
    Superseded {
        /// The version that holds the key.
        version: u64,
    },
}

impl ScriptReply {
    /// Parses the script's `{code, version}` answer.
    pub fn parse(reply: Value) -> Result<ScriptReply, String> {
        let Value::Array(items) = reply else {
            return Err(format!("write script answered {reply:?}, not an array"));
        };
        let int = |i: usize| -> Option<u64> {
            match items.get(i) {
                Some(Value::Integer(n)) => u64::try_from(*n).ok(),
                _ => None,
            }
        };
        let version = int(1).unwrap_or(0);
        match int(0) {
            Some(1) => Ok(ScriptReply::Applied { version }),
            Some(2) => Ok(ScriptReply::AlreadyApplied { version }),
            Some(0) => Ok(ScriptReply::Superseded { version }),
            _ => Err(format!("write script answered {items:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_full_hash_decodes_and_an_empty_one_is_missing() -> TestResult {
        let r = Record::from_hash(hash(&[
            ("value", "v"),
            ("version", "7"),
            ("ts", "1700000000000"),
            ("wid", "ab"),
        ]))?
        .ok_or("a full hash decoded as missing")?;
        assert_eq!(
            (
                r.value.as_str(),
                r.version,
                r.written_at_ms,
                r.write_id.as_str()
            ),
            ("v", 7, 1_700_000_000_000, "ab")
        );
        assert_eq!(Record::from_hash(HashMap::new())?, None);
        Ok(())
    }

    #[test]
    fn a_damaged_hash_is_an_error_naming_the_field() -> TestResult {
        let Err(err) = Record::from_hash(hash(&[("value", "v"), ("version", "x"), ("ts", "1")]))
        else {
            return Err("expected a bad version to be an error".into());
        };
        assert!(err.contains("version"), "{err}");
        let Err(err) = Record::from_hash(hash(&[("version", "1"), ("ts", "1")])) else {
            return Err("expected a missing value to be an error".into());
        };
        assert!(err.contains("value"), "{err}");
        Ok(())
    }

    #[test]
    fn write_arguments_carry_timestamp_id_and_mode() {
        let w = WriteRequest::new("k".into(), "v".into());
        assert_eq!(
            w.script_keys(),
            vec!["caplab:kv:k".to_string(), "caplab:version".to_string()]
        );
        let args = w.script_args(true);
        assert_eq!(args[0], "v");
        assert_eq!(args[1], w.written_at_ms.to_string());
        assert_eq!(args[2].len(), 16);
        assert_eq!(args[3], "1");
        assert_eq!(w.script_args(false)[3], "0");
        assert_ne!(
            w.write_id,
            WriteRequest::new("k".into(), "v".into()).write_id
        );
    }

    #[test]
    fn script_replies_parse() -> TestResult {
        let reply = |code, v| Value::Array(vec![Value::Integer(code), Value::Integer(v)]);
        assert_eq!(
            ScriptReply::parse(reply(1, 5))?,
            ScriptReply::Applied { version: 5 }
        );
        assert_eq!(
            ScriptReply::parse(reply(2, 5))?,
            ScriptReply::AlreadyApplied { version: 5 }
        );
        assert_eq!(
            ScriptReply::parse(reply(0, 9))?,
            ScriptReply::Superseded { version: 9 }
        );
        assert!(ScriptReply::parse(Value::Integer(1)).is_err());
        assert!(ScriptReply::parse(reply(7, 1)).is_err());
        Ok(())
    }
}
