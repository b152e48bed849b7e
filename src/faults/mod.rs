//! The fault driver (issue 4): how the rest of caplab talks to any Toxiproxy.
//!
//! Not built yet.
