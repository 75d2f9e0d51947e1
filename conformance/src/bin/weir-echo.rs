//! `weir-echo`: the echo backend the conformance runner starts for every
//! Deployment replica (CONTRACTS.md "weir-echo command line"; the answers are
//! FORMAT.md's "Echo backend contract").

#![forbid(unsafe_code)]

#[path = "../echo/mod.rs"]
mod echo;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "weir-echo", about = "Gateway API conformance echo backend")]
struct Args {
    /// Namespace echoed in every answer.
    #[arg(long)]
    namespace: String,
    /// Pod name echoed in every answer (starts with the Deployment's name).
    #[arg(long)]
    pod: String,
    /// Service name echoed in every answer.
    #[arg(long, default_value = "")]
    service: String,
    /// HTTP/1.1 (and h2c prior knowledge) port; the TCP port with --tcp.
    #[arg(long)]
    http: SocketAddr,
    /// Cleartext HTTP/2 port.
    #[arg(long)]
    h2c: Option<SocketAddr>,
    /// HTTPS port (h2 and http/1.1 by ALPN); the TLS port with --tcp.
    #[arg(long, requires_all = ["cert", "key"])]
    tls: Option<SocketAddr>,
    /// PEM certificate chain for --tls.
    #[arg(long, requires = "tls")]
    cert: Option<PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, requires = "tls")]
    key: Option<PathBuf>,
    /// PEM CA certificates: ask TLS clients for a certificate and verify it when sent.
    #[arg(long, requires = "tls")]
    client_ca: Option<PathBuf>,
    /// Serve the gRPC echo service on the HTTP ports.
    #[arg(long, conflicts_with = "tcp")]
    grpc: bool,
    /// TCP echo server mode.
    #[arg(long)]
    tcp: bool,
    /// Control API port (never reachable through the gateway).
    #[arg(long)]
    control: SocketAddr,
}

impl Args {
    fn config(self) -> echo::Config {
        let tls = match (self.tls, self.cert, self.key) {
            (Some(addr), Some(cert), Some(key)) => {
                Some((addr, echo::tls::TlsFiles { cert, key, client_ca: self.client_ca }))
            }
            _ => None,
        };
        echo::Config {
            identity: echo::Identity {
                namespace: self.namespace,
                ingress: String::new(),
                service: self.service,
                pod: self.pod,
            },
            http: self.http,
            h2c: self.h2c,
            tls,
            grpc: self.grpc,
            tcp: self.tcp,
            control: self.control,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weir-echo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let running = echo::start(args.config()).await?;

    // Bound addresses first (on stderr, for port-0 callers), then READY.
    eprintln!("weir-echo: listening http={}", running.http);
    if let Some(addr) = running.h2c {
        eprintln!("weir-echo: listening h2c={addr}");
    }
    if let Some(addr) = running.tls {
        eprintln!("weir-echo: listening tls={addr}");
    }
    eprintln!("weir-echo: listening control={}", running.control);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY")?;
    stdout.flush()?;
    drop(stdout);

    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM, exiting"),
        _ = interrupt.recv() => tracing::info!("SIGINT, exiting"),
    }
    drop(running);
    Ok(())
}
