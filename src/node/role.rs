//! The answer of Redis's `ROLE` command: which role a node has and its replication offset.
//!
//! Data path: beside the node client. A write's pipeline asks the primary for `ROLE` right after
//! the write (its offset is a safe upper bound of the write's own offset); a session read asks
//! the replica before reading (its offset says how much of the primary's stream it has
//! processed). Read-your-writes tokens compare the two.

use fred::types::Value;

/// A node's role and replication offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// True for a primary (`master`), false for a replica (`slave`).
    pub primary: bool,
    /// Primary: its replication offset. Replica: the offset it has processed.
    pub offset: u64,
    /// Replica: its link state (`connect`, `connecting`, `sync`, `connected`); primary: `None`.
    pub link_state: Option<String>,
}

impl Role {
    /// Parses `["master", offset, [...]]` or `["slave", host, port, state, offset]`.
    pub fn parse(reply: Value) -> Result<Role, String> {
        let Value::Array(items) = reply else {
            return Err(format!("ROLE answered {reply:?}, not an array"));
        };
        let text = |i: usize| items.get(i).and_then(|v| v.as_str()).map(|s| s.to_string());
        let number = |i: usize| items.get(i).and_then(Value::as_u64);
        match text(0).as_deref() {
            Some("master") => Ok(Role {
                primary: true,
                offset: number(1).ok_or("ROLE (master) has no offset")?,
                link_state: None,
            }),
            Some("slave") => Ok(Role {
                primary: false,
                // A replica that never synced reports -1.
                offset: number(4).unwrap_or(0),
                link_state: text(3),
            }),
            other => Err(format!("ROLE answered an unknown role {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn primary_and_replica_answers_parse() -> TestResult {
        let primary = Value::Array(vec![
            s("master"),
            Value::Integer(1234),
            Value::Array(vec![]),
        ]);
        assert_eq!(
            Role::parse(primary)?,
            Role {
                primary: true,
                offset: 1234,
                link_state: None
            }
        );
        let replica = Value::Array(vec![
            s("slave"),
            s("127.0.0.1"),
            Value::Integer(6379),
            s("connected"),
            Value::Integer(99),
        ]);
        let role = Role::parse(replica)?;
        assert_eq!(
            (role.primary, role.offset, role.link_state.as_deref()),
            (false, 99, Some("connected"))
        );
        let unsynced = Value::Array(vec![
            s("slave"),
            s("h"),
            Value::Integer(1),
            s("connect"),
            Value::Integer(-1),
        ]);
        assert_eq!(Role::parse(unsynced)?.offset, 0);
        Ok(())
    }

    #[test]
    fn nonsense_is_an_error() {
        assert!(Role::parse(Value::Integer(3)).is_err());
        assert!(Role::parse(Value::Array(vec![s("sentinel")])).is_err());
    }
}
