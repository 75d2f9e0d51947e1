//! `apply` / `delete`: change the case's objects and rewrite their files in the
//! gateway's config dir; Deployments and Services changes also refresh the
//! echo pods and EndpointSlices.

use serde_yaml::Value;

use crate::runner::case::{ApplyStep, ObjectRef};
use crate::runner::context::{CaseCtx, APPLIED_FILE};
use crate::runner::objects::{kind, parse_documents, read_manifest, substitute_addresses, substitute_text};

fn substituted(ctx: &CaseCtx, v: &Value) -> Result<Value, String> {
    let text = serde_yaml::to_string(v).map_err(|e| e.to_string())?;
    let mut v: Value = serde_yaml::from_str(&substitute_text(&text)).map_err(|e| e.to_string())?;
    substitute_addresses(&mut v, &ctx.placeholders);
    Ok(v)
}

pub async fn apply(ctx: &mut CaseCtx, s: &ApplyStep) -> Result<(), String> {
    let mut changed = Vec::new();
    let mut touches_backends = false;
    match s {
        ApplyStep::File(f) => {
            let path = ctx.case.manifest_root.join(f);
            let path = if path.exists() { path } else { ctx.case.upstream_dir.join(f) };
            let objs = read_manifest(&path).map_err(|e| format!("{e:#}"))?;
            for mut o in objs {
                substitute_addresses(&mut o, &ctx.placeholders);
                touches_backends |= matches!(kind(&o), "Deployment" | "Service");
                changed.push(ctx.store.upsert(o, APPLIED_FILE));
            }
        }
        ApplyStep::Inline(v) => {
            let docs = match v {
                Value::String(text) => parse_documents(&substitute_text(text)).map_err(|e| e.to_string())?,
                other => vec![other.clone()],
            };
            for d in docs {
                let o = substituted(ctx, &d)?;
                touches_backends |= matches!(kind(&o), "Deployment" | "Service");
                changed.push(ctx.store.upsert(o, APPLIED_FILE));
            }
        }
        ApplyStep::Patch(p) => {
            let merge = substituted(ctx, &p.merge)?;
            touches_backends |= matches!(p.kind.as_str(), "Deployment" | "Service");
            changed.push(ctx.store.patch(&p.kind, &p.object, &merge).map_err(|e| e.to_string())?);
        }
    }
    write(ctx, changed, touches_backends).await
}

pub async fn delete(ctx: &mut CaseCtx, s: &ObjectRef) -> Result<(), String> {
    let fi = ctx.store.remove(&s.kind, &s.object).map_err(|e| e.to_string())?;
    write(ctx, vec![fi], matches!(s.kind.as_str(), "Deployment" | "Service")).await
}

async fn write(ctx: &mut CaseCtx, mut changed: Vec<usize>, touches_backends: bool) -> Result<(), String> {
    changed.sort_unstable();
    changed.dedup();
    for fi in changed {
        ctx.store.write_file(&ctx.config_dir, fi).map_err(|e| format!("{e:#}"))?;
    }
    if touches_backends {
        ctx.sync_backends().await.map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}
