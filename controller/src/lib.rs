//! Weir's controller: reads Kubernetes objects (GatewayClass, Gateway,
//! HTTPRoute, GRPCRoute, ReferenceGrant, Service, EndpointSlice, Secret,
//! ConfigMap, Namespace) and translates them into a [`weir_model::Snapshot`]
//! plus the status each object should carry.
//!
//! - [`parse`]: multi-document YAML → typed [`Object`]s.
//! - [`translate()`]: a pure function from an [`ObjectSet`] to a
//!   [`Translation`] (snapshot, statuses, diagnostics).
//! - [`DirSource`]: the standalone source — a folder of YAML files, reloaded
//!   on demand, keeping each file's last good objects.
//!
//! Layout: `api/` holds the Gateway API serde types (one module per kind),
//! `translate/` one conversion per concern (gateway and listeners, route
//! attachment, rules, matches, filters, backends, TLS, precedence, snapshot
//! assembly, status). Tests: `tests/fixtures/*.yaml` are golden translation
//! cases; `tests/conformance_cases.rs` checks the status steps of the shared
//! Gateway API conformance cases and replays their requests on the model.
#![forbid(unsafe_code)]

pub mod api;
mod duration;
pub mod objects;
mod options;
pub mod parse;
mod source;
mod status;
mod time;
mod translate;

pub use duration::{parse_duration, DurationError};
pub use objects::{Object, ObjectKey, ObjectSet, OtherObject};
pub use options::{
    AddressPool, AddressPoolError, TranslateOptions, TranslateState, DEFAULT_CONTROLLER_NAME,
};
pub use source::DirSource;
pub use status::{Condition, Diagnostic, ObjectStatus, Translation};
pub use translate::translate;
