//! The `caplab lab` commands as a user runs them: `up` (left running, in the background),
//! `up` again (already up), `status`, `down` (nothing left), and a taken port named. The lab's
//! Redis password: a 0600 file, required by the nodes and sentinels, in no log.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use caplab::lab::{LabPorts, LabRecord};
use common::lab::lab_port_args;

fn caplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(args)
        .output()
        .expect("run caplab")
}

fn port_args(ports: &LabPorts) -> Vec<String> {
    let mut args = lab_port_args(ports);
    // The console has its own test (tests/console_lab.rs); here it would take port 8080.
    args.extend(["--console-addr".to_string(), "off".to_string()]);
    args
}

fn up(dir: &Path, ports: &LabPorts) -> Output {
    let mut args = vec![
        "lab".to_string(),
        "up".into(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    args.extend(port_args(ports));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    caplab(&args)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `caplab lab down` when the test ends, pass or fail, so a failed assertion does not
/// leave a lab running.
struct DownOnDrop<'a>(&'a Path);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = caplab(&["lab", "down", "--dir", &self.0.display().to_string()]);
    }
}

/// `PING` on a plain connection without `AUTH`: the first line of the answer.
fn unauthenticated_ping(port: u16) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    stream.write_all(b"PING\r\n").expect("send PING");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("answer");
    line
}

/// Every file under `dir` whose name contains `log` (the lab's logs, rotated or not).
fn files_named_log(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_named_log(&path, out);
        } else if entry.file_name().to_string_lossy().contains("log") {
            out.push(path);
        }
    }
}

#[test]
fn up_status_down_and_up_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let dir_arg = dir.display().to_string();
    let ports = LabPorts::free().expect("free ports");
    let _guard = DownOnDrop(&dir);

    let first = up(&dir, &ports);
    assert!(first.status.success(), "{}", text(&first));
    let out = text(&first);
    for part in [
        "redis g1",
        "redis g2",
        "sentinel s1",
        "sentinel s2",
        "sentinel s3",
        "proxy cluster_g1",
        "proxy cluster_g2",
        "proxy sentinels",
        "app_cp",
        "app_ap",
    ] {
        assert!(out.contains(part), "table lacks {part}:\n{out}");
    }
    assert!(
        out.contains(&format!("http://127.0.0.1:{}", ports.app_cp)),
        "{out}"
    );
    let record = LabRecord::read(&dir).expect("read").expect("lab.json");
    assert_eq!(record.processes.len(), 8);
    assert!(record.processes.iter().all(|p| p.is_running()));

    let again = up(&dir, &ports);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("already up"), "{}", text(&again));
    assert_eq!(LabRecord::read(&dir).expect("read"), Some(record.clone()));

    let status = caplab(&["lab", "status", "--dir", &dir_arg]);
    let out = text(&status);
    assert!(status.status.success(), "{out}");
    assert!(
        out.contains("role slave of g1 through cluster_g1, link up"),
        "{out}"
    );
    for s in ["sentinel s1", "sentinel s2", "sentinel s3"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(s))
            .expect("a sentinel line");
        assert!(
            line.contains("ok") && line.contains("primary g1 (epoch 0"),
            "{out}"
        );
    }
    assert!(
        out.contains(
            "primary now: g1 (the sentinels, config epoch 0; g1 says master, g2 says replica)"
        ),
        "{out}"
    );
    assert!(!out.contains("DOWN") && !out.contains("WARNING"), "{out}");

    // The lab's Redis password: a file only its owner reads; a node and a sentinel refuse a
    // connection without it; the apps, which read the file, write and read.
    let password_file = dir.join(caplab::lab::password::PASSWORD_FILE);
    let meta = std::fs::metadata(&password_file).expect("the lab's password file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let password = std::fs::read_to_string(&password_file).expect("read the password");
    assert!(password.trim().len() >= 32, "a short password");
    for (part, port) in [("g1", ports.redis_g1), ("s1", ports.sentinel_s1)] {
        let answer = unauthenticated_ping(port);
        assert!(answer.starts_with("-NOAUTH"), "{part} answered {answer:?}");
    }
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let cp = format!("http://127.0.0.1:{}", ports.app_cp);
    let ap = format!("http://127.0.0.1:{}", ports.app_ap);
    let written = http
        .post(format!("{cp}/write/auth-key/auth-value"))
        .send()
        .expect("write");
    assert_eq!(written.status(), 200);
    let read: serde_json::Value = http
        .get(format!("{ap}/read/auth-key"))
        .send()
        .expect("read")
        .json()
        .expect("json");
    assert_eq!(read["value"], "auth-value", "{read}");

    // A part that dies is shown DOWN and status exits 1.
    let ap = record
        .processes
        .iter()
        .find(|p| p.name == "app_ap")
        .expect("app_ap recorded");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ap.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill app_ap");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ap.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "app_ap survived SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = caplab(&["lab", "status", "--dir", &dir_arg]);
    let out = text(&status);
    assert_eq!(status.status.code(), Some(1), "{out}");
    let ap_line = out
        .lines()
        .find(|l| l.starts_with("app_ap"))
        .expect("app_ap line");
    assert!(ap_line.contains("DOWN"), "{out}");
    assert!(
        out.lines().filter(|l| l.contains("DOWN")).count() == 1,
        "{out}"
    );

    // A forced failover: s1 promotes g2, and status follows.
    let failover = caplab(&["lab", "failover", "--dir", &dir_arg]);
    assert!(failover.status.success(), "{}", text(&failover));
    assert!(
        text(&failover).contains("sentinel s1 promoted g2"),
        "{}",
        text(&failover)
    );
    let status = caplab(&["lab", "status", "--dir", &dir_arg]);
    assert!(
        text(&status).contains("primary now: g2 (the sentinels, config epoch 1;"),
        "{}",
        text(&status)
    );

    // The password is in no log of the lab and not in lab.json.
    let mut logs = Vec::new();
    files_named_log(&dir, &mut logs);
    assert!(logs.len() >= 8, "{logs:?}");
    logs.push(dir.join("lab.json"));
    for file in &logs {
        let text = std::fs::read(file).expect("read a log");
        assert!(
            !String::from_utf8_lossy(&text).contains(password.trim()),
            "the password is in {}",
            file.display()
        );
    }

    let down = caplab(&["lab", "down", "--dir", &dir_arg]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("stopped 7 of 8"), "{}", text(&down));
    common::lab::assert_processes_gone(&record);
    common::lab::assert_ports_free(&ports, "port free after down");
    let status = caplab(&["lab", "status", "--dir", &dir_arg]);
    assert!(
        !status.status.success(),
        "status of a stopped lab succeeded"
    );
    assert!(
        text(&status).contains("no lab is recorded"),
        "{}",
        text(&status)
    );
    let failover = caplab(&["lab", "failover", "--dir", &dir_arg]);
    assert_eq!(failover.status.code(), Some(2), "{}", text(&failover));
    assert!(
        text(&failover).contains("no lab is recorded"),
        "{}",
        text(&failover)
    );
}

#[test]
fn a_taken_port_is_named_and_nothing_runs_after() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let ports = LabPorts::free().expect("free ports");
    let _guard = DownOnDrop(&dir);
    let held = std::net::TcpListener::bind(("127.0.0.1", ports.proxy_cluster_g1)).expect("hold");

    let out = up(&dir, &ports);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("proxy cluster_g1") && msg.contains(&ports.proxy_cluster_g1.to_string()),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
    drop(held);
    assert!(LabRecord::read(&dir).expect("read").is_none());
    common::lab::assert_ports_free(&ports, "nothing was left listening");
}

#[test]
fn a_missing_redis_server_gives_the_install_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ports = LabPorts::free().expect("free ports");
    let mut args = vec![
        "lab".to_string(),
        "up".into(),
        "--dir".into(),
        tmp.path().join("lab").display().to_string(),
    ];
    args.extend(port_args(&ports));
    let output = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(&args)
        .env("PATH", tmp.path())
        .output()
        .expect("run caplab");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("sudo apt-get install -y redis-server"),
        "{}",
        text(&output)
    );
}

#[test]
fn an_interrupted_up_leaves_nothing_running() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let ports = LabPorts::free().expect("free ports");
    let _guard = DownOnDrop(&dir);
    let mut args = vec![
        "lab".to_string(),
        "up".into(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    args.extend(port_args(&ports));
    let mut child = Command::new(env!("CARGO_BIN_EXE_caplab"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Once g1's directory exists the lab is starting: interrupt it there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dir.join("g1").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lab never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(130),
        "the lab finished starting before the signal"
    );
    assert!(LabRecord::read(&dir).expect("read").is_none());
    // redis-server exits on its own time after SIGKILL: give the kernel a moment.
    std::thread::sleep(std::time::Duration::from_millis(200));
    common::lab::assert_ports_free(&ports, "nothing left listening");
}
