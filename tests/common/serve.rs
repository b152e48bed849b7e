//! `caplab serve` as a real child process, for what only a process can show (a kill -9, a lock
//! held by another process). The process is killed by pid when the [`ServeProcess`] is dropped,
//! pass or fail.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;

/// A `caplab serve` child on a free port.
pub struct ServeProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

/// `caplab serve --mode <mode>` with a clean environment plus `env`, on a free port (not yet
/// waited for: see [`ServeProcess::wait_listening`]).
pub fn spawn_serve(mode: &str, env: &[(&str, String)]) -> ServeProcess {
    let port = free_port().expect("free port");
    let mut cmd = command(mode, port, env);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn caplab serve");
    ServeProcess {
        child,
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
    }
}

/// The command [`spawn_serve`] runs, for a caller that wants its output.
pub fn command(mode: &str, port: u16, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caplab"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["serve", "--mode", mode, "--log-format", "json"])
        .env("PORT", port.to_string());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

impl ServeProcess {
    /// Waits until it accepts connections.
    pub async fn wait_listening(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("caplab serve exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "caplab serve never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as a crash: nothing runs after it.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}
