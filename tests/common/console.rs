//! A lab with its console, as a user starts it (`caplab lab up --console-addr ...` on free
//! ports), stopped by `caplab lab down` (by recorded pid) when the test ends, pass or fail;
//! and a reader of the console's server-sent events.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use caplab::lab::{LabPorts, LabRecord};

/// A lab started by `caplab lab up` with its console on a free port.
pub struct ConsoleLab {
    /// The lab's directory (inside `_tmp`).
    pub dir: PathBuf,
    /// Its ports.
    pub ports: LabPorts,
    /// `lab.json` right after `up`.
    pub record: LabRecord,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// What `up` printed.
    pub up_output: String,
    /// Prints the sentinels' and nodes' logs when the test panics (before `_tmp` goes).
    _logs: super::sentinels::LabLogsOnPanic,
    _tmp: tempfile::TempDir,
}

fn caplab(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(args)
        .output()
        .expect("run caplab")
}

/// stdout and stderr of a finished command.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl ConsoleLab {
    /// `caplab lab up` on free ports, the console on a free loopback port, offering the
    /// repository's scenarios.
    pub fn up() -> ConsoleLab {
        ConsoleLab::up_with_scenarios(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios"
        )))
    }

    /// `caplab lab up` as [`ConsoleLab::up`], the console offering the scenario files of
    /// `scenarios`.
    pub fn up_with_scenarios(scenarios: &std::path::Path) -> ConsoleLab {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("lab");
        let ports = LabPorts::free().expect("free ports");
        let console_port = free_port().expect("a free port");
        let mut args: Vec<String> = vec![
            "lab".into(),
            "up".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--console-addr".into(),
            format!("127.0.0.1:{console_port}"),
            "--console-scenarios".into(),
            scenarios.display().to_string(),
        ];
        args.extend(super::lab::lab_port_args(&ports));
        let out = caplab(&args);
        let up_output = text(&out);
        let lab_dir = dir.clone();
        // From here on, a failed assertion still takes the lab down.
        let guard = DownOnDrop(Some(lab_dir));
        assert!(out.status.success(), "lab up failed:\n{up_output}");
        let record = LabRecord::read(&dir).expect("read").expect("lab.json");
        std::mem::forget(guard);
        let lab_dir_for_logs = dir.clone();
        ConsoleLab {
            dir,
            ports,
            record,
            url: format!("http://127.0.0.1:{console_port}"),
            up_output,
            _logs: super::sentinels::LabLogsOnPanic(lab_dir_for_logs),
            _tmp: tmp,
        }
    }

    /// `caplab lab down`; returns what it printed.
    pub fn down(&self) -> Output {
        caplab(&[
            "lab".into(),
            "down".into(),
            "--dir".into(),
            self.dir.display().to_string(),
        ])
    }

    /// The output directory of a test's artefacts (screenshots): `target/console-test/<name>`.
    pub fn artefacts(name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("console-test")
            .join(name);
        std::fs::create_dir_all(&dir).expect("artefacts dir");
        dir
    }
}

impl Drop for ConsoleLab {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

struct DownOnDrop(Option<PathBuf>);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = caplab(&[
                "lab".into(),
                "down".into(),
                "--dir".into(),
                dir.display().to_string(),
            ]);
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// Its `event:` name.
    pub event: String,
    /// Its `data:` lines joined by newlines.
    pub data: String,
}

/// Reads `text/event-stream` from a streaming response, event by event.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

impl SseReader {
    /// Opens `GET url` and checks it is an event stream.
    pub async fn open(url: &str) -> SseReader {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(url)
            .send()
            .await
            .expect("GET /events");
        assert_eq!(response.status(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            response,
            buffer: String::new(),
            ended: false,
        }
    }

    /// The next event (comments and keep-alives skipped), or `None` when the stream ends or
    /// `timeout` passes first.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
            if self.ended {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk())
                .await
                .ok()?
            {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) | Err(_) => self.ended = true,
            }
        }
    }

    /// Whether the server ended the stream (or the connection broke).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next `tick`, parsed.
    pub async fn next_tick(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.next(left).await?;
            if event.event == "tick" {
                return serde_json::from_str(&event.data).ok();
            }
        }
    }
}
