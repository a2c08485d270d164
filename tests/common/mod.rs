//! Helpers shared by the `hepml` binary's integration tests.
#![allow(dead_code, unused_imports)]

pub use testutil::{python, repo, script};

/// A path under ../shared/data as a string, for argv and configs (see [`testutil::shared`]).
pub fn shared(rel: &str) -> String {
    testutil::shared(rel).display().to_string()
}
