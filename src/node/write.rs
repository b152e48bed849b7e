//! The node client's write path: the record script on the primary, alone (AP), with `ROLE`,
//! or with `ROLE` and `WAIT 1` on a dedicated connection (CP), and the AP drain's conditional
//! form.
//!
//! Data path: third layer, the bottom of every write. The script is loaded once with
//! `SCRIPT LOAD` and called with `EVALSHA`; a server that lost its script cache (`NOSCRIPT`,
//! after a restart) gets the script again and the write once more, which cannot apply it twice
//! because the script did not run.

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, ServerInterface};
use fred::types::{ClusterHash, CustomCommand, Value};

use super::client::{Node, WriteAck, all_answers, role_command};
use super::error::NodeError;
use super::record::{ScriptReply, WRITE_SCRIPT, WriteRequest};
use super::role::Role;

/// fred's `evalsha` is not offered on pipelines or option-carrying clients, so the script call
/// is sent as the plain command it is.
fn evalsha_command() -> CustomCommand {
    CustomCommand::new_static("EVALSHA", ClusterHash::Random, false)
}

/// `EVALSHA sha 2 <record> <counter> <value> <ts> <wid> <only_if_newer>`.
fn evalsha_args(sha: &str, write: &WriteRequest, only_if_newer: bool) -> Vec<String> {
    let keys = write.script_keys();
    let mut args = Vec::with_capacity(2 + keys.len() + 4);
    args.push(sha.to_string());
    args.push(keys.len().to_string());
    args.extend(keys);
    args.extend(write.script_args(only_if_newer));
    args
}

impl Node {
    /// Writes on the shared connection: the script, then `ROLE`, in one pipeline (AP).
    pub async fn write(&self, write: &WriteRequest) -> Result<WriteAck, NodeError> {
        self.write_via(&self.0.client, write, None).await
    }

    /// Writes on `conn` (the shared client, or a dedicated CP connection): the script, `ROLE`
    /// and, if `wait` is given, `WAIT 1 <wait>`, in one pipeline. A server that lost its script
    /// cache (`NOSCRIPT`, after a restart) gets the script again and the write once more: the
    /// script did not run, so this cannot apply it twice.
    pub async fn write_via(
        &self,
        conn: &Client,
        write: &WriteRequest,
        wait: Option<Duration>,
    ) -> Result<WriteAck, NodeError> {
        match self.write_pipeline(conn, write, wait).await {
            Err(e) if e.is_noscript() => {
                self.forget_script();
                self.write_pipeline(conn, write, wait).await
            }
            other => other,
        }
    }

    async fn write_pipeline(
        &self,
        conn: &Client,
        write: &WriteRequest,
        wait: Option<Duration>,
    ) -> Result<WriteAck, NodeError> {
        let sha = self.script_sha().await?;
        let pipeline = conn.pipeline().with_options(&self.0.options);
        let wait_ms = wait.map(|w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX));
        let results = self
            .guarded(|| async {
                let _: () = pipeline
                    .custom(evalsha_command(), evalsha_args(&sha, write, false))
                    .await?;
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
        let mut answers = results.into_iter();
        let mut next = || {
            answers
                .next()
                .ok_or_else(|| self.protocol("short pipeline answer".into()))
        };
        let script = next()?.map_err(|e| NodeError::from_fred(self.0.name, self.0.timeout, &e))?;
        let version = match ScriptReply::parse(script).map_err(|e| self.protocol(e))? {
            ScriptReply::Applied { version } | ScriptReply::AlreadyApplied { version } => version,
            ScriptReply::Superseded { version } => version,
        };
        let role = next()?.map_err(|e| NodeError::from_fred(self.0.name, self.0.timeout, &e))?;
        let primary_offset = Role::parse(role).map_err(|e| self.protocol(e))?.offset;
        let replicas_acked = match wait {
            None => None,
            Some(_) => {
                let acked =
                    next()?.map_err(|e| NodeError::from_fred(self.0.name, self.0.timeout, &e))?;
                Some(
                    acked
                        .as_u64()
                        .ok_or_else(|| self.protocol(format!("WAIT answered {acked:?}")))?,
                )
            }
        };
        Ok(WriteAck {
            version,
            primary_offset,
            replicas_acked,
        })
    }

    /// The AP drain's conditional write: stores the write only if no newer one holds the key.
    pub async fn apply_if_newer(&self, write: &WriteRequest) -> Result<ScriptReply, NodeError> {
        let run = || async {
            let sha = self.script_sha().await?;
            let cmd = self.0.client.with_options(&self.0.options);
            let reply: Value = self
                .guarded(|| cmd.custom(evalsha_command(), evalsha_args(&sha, write, true)))
                .await?;
            ScriptReply::parse(reply).map_err(|e| self.protocol(e))
        };
        match run().await {
            Err(e) if e.is_noscript() => {
                self.forget_script();
                run().await
            }
            other => other,
        }
    }

    /// The script's SHA1, loading the script with `SCRIPT LOAD` the first time.
    async fn script_sha(&self) -> Result<String, NodeError> {
        if let Ok(guard) = self.0.script_sha.read()
            && let Some(sha) = guard.as_ref()
        {
            return Ok(sha.clone());
        }
        let cmd = self.0.client.with_options(&self.0.options);
        let load = CustomCommand::new_static("SCRIPT", ClusterHash::Random, false);
        let sha: String = self
            .guarded(|| cmd.custom(load, vec!["LOAD", WRITE_SCRIPT]))
            .await?;
        if let Ok(mut guard) = self.0.script_sha.write() {
            *guard = Some(sha.clone());
        }
        Ok(sha)
    }

    fn forget_script(&self) {
        if let Ok(mut guard) = self.0.script_sha.write() {
            *guard = None;
        }
    }
}
