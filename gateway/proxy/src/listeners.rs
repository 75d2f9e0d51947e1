//! Dynamic listeners. Pingora binds its listeners once at start, so Weir runs
//! its own accept loops: one task per socket, bound and unbound as snapshots
//! change, each handing accepted connections to the one shared `HttpProxy`
//! (one upstream connection pool for all sockets).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora_core::apps::ServerApp;
use pingora_core::listeners::tls::Acceptor;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::{GetSocketDigest, SocketDigest, Stream};
use pingora_core::server::ShutdownWatch;
use std::os::unix::io::AsRawFd;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use weir_model::{ListenerProtocol, Snapshot};

use crate::tls::{self, SniCertResolver};

/// Pingora's own listeners bound a TLS handshake to 60 s as well.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Back-off after an accept error such as EMFILE, so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
const LISTEN_BACKLOG: u32 = 1024;

/// A bound socket and its accept task.
struct Bound {
    protocol: ListenerProtocol,
    /// Shared with the accept task, so a protocol change (HTTP ⇄ HTTPS) can
    /// restart the accept loop on the same socket without rebinding.
    socket: Arc<TcpListener>,
    resolver: Option<Arc<SniCertResolver>>,
    task: JoinHandle<()>,
}

/// The set of sockets currently served. Only the reconcile task touches it.
pub struct ListenerSet<A> {
    app: Arc<A>,
    shutdown: ShutdownWatch,
    bound: HashMap<SocketAddr, Bound>,
}

impl<A> ListenerSet<A>
where
    A: ServerApp + Send + Sync + 'static,
{
    pub fn new(app: Arc<A>, shutdown: ShutdownWatch) -> Self {
        ListenerSet {
            app,
            shutdown,
            bound: HashMap::new(),
        }
    }

    /// Makes the bound sockets match the snapshot. Sockets present before and
    /// after keep running untouched (their connections are never dropped);
    /// removed sockets stop accepting while their open connections finish.
    /// Certificates of kept HTTPS sockets are swapped in place. Returns the
    /// number of sockets that could not be bound (the caller retries later).
    pub fn reconcile(&mut self, snapshot: &Snapshot) -> usize {
        let wanted: HashMap<SocketAddr, _> = snapshot
            .listeners
            .iter()
            .map(|l| (SocketAddr::new(l.address, l.port), l))
            .collect();

        self.bound.retain(|addr, bound| {
            let keep = wanted.contains_key(addr);
            if !keep {
                log::info!("listener {addr}: closing");
                bound.task.abort();
            }
            keep
        });

        let mut failed = 0;
        for (addr, listener) in wanted {
            if let Some(bound) = self.bound.get(&addr) {
                if bound.protocol == listener.protocol {
                    if let Some(resolver) = &bound.resolver {
                        resolver.update(
                            &listener.name,
                            listener.tls.as_ref(),
                            &snapshot.certificates,
                        );
                    }
                    continue;
                }
            }
            let socket = match self.bound.remove(&addr) {
                Some(previous) => {
                    log::info!("listener {addr}: switching to {:?}", listener.protocol);
                    previous.task.abort();
                    previous.socket
                }
                None => match bind(addr) {
                    Ok(socket) => Arc::new(socket),
                    Err(e) => {
                        log::error!(
                            "listener {addr}: cannot bind {} port {}: {e}. Other listeners keep working; \
                             free the port or change the Gateway listener's port/address (retrying)",
                            addr.ip(),
                            addr.port()
                        );
                        failed += 1;
                        continue;
                    }
                },
            };
            let (resolver, acceptor) = match listener.protocol {
                ListenerProtocol::Http => (None, None),
                ListenerProtocol::Https => {
                    let resolver = Arc::new(SniCertResolver::default());
                    resolver.update(
                        &listener.name,
                        listener.tls.as_ref(),
                        &snapshot.certificates,
                    );
                    match tls::acceptor(resolver.clone()) {
                        Ok(acceptor) => (Some(resolver), Some(Arc::new(acceptor))),
                        Err(e) => {
                            log::error!("listener {addr}: TLS setup failed: {e}");
                            failed += 1;
                            continue;
                        }
                    }
                }
            };
            log::info!("listener {addr}: serving {:?}", listener.protocol);
            let task = tokio::spawn(accept_loop(
                socket.clone(),
                acceptor,
                self.app.clone(),
                self.shutdown.clone(),
            ));
            self.bound.insert(
                addr,
                Bound {
                    protocol: listener.protocol,
                    socket,
                    resolver,
                    task,
                },
            );
        }
        failed
    }

    /// Stops accepting on every socket.
    pub fn close_all(&mut self) {
        for (_, bound) in self.bound.drain() {
            bound.task.abort();
        }
    }
}

/// Wraps an accepted socket the way Pingora's own listener does, recording
/// both addresses so requests know their client and their listener.
fn l4_stream(tcp: tokio::net::TcpStream, peer: SocketAddr) -> L4Stream {
    let local = tcp.local_addr().ok();
    let mut stream = L4Stream::from(tcp);
    let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
    let _ = digest.peer_addr.set(Some(peer.into()));
    let _ = digest.local_addr.set(local.map(Into::into));
    stream.set_socket_digest(digest);
    stream
}

/// SO_REUSEADDR lets a restarted gateway rebind while old connections sit in TIME_WAIT.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop<A>(
    listener: Arc<TcpListener>,
    tls: Option<Arc<Acceptor>>,
    app: Arc<A>,
    shutdown: ShutdownWatch,
) where
    A: ServerApp + Send + Sync + 'static,
{
    let mut stop = shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        // Each connection is its own task: aborting the accept loop (listener
        // removed) never cuts connections that are already open.
        tokio::spawn(async move {
            let stream = l4_stream(tcp, peer);
            let stream: Stream = match tls {
                None => Box::new(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.tls_handshake(stream))
                        .await
                    {
                        Ok(Ok(tls_stream)) => Box::new(tls_stream),
                        Ok(Err(e)) => {
                            log::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            log::debug!("TLS handshake with {peer} timed out");
                            return;
                        }
                    }
                }
            };
            // process_new serves h1 keep-alive / h2 streams until the
            // connection ends; it never hands a stream back for h1/h2.
            let _ = app.process_new(stream, &shutdown).await;
        });
    }
}
