//! `weir-controller`: Weir's Kubernetes-mode controller. Watches the API
//! server, writes status (leader only) and serves route snapshots to the
//! gateway replicas (`weir-gateway --controller URL`).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use weir_kube::auth::{Authenticator, TokenReviewer};
use weir_kube::lease::LeaseOptions;
use weir_kube::server::{SnapshotServer, POLL_TIMEOUT};
use weir_kube::ControllerOptions;

#[derive(Debug, Parser)]
#[command(name = "weir-controller", version, about = "Weir's Kubernetes controller: API server → route snapshots for weir-gateway replicas")]
struct Args {
    /// Where gateway replicas fetch snapshots (and /ready, /healthz probes).
    #[arg(long, default_value = "0.0.0.0:9443")]
    listen_address: SocketAddr,
    /// PEM certificate for the snapshot server; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// GatewayClasses whose spec.controllerName equals this are ours.
    #[arg(long, default_value = weir_controller::DEFAULT_CONTROLLER_NAME)]
    controller_name: String,
    /// The Service in front of the gateway replicas, NAMESPACE/NAME; its
    /// LoadBalancer ingress (else ClusterIP) becomes each Gateway's address.
    #[arg(long, value_name = "NAMESPACE/NAME", default_value = "weir-system/weir-gateway")]
    gateway_service: String,
    /// ServiceAccounts allowed to fetch snapshots (repeatable), as
    /// `system:serviceaccount:NAMESPACE:NAME`.
    #[arg(long = "allow-gateway", default_value = "system:serviceaccount:weir-system:weir-gateway")]
    allowed_gateways: Vec<String>,
    /// Audience gateway tokens must be issued for (projected token volume).
    #[arg(long, default_value = "weir-controller")]
    token_audience: String,
    /// Namespace of the leader-election Lease (usually the pod's).
    #[arg(long, default_value = "weir-system")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "weir-controller")]
    lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long)]
    identity: Option<String>,
    /// Write status without leader election (a single replica only).
    #[arg(long)]
    no_leader_election: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// How long a Lease holds without renewal, and how often it is renewed.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const LEASE_RENEW: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    let gateway_service = args
        .gateway_service
        .split_once('/')
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .with_context(|| format!("--gateway-service {:?}: expected NAMESPACE/NAME", args.gateway_service))?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "weir-controller".into(), |h| h.trim().to_string())
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(weir_kube::tls::acceptor(cert, key)?),
        _ => None,
    };
    let client = kube::Client::try_default()
        .await
        .context("connecting to the API server (in-cluster config or KUBECONFIG)")?;
    let lease = (!args.no_leader_election).then(|| LeaseOptions {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity: identity.clone(),
        duration: LEASE_DURATION,
        renew_every: LEASE_RENEW,
    });
    let opts = ControllerOptions {
        controller_name: args.controller_name.clone(),
        gateway_service: Some(gateway_service),
        lease,
        secret_refresh: weir_kube::secrets::REFRESH_INTERVAL,
    };
    let listener = tokio::net::TcpListener::bind(args.listen_address)
        .await
        .with_context(|| format!("binding --listen-address {}", args.listen_address))?;
    let lease = opts.lease.clone();
    let controller = weir_kube::run(client.clone(), opts);
    let auth: Arc<dyn Authenticator> =
        Arc::new(TokenReviewer::new(client.clone(), vec![args.token_audience.clone()], args.allowed_gateways.clone()));
    let server = SnapshotServer::new(controller.snapshots.clone(), auth, POLL_TIMEOUT);
    log::info!(
        "{identity}: serving snapshots on {}://{}",
        if tls.is_some() { "https" } else { "http" },
        args.listen_address
    );
    tokio::select! {
        _ = server.serve(listener, tls) => {}
        _ = tokio::signal::ctrl_c() => log::info!("interrupted; stopping"),
        _ = sigterm() => log::info!("SIGTERM; stopping"),
    }
    drop(controller);
    if let Some(lease) = lease {
        weir_kube::lease::LeaderElector::release(client, &lease).await;
    }
    Ok(())
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => drop(signal.recv().await),
        Err(_) => std::future::pending().await,
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
