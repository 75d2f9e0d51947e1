//! `weir-gateway`: Weir's edge proxy.
//!
//! Standalone mode (the default): configuration comes from a folder of
//! Kubernetes YAML (Gateway API objects, Services, EndpointSlices, Secrets),
//! translated by the same code the in-cluster controller runs, and reloaded
//! whenever the folder changes. The proxy itself runs on Pingora; a small
//! admin server (localhost by default) reports object status and dumps the
//! route model.
#![forbid(unsafe_code)]

mod admin;
mod cli;
mod remote;
mod watch;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    init_logging(&args.log_format);

    let translate_options = args.translate_options()?;
    let (server, proxy) = weir_proxy::build(args.proxy_options());
    let admin_state = admin::AdminState::new();

    // The folder watcher and the admin server run on their own runtime so the
    // proxy's worker threads only ever serve traffic.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("weir-control")
        .enable_all()
        .build()
        .context("starting the control runtime")?;

    let admin_listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.admin_address))
        .with_context(|| {
            format!(
                "binding the admin address {}: pick a free port with --admin-address",
                args.admin_address
            )
        })?;
    log::info!("admin API on http://{}", args.admin_address);

    // Kubernetes mode: snapshots come from weir-controller (remote.rs).
    if let Some(url) = &args.controller {
        let remote = remote::RemoteSource::new(url, args.token_file.clone(), args.controller_ca.clone(), args.bind_ip)?;
        let (remote_proxy, admin_proxy) = (proxy.clone(), Arc::new(proxy.clone()));
        std::thread::Builder::new()
            .name("weir-control".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(remote.run(remote_proxy, admin_state.clone()));
                    admin::serve(admin_listener, admin_state, admin_proxy).await;
                })
            })
            .context("starting the control thread")?;
        server.run_forever();
    }
    let config_dir = args.config_dir.clone().context("--config-dir or --controller is required")?;

    let source = weir_controller::DirSource::new(config_dir.clone(), translate_options);
    let watcher = watch::ConfigWatcher::new(source, proxy.clone(), admin_state.clone());
    // The first translation happens before the proxy starts, so the first
    // listeners are bound with a complete configuration.
    watcher.reload_now();

    let admin_proxy = proxy.clone();
    std::thread::Builder::new()
        .name("weir-control".into())
        .spawn(move || {
            runtime.block_on(async move {
                let watch_task = tokio::spawn(watcher.run(config_dir));
                admin::serve(admin_listener, admin_state, Arc::new(admin_proxy)).await;
                watch_task.abort();
            })
        })
        .context("starting the control thread")?;

    server.run_forever()
}

fn init_logging(format: &cli::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}
