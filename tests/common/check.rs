//! `caplab check` as a user runs it: the built binary on a file of `examples/histories/`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The path of `examples/histories/<name>`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/histories")
        .join(name)
}

/// Runs `caplab check <args>` and returns what it printed and its status.
pub fn caplab_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caplab"))
        .arg("check")
        .args(args)
        .output()
        .expect("run caplab")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
