//! Helpers shared by the injector integration tests (all from `testutil`).
#![allow(unused_imports)]

pub use testutil::{python, repo as repo_root, script as run_script, shared, try_script};
