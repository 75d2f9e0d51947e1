//! Weir's route model.
//!
//! A [`Snapshot`] is everything one gateway serves: the sockets it listens on,
//! the virtual hosts and routes behind each socket, the backend clusters and
//! their endpoints, and the TLS certificates. It is plain data (serde, no
//! Kubernetes or Pingora types) so that the controller can build it from
//! Gateway API or Istio objects and ship it to any number of gateway replicas.
//!
//! Conventions:
//! - Routes inside a [`VirtualHost`] are already sorted by precedence; the
//!   gateway walks them in order and the first match wins. Precedence and
//!   tie-breaks are settled by the translator, never per request.
//! - Durations are [`std::time::Duration`] (serialised as `{secs, nanos}`).
//! - Names that point elsewhere in the snapshot (cluster, certificate) are
//!   keys of the snapshot's maps; a dangling name is a translator bug and the
//!   gateway treats it like an invalid backend (HTTP 500).
#![forbid(unsafe_code)]

mod route;
mod snapshot;

pub use route::*;
pub use snapshot::*;
