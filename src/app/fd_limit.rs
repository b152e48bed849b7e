//! The process's open-file limit, raised to fit `MAX_CONNECTIONS`.
//!
//! Beside the data path, at start. Each connection is a file descriptor. If the process runs
//! out of descriptors before the connection cap is reached, new connections are never accepted
//! and so never refused: they wait in the kernel's backlog with no answer, and `/health` stops
//! answering too (what a flood of half-open connections did before the cap). So `caplab serve`
//! raises its soft limit to what the cap needs, up to the hard limit, and warns, naming the
//! setting, when even that is short. Only the `serve` command does this, never a library
//! caller (tests start apps in-process).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use super::server::MAX_REFUSING;
use crate::config::Config;

/// File descriptors the process needs beyond its connections (Redis clients, logs, the
/// listener).
const SPARE_FDS: u64 = 256;

/// Descriptors `config` needs: every regular and reserved slot, every refusal under way, and
/// the spare.
pub fn needed(config: &Config) -> u64 {
    let server = &config.server;
    (server.max_connections + server.reserved_connections) as u64 + MAX_REFUSING as u64 + SPARE_FDS
}

/// Raises the soft limit towards [`needed`]; warns when the hard limit is below it.
pub fn ensure_fd_limit(config: &Config) {
    let needed = needed(config);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= needed {
        return;
    }
    let target = needed.min(hard);
    let raised = target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok();
    if raised && target >= needed {
        return;
    }
    tracing::warn!(
        max_connections = config.server.max_connections,
        needed,
        limit = if raised { target } else { soft },
        "the open-file limit is below what MAX_CONNECTIONS needs; lower MAX_CONNECTIONS or raise the limit (ulimit -n)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    #[test]
    fn the_default_cap_needs_its_slots_refusals_and_spare() {
        let config = Config::new(Mode::Cp, "redis://127.0.0.1:1", "redis://127.0.0.1:2");
        assert_eq!(needed(&config), 1024 + 16 + 64 + 256);
    }
}
