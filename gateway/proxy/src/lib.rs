//! Weir's data plane: a Pingora proxy serving a `weir_model::Snapshot`.
//!
//! - [`build`] returns a Pingora `Server` (run it with `run_forever`) and a
//!   [`ProxyHandle`] through which new snapshots are pushed from any thread.
//! - Each snapshot is compiled once ([`table::RouteTable`]) and swapped in
//!   atomically; every request loads the table once and keeps it to the end.
//! - Listeners are Weir's own accept loops ([`listeners`]), reconciled on
//!   each snapshot, feeding one shared `HttpProxy` (one upstream pool).
#![forbid(unsafe_code)]

mod access_log;
pub mod balance;
pub mod cors;
pub mod decide;
pub mod errors;
mod filters;
mod listeners;
pub mod matching;
mod mirror;
mod proxy;
mod request;
mod respond;
pub mod retry;
pub mod rewrite;
mod steps;
pub mod table;
mod tls;
mod upstream;
mod upstream_tls;
mod websocket;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::apps::{HttpServerOptions, ServerApp};
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{Server, ShutdownWatch};
use pingora_core::services::background::{background_service, BackgroundService};
use pingora_proxy::HttpProxy;
use tokio::sync::watch;
use weir_model::Snapshot;

pub use access_log::TARGET as ACCESS_LOG_TARGET;
pub use errors::{ProxyError, ResponseFlag};

use crate::listeners::ListenerSet;
use crate::mirror::Mirror;
use crate::proxy::Served;
use crate::proxy::WeirProxy;
use crate::table::RouteTable;

/// Upper bound on attempts per request, whatever a route asks for.
const MAX_ATTEMPTS: usize = 32;

/// How often sockets that failed to bind are retried.
const BIND_RETRY: Duration = Duration::from_secs(1);

/// Idle downstream HTTP/2 connections are closed after this long.
const H2_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How the data plane runs.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Worker threads serving connections.
    pub threads: usize,
    /// How long a terminating gateway keeps draining connections (Pingora's
    /// `grace_period_seconds`; keep it below Kubernetes'
    /// terminationGracePeriodSeconds).
    pub grace_period: Duration,
    /// How long runtimes get to stop after the grace period.
    pub graceful_shutdown_timeout: Duration,
    /// Idle upstream connections kept for reuse (per thread).
    pub upstream_keepalive_pool_size: usize,
    /// Mirror copies in flight at most; further copies are dropped.
    pub max_mirrors_in_flight: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            grace_period: Duration::from_secs(10),
            graceful_shutdown_timeout: Duration::from_secs(2),
            upstream_keepalive_pool_size: 128,
            max_mirrors_in_flight: 256,
        }
    }
}

/// State shared by the handle, the proxy and the listener task.
struct Shared {
    table: Arc<ArcSwap<Served>>,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    /// Version of the snapshot whose listeners are bound, plus one (0 = none).
    served: AtomicU64,
}

/// Pushes snapshots into the running data plane. Cheap to clone.
#[derive(Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// Compiles and swaps in a snapshot, then has the listener task bind new
    /// sockets and close removed ones. Requests in flight finish on the
    /// snapshot they started with. A snapshot older than the current one is
    /// ignored.
    pub fn update(&self, snapshot: Arc<Snapshot>) {
        let current = self.shared.table.load().table.version;
        let have_one = self.shared.snapshots.borrow().is_some();
        if have_one && snapshot.version < current {
            log::warn!(
                "ignoring snapshot version {} older than {current}",
                snapshot.version
            );
            return;
        }
        let (table, mut problems) = RouteTable::compile(&snapshot);
        let upstream_tls =
            upstream_tls::compile(&snapshot.clusters, &snapshot.certificates, &mut problems);
        for problem in problems {
            log::warn!("snapshot {}: {problem}", snapshot.version);
        }
        self.shared.table.store(Arc::new(Served {
            table,
            upstream_tls,
        }));
        self.shared.snapshots.send_replace(Some(snapshot));
    }

    /// The version whose listeners are live; `None` before the first one.
    pub fn served_version(&self) -> Option<u64> {
        self.shared.served.load(Ordering::Acquire).checked_sub(1)
    }
}

/// The data plane as a Pingora background service: it owns the accept loops
/// and the shared `HttpProxy`.
pub struct DataPlane {
    shared: Arc<Shared>,
    app: Arc<HttpProxy<WeirProxy>>,
}

impl DataPlane {
    /// Serves until `shutdown` flips: reconciles listeners on every snapshot.
    pub async fn serve(&self, mut shutdown: ShutdownWatch) {
        let mut snapshots = self.shared.snapshots.subscribe();
        let mut listeners = ListenerSet::new(self.app.clone(), shutdown.clone());
        let mut snapshot: Option<Arc<Snapshot>> = None;
        let mut unbound = 0;
        let mut refresh = true;
        loop {
            if refresh {
                snapshot = snapshots.borrow_and_update().clone();
            }
            if let Some(snapshot) = &snapshot {
                unbound = listeners.reconcile(snapshot);
                self.shared
                    .served
                    .store(snapshot.version + 1, Ordering::Release);
            }
            // Sockets that failed to bind (port busy) are retried until they bind.
            let retry = async {
                if unbound > 0 {
                    tokio::time::sleep(BIND_RETRY).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    refresh = true;
                }
                _ = retry => refresh = false,
                _ = shutdown.changed() => break,
            }
        }
        listeners.close_all();
        // Wakes idle keep-alive connections so they close (what Pingora's own
        // listening service does on shutdown).
        self.app.cleanup().await;
    }
}

#[async_trait]
impl BackgroundService for DataPlane {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.serve(shutdown).await;
    }
}

/// Builds the data plane without a Pingora `Server` (embedding and tests):
/// run [`DataPlane::serve`] on a tokio runtime.
pub fn build_data_plane(opts: &ProxyOptions) -> (DataPlane, ProxyHandle) {
    let conf = server_conf(opts);
    let table = Arc::new(ArcSwap::from_pointee(Served::default()));
    let proxy = WeirProxy {
        table: table.clone(),
        mirror: Mirror::new(opts.max_mirrors_in_flight),
    };
    let mut app = pingora_proxy::http_proxy(&Arc::new(conf), proxy);
    let mut server_options = HttpServerOptions::default();
    // Cleartext HTTP/2 with prior knowledge on plain ports (preface peek).
    server_options.h2c = true;
    // Idle downstream h2 connections otherwise live forever (pingora #563).
    server_options.h2_idle_timeout = Some(H2_IDLE_TIMEOUT);
    app.server_options = Some(server_options);
    let shared = Arc::new(Shared {
        table,
        snapshots: watch::channel(None).0,
        served: AtomicU64::new(0),
    });
    let handle = ProxyHandle {
        shared: shared.clone(),
    };
    (
        DataPlane {
            shared,
            app: Arc::new(app),
        },
        handle,
    )
}

fn server_conf(opts: &ProxyOptions) -> ServerConf {
    ServerConf {
        threads: opts.threads.max(1),
        daemon: false,
        grace_period_seconds: Some(opts.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(opts.graceful_shutdown_timeout.as_secs()),
        upstream_keepalive_pool_size: opts.upstream_keepalive_pool_size,
        // Only a safety cap: each route's retry budget decides the attempts.
        max_retries: MAX_ATTEMPTS,
        ..ServerConf::default()
    }
}

/// The Pingora server running the data plane, and the handle to feed it.
/// Call `server.run_forever()` on the main thread; call
/// [`ProxyHandle::update`] from anywhere (also before the server runs: the
/// listeners are bound once it starts).
pub fn build(opts: ProxyOptions) -> (Server, ProxyHandle) {
    let (data_plane, handle) = build_data_plane(&opts);
    let mut server = Server::new_with_opt_and_conf(None, server_conf(&opts));
    let mut service = background_service("weir data plane", data_plane);
    // Connections are served on this service's runtime.
    service.threads = Some(opts.threads.max(1));
    server.add_service(service);
    (server, handle)
}
