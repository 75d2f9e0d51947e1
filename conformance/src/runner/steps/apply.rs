//! `apply` / `delete`: change the case's objects and rewrite their files in the
//! gateway's config dir; Deployments and Services changes also refresh the
//! echo pods and EndpointSlices. A write is followed by a wait until the
//! gateway's `/status` shows it (a Kubernetes API write is visible at once;
//! a folder write only after the gateway reloads).

use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::runner::case::{ApplyStep, ObjectRef};
use crate::runner::context::{CaseCtx, APPLIED_FILE};
use crate::runner::objects::{kind, name, namespace, parse_documents, read_manifest, substitute_addresses, substitute_text};
use crate::runner::status::StatusView;

/// Longest wait for the gateway to pick up a change (its debounce is 100 ms).
const REFLECT_LIMIT: Duration = Duration::from_secs(5);
/// Minimum wait after any write (changes `/status` cannot show: Secrets, Services).
const SETTLE: Duration = Duration::from_millis(300);

/// One object a step changed.
struct Change {
    kind: String,
    reference: String,
    /// `spec` (or `data`) differs, so the generation must move.
    spec_changed: bool,
    deleted: bool,
}

fn reference_of(o: &Value) -> String {
    format!("{}/{}", namespace(o).unwrap_or(""), name(o))
}

fn spec_of(o: Option<&Value>) -> Option<Value> {
    o.and_then(|o| o.get("spec").or_else(|| o.get("data")).cloned())
}

fn substituted(ctx: &CaseCtx, v: &Value) -> Result<Value, String> {
    let text = serde_yaml::to_string(v).map_err(|e| e.to_string())?;
    let mut v: Value = serde_yaml::from_str(&substitute_text(&text)).map_err(|e| e.to_string())?;
    substitute_addresses(&mut v, &ctx.placeholders);
    Ok(v)
}

fn upsert(ctx: &mut CaseCtx, o: Value, changed: &mut Vec<usize>, changes: &mut Vec<Change>) {
    let (k, r) = (kind(&o).to_string(), reference_of(&o));
    let old = spec_of(ctx.store.get(&k, &r));
    let new = spec_of(Some(&o));
    changed.push(ctx.store.upsert(o, APPLIED_FILE));
    changes.push(Change { kind: k, reference: r, spec_changed: old != new, deleted: false });
}

pub async fn apply(ctx: &mut CaseCtx, s: &ApplyStep) -> Result<(), String> {
    let before = ctx.status().await.ok();
    let mut changed = Vec::new();
    let mut changes = Vec::new();
    match s {
        ApplyStep::File(f) => {
            let path = ctx.case.manifest_root.join(f);
            let path = if path.exists() { path } else { ctx.case.upstream_dir.join(f) };
            for mut o in read_manifest(&path).map_err(|e| format!("{e:#}"))? {
                substitute_addresses(&mut o, &ctx.placeholders);
                upsert(ctx, o, &mut changed, &mut changes);
            }
        }
        ApplyStep::Inline(v) => {
            let docs = match v {
                Value::String(text) => parse_documents(&substitute_text(text)).map_err(|e| e.to_string())?,
                other => vec![other.clone()],
            };
            for d in docs {
                let o = substituted(ctx, &d)?;
                upsert(ctx, o, &mut changed, &mut changes);
            }
        }
        ApplyStep::Patch(p) => {
            let merge = substituted(ctx, &p.merge)?;
            let old = spec_of(ctx.store.get(&p.kind, &p.object));
            changed.push(ctx.store.patch(&p.kind, &p.object, &merge).map_err(|e| e.to_string())?);
            let new = spec_of(ctx.store.get(&p.kind, &p.object));
            changes.push(Change { kind: p.kind.clone(), reference: p.object.clone(), spec_changed: old != new, deleted: false });
        }
    }
    write(ctx, changed, &changes).await?;
    await_reflected(ctx, before, &changes).await;
    Ok(())
}

pub async fn delete(ctx: &mut CaseCtx, s: &ObjectRef) -> Result<(), String> {
    let before = ctx.status().await.ok();
    let fi = ctx.store.remove(&s.kind, &s.object).map_err(|e| e.to_string())?;
    let changes = [Change { kind: s.kind.clone(), reference: s.object.clone(), spec_changed: true, deleted: true }];
    write(ctx, vec![fi], &changes).await?;
    await_reflected(ctx, before, &changes).await;
    Ok(())
}

async fn write(ctx: &mut CaseCtx, mut changed: Vec<usize>, changes: &[Change]) -> Result<(), String> {
    changed.sort_unstable();
    changed.dedup();
    for fi in changed {
        ctx.store.write_file(&ctx.config_dir, fi).map_err(|e| format!("{e:#}"))?;
    }
    if changes.iter().any(|c| matches!(c.kind.as_str(), "Deployment" | "Service")) {
        ctx.sync_backends().await.map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}

/// Waits until each changed object's generation moved, or it appeared or
/// disappeared in `/status`. Gives up quietly after REFLECT_LIMIT: later
/// steps then report what the gateway shows.
async fn await_reflected(ctx: &mut CaseCtx, before: Option<StatusView>, changes: &[Change]) {
    let old: Vec<(Option<i64>, bool)> = changes
        .iter()
        .map(|c| {
            let o = before.as_ref().and_then(|v| v.find(&c.kind, &c.reference));
            (o.and_then(|o| o.generation()), o.is_some())
        })
        .collect();
    let start = Instant::now();
    let _ = ctx
        .poll(REFLECT_LIMIT, |v| {
            if start.elapsed() < SETTLE {
                return Err("settling".into());
            }
            for (c, (gen, present)) in changes.iter().zip(&old) {
                let now = v.find(&c.kind, &c.reference);
                let reflected = match (c.deleted, now) {
                    (true, None) => true,
                    (true, Some(_)) => !present,
                    // Kinds without status never show up; a new object with status appears.
                    (false, None) => !present,
                    (false, Some(n)) => !present || !c.spec_changed || n.generation() != *gen,
                };
                if !reflected {
                    return Err(format!("{} {} not reflected in /status yet", c.kind, c.reference));
                }
            }
            Ok(())
        })
        .await;
}
