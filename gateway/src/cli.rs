//! Command-line flags of `weir-gateway`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

/// The controller name Weir claims GatewayClasses for.
pub const DEFAULT_CONTROLLER_NAME: &str = "weir.dev/gateway-controller";

#[derive(Debug, Parser)]
#[command(name = "weir-gateway", version, about = "Weir: a Kubernetes ingress gateway on Pingora")]
pub struct Args {
    /// Folder of Kubernetes YAML (Gateway API objects, Services, EndpointSlices,
    /// Secrets ...). Every *.yaml / *.yml file is read; the folder is watched and
    /// reloaded on change.
    #[arg(long, value_name = "DIR", required_unless_present = "controller", conflicts_with = "controller")]
    pub config_dir: Option<PathBuf>,

    // --- Kubernetes mode (remote.rs): snapshots from weir-controller. ---
    /// Fetch route snapshots from weir-controller at this URL (http:// or
    /// https://) instead of reading --config-dir.
    #[arg(long, value_name = "URL")]
    pub controller: Option<String>,

    /// ServiceAccount token sent to the controller (re-read on every request).
    #[arg(long, value_name = "PATH", requires = "controller")]
    pub token_file: Option<PathBuf>,

    /// CA certificate (PEM) the controller's https:// certificate is checked against.
    #[arg(long, value_name = "PATH", requires = "controller")]
    pub controller_ca: Option<PathBuf>,

    /// Kubernetes mode: bind every listener on this IP (the controller does
    /// not know pod addresses). 0.0.0.0 is every interface.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0", requires = "controller")]
    pub bind_ip: std::net::IpAddr,
    // --- end of Kubernetes mode flags ---

    /// Admin API (status, config dump, readiness). Keep it on localhost: it
    /// shows the whole configuration.
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin_address: SocketAddr,

    /// Addresses handed out to Gateways, as a CIDR. A single address (/32)
    /// means every Gateway shares it and listeners on one port are merged by
    /// hostname. Use 0.0.0.0/32 to listen on every interface.
    #[arg(long, default_value = "127.0.0.1/32")]
    pub address_pool: ipnet::IpNet,

    /// GatewayClasses whose spec.controllerName equals this are ours.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,

    /// Proxy worker threads.
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,

    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub grace_period: u64,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Args {
    pub fn translate_options(&self) -> anyhow::Result<weir_controller::TranslateOptions> {
        let pool = weir_controller::AddressPool::new(self.address_pool)
            .with_context(|| format!("--address-pool {}", self.address_pool))?;
        Ok(weir_controller::TranslateOptions::new(self.controller_name.clone(), pool))
    }

    pub fn proxy_options(&self) -> weir_proxy::ProxyOptions {
        weir_proxy::ProxyOptions {
            threads: self.threads.max(1),
            grace_period: Duration::from_secs(self.grace_period),
            ..Default::default()
        }
    }
}
