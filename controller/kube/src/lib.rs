//! Weir's Kubernetes mode.
//!
//! The `weir-controller` binary watches the API server, keeps every object
//! Weir reads in one in-memory [`index::Index`], translates it with the same
//! code standalone mode uses ([`weir_controller::translate`]), writes status
//! back (leader only) and streams each new [`weir_model::Snapshot`] to the
//! gateway replicas.
//!
//! - [`kinds`]: what is watched, and the RBAC those calls need.
//! - [`controller`]: starts every task below ([`run`]).
//! - [`watch`] + [`convert`]: kube-runtime watchers feeding [`index`] changes,
//!   parsed by the standalone parser.
//! - [`secrets`]: TLS Secrets fetched by name, only those Gateways reference.
//! - [`translator`]: burst coalescing, translation, publication.
//! - [`status`]: the status writer (idempotent, leader only).
//! - [`lease`]: leader election on a coordination.k8s.io Lease.
//! - [`server`] + [`auth`] + [`tls`]: the snapshot stream gateway replicas poll.
//! - [`addresses`]: Gateway `status.addresses` from the gateway Service.
#![forbid(unsafe_code)]

pub mod addresses;
pub mod auth;
pub mod controller;
pub mod convert;
pub mod index;
pub mod kinds;
pub mod lease;
pub mod secrets;
pub mod server;
pub mod status;
pub mod tls;
pub mod translator;
pub mod watch;

pub use controller::{run, Controller, ControllerOptions};
