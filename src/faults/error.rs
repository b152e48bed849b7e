//! The fault driver's errors, each marked definite (the change was certainly not applied) or
//! not (it may have been).
//!
//! Control plane: returned by every [`super::FaultDriver`] call to the runner and the lab,
//! which decide whether to retry, abort the scenario (exit 2) or record an uncertain fault.

/// Why a call to Toxiproxy failed.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The API address is not `host:port` or `http://host:port`.
    #[error("invalid Toxiproxy address {api:?}: {reason}")]
    InvalidAddress {
        /// What was given.
        api: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing answers at the address.
    #[error(
        "Toxiproxy at {api} is unreachable: {reason}; start it (`caplab proxy`, or `docker compose up toxiproxy`) or give its address"
    )]
    Unreachable {
        /// The API address.
        api: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// No proxy has that name.
    #[error("Toxiproxy at {api} has no proxy named {proxy:?}")]
    ProxyNotFound {
        /// The API address.
        api: String,
        /// The proxy.
        proxy: String,
    },
    /// A toxic or proxy spec cannot be sent (out of range for the client, bad toxicity...).
    #[error("invalid {what}: {reason}")]
    InvalidSpec {
        /// What was being sent.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("Toxiproxy at {api} refused {op}: HTTP {status}: {message}")]
    Rejected {
        /// The API address.
        api: String,
        /// The operation.
        op: String,
        /// The HTTP status.
        status: u16,
        /// The server's `error` message, or its body.
        message: String,
    },
    /// The client failed mid-call (transport error, unreadable answer).
    #[error("Toxiproxy at {api}: {op} failed: {message}")]
    Client {
        /// The API address.
        api: String,
        /// The operation.
        op: String,
        /// What the client said.
        message: String,
    },
    /// Reading the proxy back after a change did not show the change.
    #[error("Toxiproxy at {api}: after {op}, {what}")]
    UnexpectedState {
        /// The API address.
        api: String,
        /// The operation.
        op: String,
        /// What was found instead.
        what: String,
    },
    /// The blocking client panicked; the panic was caught.
    #[error("the Toxiproxy client panicked during {op} against {api}: {message}")]
    Panicked {
        /// The API address.
        api: String,
        /// The operation.
        op: String,
        /// The panic message.
        message: String,
    },
    /// The blocking task could not run or was cancelled.
    #[error("the Toxiproxy call {op} did not complete: {reason}")]
    Task {
        /// The operation.
        op: String,
        /// Why.
        reason: String,
    },
}

impl FaultError {
    /// True when the change was certainly not applied (nothing was sent, or the server refused
    /// it); false when it may have been, as with a timeout in Jepsen's vocabulary.
    pub fn is_definite(&self) -> bool {
        match self {
            FaultError::InvalidAddress { .. }
            | FaultError::Unreachable { .. }
            | FaultError::ProxyNotFound { .. }
            | FaultError::InvalidSpec { .. }
            | FaultError::Rejected { .. } => true,
            FaultError::Client { .. }
            | FaultError::UnexpectedState { .. }
            | FaultError::Panicked { .. }
            | FaultError::Task { .. } => false,
        }
    }
}
