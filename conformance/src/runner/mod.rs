//! The conformance runner: reads cases, runs them in parallel against real
//! `weir-gateway` and `weir-echo` processes, and reports per profile.

pub mod backends;
pub mod base64;
pub mod case;
pub mod case_run;
pub mod case_steps;
pub mod compare;
pub mod context;
pub mod endpoints;
pub mod features;
pub mod gateway_process;
pub mod http_client;
pub mod objects;
pub mod report;
pub mod secrets;
pub mod status;
pub mod steps;
pub mod tls_client;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use backends::BackendPool;
use case::LoadedCase;
use context::{Limits, RunShared};
use report::{CaseResult, Outcome};

pub struct RunOptions {
    pub cases: Vec<PathBuf>,
    pub report: PathBuf,
    pub gateway_bin: PathBuf,
    pub echo_bin: PathBuf,
    pub filter: Option<regex::Regex>,
    pub jobs: usize,
    pub limits: Limits,
    pub case_timeout: Duration,
    pub keep_logs_dir: Option<PathBuf>,
    pub keep_work: bool,
}

/// Returns the number of failed cases.
pub async fn run(opts: RunOptions) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut all: Vec<LoadedCase> = Vec::new();
    for dir in &opts.cases {
        if !dir.exists() {
            println!("cases dir {} is absent; skipping it", dir.display());
            continue;
        }
        all.extend(case::load_dir(dir)?);
    }
    if let Some(f) = &opts.filter {
        all.retain(|c| f.is_match(&c.case.name));
    }
    if all.is_empty() {
        bail!("no cases to run");
    }
    for bin in [&opts.gateway_bin, &opts.echo_bin] {
        if !bin.exists() {
            bail!("{} does not exist (build it or pass --gateway-bin/--echo-bin)", bin.display());
        }
    }
    let upstream = all
        .iter()
        .map(|c| c.upstream_dir.clone())
        .find(|u| u.exists())
        .unwrap_or_else(|| PathBuf::from("upstream"));
    let levels = report::load_index(&upstream.join("INDEX.yaml"));
    let api_version = report::gateway_api_version(&upstream);

    let root = tempfile::Builder::new().prefix("weir-conformance-").tempdir().context("creating the work dir")?;
    let log_dir = match &opts.keep_logs_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("weir-conformance-logs-{}", std::process::id())),
    };
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let root_path = root.path().to_path_buf();
    let root = if opts.keep_work {
        let kept = root.keep();
        println!("keeping the work dir {}", kept.display());
        None
    } else {
        Some(root)
    };
    let work_dir = root_path.join("work");
    std::fs::create_dir_all(&work_dir)?;

    let mut generated = secrets::Generated::default();
    let secrets_file = upstream.join("SECRETS.yaml");
    if secrets_file.exists() {
        generated.generate(&secrets::load_specs(&secrets_file)?)?;
    }
    let shared = Arc::new(RunShared {
        gateway_bin: opts.gateway_bin.clone(),
        limits: opts.limits.clone(),
        generated,
        pool: BackendPool::new(opts.echo_bin.clone(), root_path.join("echo")),
        log_dir: log_dir.clone(),
        keep_work: opts.keep_work,
    });

    let mut results: Vec<CaseResult> = Vec::new();
    let mut to_run = Vec::new();
    for c in all {
        match features::skip_reason(&c.case) {
            Some(why) => results.push(CaseResult::of(&c.case, Outcome::Skipped(why), 0.0)),
            None => to_run.push(c),
        }
    }
    println!("running {} cases ({} skipped) with {} jobs; logs in {}", to_run.len(), results.len(), opts.jobs, log_dir.display());

    let jobs = opts.jobs.max(1);
    let slots = Arc::new(std::sync::Mutex::new((0..jobs).collect::<Vec<usize>>()));
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut handles = Vec::new();
    for c in to_run {
        let permit = sem.clone().acquire_owned().await?;
        let slot = slots.lock().map_err(|_| anyhow::anyhow!("slot lock poisoned"))?.pop().unwrap_or(0);
        let shared = shared.clone();
        let slot_guard = SlotGuard { slots: slots.clone(), slot };
        let work_dir = work_dir.clone();
        let timeout = opts.case_timeout;
        let case_for_panic = c.case.clone();
        handles.push((case_for_panic, tokio::spawn(async move {
            let case = c.case.clone();
            let start = Instant::now();
            let r = match tokio::time::timeout(timeout, case_run::run_case(shared, c, slot, work_dir)).await {
                Ok(r) => r,
                Err(_) => {
                    // The dropped case killed its gateway without waiting: give the
                    // process a moment to release the slot's addresses.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    CaseResult::of(&case, Outcome::Failed(format!("case did not finish within {timeout:?}")), start.elapsed().as_secs_f64())
                }
            };
            let mark = match &r.outcome {
                Outcome::Passed => "PASS",
                Outcome::Failed(_) => "FAIL",
                Outcome::Skipped(_) => "SKIP",
            };
            println!("{mark} {} ({:.1}s)", r.name, r.seconds);
            drop(slot_guard);
            drop(permit);
            r
        })));
    }
    for (case, h) in handles {
        match h.await {
            Ok(r) => results.push(r),
            // A runner bug must not make a case disappear from the report.
            Err(e) => results.push(CaseResult::of(&case, Outcome::Failed(format!("runner task failed: {e}")), 0.0)),
        }
    }
    drop(shared);
    drop(root);

    let yaml = report::report_yaml(&results, &levels, &api_version, env!("CARGO_PKG_VERSION"));
    if let Some(parent) = opts.report.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&opts.report, yaml).with_context(|| format!("writing {}", opts.report.display()))?;
    println!();
    println!("report: {}; gateway logs: {}; took {:.0}s", opts.report.display(), log_dir.display(), started.elapsed().as_secs_f64());
    print!("{}", report::summary(&results, &levels));
    Ok(results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count())
}

/// Gives an address/port slot back when a case ends, even by panic.
struct SlotGuard {
    slots: Arc<std::sync::Mutex<Vec<usize>>>,
    slot: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.lock() {
            s.push(self.slot);
        }
    }
}
