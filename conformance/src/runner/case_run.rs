//! Runs one case: builds its objects, starts echo pods and a gateway, performs
//! the steps in order, and cleans up whatever happens.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::case::{LoadedCase, Step};
use super::context::{CaseCtx, RunShared, BASE_FILE};
use super::features::requires_met;
use super::gateway_process::GatewayProcess;
use super::objects::{
    file_name_for, gateway_class, name, read_manifest, substitute_addresses, substitute_text, ObjectStore, Placeholders,
    GATEWAY_CLASS_NAME,
};
use super::report::{CaseResult, Outcome};
use super::steps::run_step;

/// Address pool of a slot: 127.(20+slot).0.0/16.
pub fn pool_for(slot: usize) -> (String, Placeholders) {
    let second = 20 + slot as u8;
    (
        format!("127.{second}.0.0/16"),
        Placeholders { usable: Ipv4Addr::new(127, second, 200, 1).to_string(), unusable: "192.0.2.1".into() },
    )
}

/// The objects of a case before any step runs.
pub fn build_store(shared: &RunShared, lc: &LoadedCase, case_generated: &[serde_yaml::Value], placeholders: &Placeholders) -> anyhow::Result<ObjectStore> {
    let mut store = ObjectStore::default();
    let mut generated = shared.generated.objects.clone();
    generated.extend(case_generated.iter().cloned());
    store.add_file("00-generated.yaml", generated);
    if let Some(base) = &lc.base_manifest {
        store.add_file(BASE_FILE, read_manifest(base)?);
    } else if lc.istio && !lc.case.manifests.iter().any(|m| m == "base.yaml") {
        let base = lc.manifest_root.join("base.yaml");
        if base.exists() {
            store.add_file(BASE_FILE, read_manifest(&base)?);
        }
    }
    for (i, m) in lc.case.manifests.iter().enumerate() {
        let path = lc.manifest_root.join(m);
        let objs = read_manifest(&path).with_context(|| format!("manifest {m}"))?;
        // Istio cases list their base as a manifest: it is still the shared base.
        let file = if lc.istio && m == "base.yaml" { BASE_FILE.to_string() } else { file_name_for(&format!("2{i}"), m) };
        store.add_file(file, objs);
    }
    if !lc.case.objects.is_empty() {
        let text = lc.case.objects.iter().map(|o| serde_yaml::to_string(o).unwrap_or_default()).collect::<Vec<_>>().join("---\n");
        store.add_file("30-objects.yaml", super::objects::parse_documents(&substitute_text(&text))?);
    }
    if !store.of_kind("GatewayClass").any(|c| name(c) == GATEWAY_CLASS_NAME) {
        store.add_file("01-gatewayclass.yaml", vec![gateway_class()]);
    }
    for f in &mut store.files {
        for o in &mut f.objects {
            substitute_addresses(o, placeholders);
        }
    }
    Ok(store)
}

pub async fn run_case(shared: Arc<RunShared>, lc: LoadedCase, slot: usize, work_dir: std::path::PathBuf) -> CaseResult {
    let start = Instant::now();
    let case = lc.case.clone();
    let outcome = match run_inner(shared, lc, slot, &work_dir).await {
        Ok(()) => Outcome::Passed,
        Err(e) => Outcome::Failed(e),
    };
    CaseResult::of(&case, outcome, start.elapsed().as_secs_f64())
}

async fn run_inner(shared: Arc<RunShared>, lc: LoadedCase, slot: usize, work_dir: &std::path::Path) -> Result<(), String> {
    let (pool, placeholders) = pool_for(slot);
    let mut case_secrets = shared.generated.child();
    case_secrets.generate(&lc.case.secrets).map_err(|e| format!("setup: case secrets: {e:#}"))?;
    let store = build_store(&shared, &lc, &case_secrets.objects, &placeholders).map_err(|e| format!("setup: {e:#}"))?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-", lc.case.name))
        .tempdir_in(work_dir)
        .map_err(|e| format!("setup: temp dir: {e}"))?;
    let config_dir = dir.path().to_path_buf();
    let private_backends = lc.case.steps.iter().any(|s| matches!(s.kind, Step::BackendControl(_)));
    let mut ctx = CaseCtx {
        shared: shared.clone(),
        case: lc.clone(),
        store,
        config_dir: config_dir.clone(),
        gateway: None,
        pods: HashMap::new(),
        started_from: HashMap::new(),
        private_backends,
        remembered: HashMap::new(),
        cert_requested: None,
        placeholders,
        case_secrets,
        step_index: 0,
        step_log_offsets: Vec::new(),
        applied_addresses: HashMap::new(),
    };
    ctx.applied_addresses = ctx
        .store
        .of_kind("Gateway")
        .filter_map(|g| {
            let addrs = g.get("spec")?.get("addresses")?.as_sequence()?.clone();
            Some((format!("{}/{}", super::objects::namespace(g).unwrap_or(""), name(g)), addrs))
        })
        .collect();
    ctx.store.write_all(&config_dir).map_err(|e| format!("setup: writing config: {e:#}"))?;
    ctx.sync_backends().await.map_err(|e| format!("setup: echo backends: {e:#}"))?;
    let log_path = shared.log_dir.join(format!("{}.gateway.log", lc.case.name));
    let gw = GatewayProcess::start(&shared.gateway_bin, &config_dir, &pool, log_path, shared.limits.gateway_ready)
        .await
        .map_err(|e| format!("setup: {e:#}"))?;
    ctx.gateway = Some(gw);
    let result = run_steps(&mut ctx).await;
    // Stop the gateway and wait for it, so the next case on this slot can bind its addresses.
    if let Some(gw) = ctx.gateway.as_mut() {
        gw.stop().await;
    }
    result?;
    // Dropping ctx kills the gateway and private echo pods; `dir` is removed
    // (unless the run keeps its work dir).
    drop(ctx);
    if shared.keep_work {
        let _ = dir.keep();
    }
    Ok(())
}

async fn run_steps(ctx: &mut CaseCtx) -> Result<(), String> {
    let steps = ctx.case.case.steps.clone();
    for i in 0..steps.len() {
        ctx.step_index = i;
        let offset = ctx.gateway.as_ref().and_then(|g| std::fs::metadata(&g.log_path).ok()).map_or(0, |m| m.len());
        ctx.step_log_offsets.push(offset);
        if !requires_met(&steps[i].requires) {
            continue;
        }
        if let Err(e) = run_step(ctx, &steps, i).await {
            let kind = steps[i].kind.kind_name();
            let mut msg = format!("step {} ({kind}): {e}", i + 1);
            if let Some(gw) = ctx.gateway.as_mut() {
                if let Some(exit) = gw.exited() {
                    msg.push_str(&format!(" [weir-gateway exited: {exit}]"));
                }
                let tail = gw.problem_tail(3);
                if !tail.is_empty() {
                    msg.push_str(&format!(" [gateway log: {}]", tail.join(" | ")));
                }
            }
            return Err(msg);
        }
    }
    Ok(())
}
