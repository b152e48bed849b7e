//! Headless Chromium driven over WebDriver: `chromedriver` started on a free port in a process
//! group of its own (the browser it launches joins that group), with a fresh profile; stopped
//! with its whole group, by its pid, when the handle drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caplab::lab::ports::free_port;
use fantoccini::{Client, ClientBuilder};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A running chromedriver and a WebDriver session on headless Chromium.
pub struct Browser {
    /// The session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (window `width` x `height`).
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_bin = which("chromedriver").expect(
            "chromedriver is not installed: scripts/deps.sh installs chromium and chromium-driver",
        );
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|n| which(n))
            .expect("chromium is not installed: scripts/deps.sh installs it");
        let port = free_port().expect("free port");
        let mut command = Command::new(driver_bin);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let browser = Browser {
            client: connect_when_up(port, &chromium, &profile, width, height).await,
            driver,
            _profile: profile,
        };
        browser
            .client
            .set_window_size(width, height)
            .await
            .expect("window size");
        browser
    }

    /// Ends the session (the browser quits), then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

async fn connect_when_up(
    port: u16,
    chromium: &str,
    profile: &tempfile::TempDir,
    width: u32,
    height: u32,
) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
                format!("--window-size={width},{height}"),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no WebDriver session within 20 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its own process group, and the browser it started is in it.
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}
