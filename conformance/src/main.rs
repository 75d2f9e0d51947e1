//! `weir-conformance`: runs the conformance cases against the real
//! `weir-gateway` and `weir-echo` binaries and writes a ConformanceReport.
#![forbid(unsafe_code)]

mod runner;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "weir-conformance", about = "Gateway API / Istio conformance runner for Weir")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the cases and write the report.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// A folder of case files (repeatable). Its sibling `upstream/` holds the manifests.
    #[arg(long = "cases", required = true)]
    cases: Vec<PathBuf>,
    /// Where to write the ConformanceReport YAML.
    #[arg(long)]
    report: PathBuf,
    /// The weir-gateway binary (default: next to this executable).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// The weir-echo binary (default: next to this executable).
    #[arg(long)]
    echo_bin: Option<PathBuf>,
    /// Only cases whose name matches this regex.
    #[arg(long)]
    filter: Option<String>,
    /// Cases run at once, each with its own gateway.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Time limit of status steps, in seconds.
    #[arg(long, default_value_t = 30)]
    status_timeout: u64,
    /// Time limit for requests to become consistent, in seconds.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Time limit of one whole case, in seconds.
    #[arg(long, default_value_t = 300)]
    case_timeout: u64,
    /// Diagnostic: run cases whose features Weir does not claim too (the
    /// report then says `mode: try-unclaimed`; it is not a conformance claim).
    #[arg(long)]
    try_unclaimed: bool,
    /// Keep the per-case config dirs and echo files (under the work dir) for debugging.
    #[arg(long)]
    keep_work: bool,
    /// Keep gateway logs in this folder (default: a fresh folder under the temp dir).
    #[arg(long)]
    logs_dir: Option<PathBuf>,
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Command::Run(args) = cli.command;
    let filter = match args.filter.as_deref().map(regex::Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("--filter: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    runner::features::set_try_unclaimed(args.try_unclaimed);
    let opts = runner::RunOptions {
        cases: args.cases,
        report: args.report,
        gateway_bin: args.gateway_bin.unwrap_or_else(|| sibling("weir-gateway")),
        echo_bin: args.echo_bin.unwrap_or_else(|| sibling("weir-echo")),
        filter,
        jobs: args.jobs,
        limits: runner::context::Limits {
            status: Duration::from_secs(args.status_timeout),
            requests: Duration::from_secs(args.request_timeout),
            gateway_ready: Duration::from_secs(30),
            poll: Duration::from_millis(100),
        },
        case_timeout: Duration::from_secs(args.case_timeout),
        keep_logs_dir: args.logs_dir,
        keep_work: args.keep_work,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Ctrl-C: dropping the runtime drops every child handle (kill_on_drop).
    let result = rt.block_on(async {
        tokio::select! {
            r = runner::run(opts) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("weir-conformance: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
