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
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{GetProxyDigest, GetTimingDigest, TimingDigest};
use pingora_core::protocols::{
    GetSocketDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, UniqueID, UniqueIDType,
};
use std::pin::Pin;
use std::task::{Context, Poll};
use async_trait::async_trait;
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

/// Pingora's own listeners give each accepted plain stream a small write
/// buffer (`DEFAULT_L4_WRITE_BUFFER_SIZE`, set through a crate-private
/// setter); a stream built with `L4Stream::from` has none, so every write
/// (response header, then body) becomes its own `send`. Pingora's h1/h2
/// writers flush where a response part must go out, so buffering here only
/// coalesces writes (header + body in one segment), as on Pingora's listeners.
const WRITE_BUFFER: usize = 1460;

/// An accepted plain TCP stream with a write buffer.
#[derive(Debug)]
struct Buffered(tokio::io::BufWriter<L4Stream>);

impl Buffered {
    fn new(stream: L4Stream) -> Self {
        Buffered(tokio::io::BufWriter::with_capacity(WRITE_BUFFER, stream))
    }
}

impl tokio::io::AsyncRead for Buffered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Buffered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        // BufWriter flushes what is buffered before shutting down.
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Buffered {
    async fn shutdown(&mut self) {
        if let Err(e) = tokio::io::AsyncWriteExt::shutdown(&mut self.0).await {
            log::debug!("failed to shut down connection: {e}");
        }
    }
}

impl UniqueID for Buffered {
    fn id(&self) -> UniqueIDType {
        self.0.get_ref().id()
    }
}

impl Ssl for Buffered {}

#[async_trait]
impl Peek for Buffered {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.0.get_mut().try_peek(buf).await
    }
}

impl GetTimingDigest for Buffered {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.0.get_ref().get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.0.get_ref().get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.0.get_ref().get_write_pending_time()
    }
}

impl GetProxyDigest for Buffered {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.0.get_ref().get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.0.get_mut().set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Buffered {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.0.get_ref().get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.0.get_mut().set_socket_digest(digest)
    }
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
                None => Box::new(Buffered::new(stream)),
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
