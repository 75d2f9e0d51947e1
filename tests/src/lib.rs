//! Harness for integration tests that run the real `weir-gateway` binary on
//! loopback: a config folder, the gateway process, in-process backends and a
//! small HTTP client.
#![forbid(unsafe_code)]

pub mod backend;
pub mod client;
pub mod gateway;
pub mod yaml;

pub use backend::Backend;
pub use client::{get, Answer};
pub use gateway::Gateway;
