//! `custom` steps: the recurring prose procedures of the transcriptions are
//! recognised by their text (custom_recognise.rs) and run here; any other text
//! makes the case skipped (see features.rs).

use std::time::{Duration, Instant};

use crate::runner::case::Step;
use crate::runner::context::CaseCtx;
use crate::runner::status::{str_field, StatusView};
use crate::runner::steps::custom_procedures::{applied_addresses, header_names_backend, mirror_distribution, setup_endpoint_slices};
pub use crate::runner::steps::custom_recognise::{recognise, Custom, Then};
use crate::runner::steps::status_steps::check_zero_routes;

fn latest_gateway_conditions(view: &StatusView, gateway: &str) -> Result<(), String> {
    let gw = view.require("Gateway", gateway)?;
    gw.conditions_current().map_err(|e| format!("Gateway {gateway}: {e}"))?;
    if gw.conditions().is_empty() {
        return Err(format!("Gateway {gateway} has no status conditions yet"));
    }
    Ok(())
}

fn namespaces_ready(view: &StatusView, ctx_gateways: &[(String, bool)]) -> Result<(), String> {
    for (gw, skip) in ctx_gateways {
        if *skip {
            continue;
        }
        let s = view.require("Gateway", gw)?;
        s.conditions_current().map_err(|e| format!("Gateway {gw}: {e}"))?;
        crate::runner::status::conditions_match(
            s.conditions(),
            &[
                crate::runner::case::ConditionExpect { type_: "Accepted".into(), status: "True".into(), reason: None },
                crate::runner::case::ConditionExpect { type_: "Programmed".into(), status: "True".into(), reason: None },
            ],
        )
        .map_err(|e| format!("Gateway {gw}: {e}"))?;
    }
    Ok(())
}

impl CaseCtx {
    fn apply_then(&mut self, then: &[Then], kind: &str, reference: &str, view: &StatusView) -> Result<(), String> {
        let generation = view.require(kind, reference)?.generation().ok_or_else(|| format!("{kind} {reference} has no generation in /status"))?;
        for t in then {
            match t {
                Then::Remember(label) => {
                    self.remembered.insert(label.clone(), (kind.to_string(), reference.to_string(), generation));
                }
                Then::Differs(label) => {
                    let (_, _, g0) = self.remembered.get(label).ok_or_else(|| format!("{label} was never remembered"))?;
                    if *g0 == generation {
                        return Err(format!("{kind} {reference}: metadata.generation is still {generation} ({label}); the change did not bump it"));
                    }
                }
                Then::SpecListLen(field, n) => {
                    let obj = self.store.get(kind, reference).ok_or_else(|| format!("{kind} {reference} not in the case's objects"))?;
                    let len = obj.get("spec").and_then(|s| s.get(field.as_str())).and_then(|l| l.as_sequence()).map_or(0, Vec::len);
                    if len != *n {
                        return Err(format!("{kind} {reference}: spec.{field} has {len} entries, want {n}"));
                    }
                }
            }
        }
        Ok(())
    }

    fn gateways_in(&self, namespaces: &[String]) -> Vec<(String, bool)> {
        self.store
            .of_kind("Gateway")
            .filter(|g| crate::runner::objects::api_version(g).starts_with("gateway.networking.k8s.io"))
            .filter(|g| crate::runner::objects::namespace(g).is_some_and(|n| namespaces.iter().any(|x| x == n)))
            .map(|g| {
                let skip = g
                    .get("metadata")
                    .and_then(|m| m.get("annotations"))
                    .and_then(|a| a.get("gateway-api/skip-this-for-readiness"))
                    .and_then(|v| v.as_str())
                    == Some("true");
                (format!("{}/{}", crate::runner::objects::namespace(g).unwrap_or(""), crate::runner::objects::name(g)), skip)
            })
            .collect()
    }

    /// The GatewayClass a case is about: a non-`weir` one in its objects, else `weir`.
    fn case_gateway_class(&self) -> String {
        self.store
            .of_kind("GatewayClass")
            .map(crate::runner::objects::name)
            .find(|n| *n != crate::runner::objects::GATEWAY_CLASS_NAME)
            .unwrap_or(crate::runner::objects::GATEWAY_CLASS_NAME)
            .to_string()
    }
}

pub async fn run(ctx: &mut CaseCtx, text: &str, steps: &[crate::runner::case::StepEntry], index: usize) -> Result<(), String> {
    let custom = recognise(text).ok_or_else(|| format!("custom step not implemented: {}", text.chars().take(80).collect::<String>()))?;
    let limit = ctx.shared.limits.status;
    match custom {
        Custom::NamespacesReady(ns) => {
            let gws = ctx.gateways_in(&ns);
            ctx.poll(limit, |v| namespaces_ready(v, &gws)).await.map(|_| ())
        }
        Custom::GatewayLatest { gateway, then } => {
            let view = ctx.poll(limit, |v| latest_gateway_conditions(v, &gateway)).await?;
            ctx.apply_then(&then, "Gateway", &gateway, &view)
        }
        Custom::GatewayZeroRoutes(gw) => ctx.poll(limit, |v| check_zero_routes(v, &gw)).await.map(|_| ()),
        Custom::WaitForAddress(gw) => {
            let gw = match gw {
                Some(g) => g,
                None => neighbour_gateway(steps, index).ok_or("WaitForGatewayAddress: no step around it names the Gateway")?,
            };
            ctx.poll(limit, |v| {
                latest_gateway_conditions(v, &gw)?;
                let g = v.require("Gateway", &gw)?;
                if g.addresses().iter().any(|a| str_field(a, "type").is_some_and(|t| !t.is_empty())) {
                    Ok(())
                } else {
                    Err(format!("Gateway {gw}: no status.addresses entry with a type"))
                }
            })
            .await
            .map(|_| ())
        }
        Custom::GatewayClassLatest { class, accepted_any, then } => {
            let class = class.unwrap_or_else(|| ctx.case_gateway_class());
            let reference = format!("/{class}");
            let view = ctx
                .poll(limit, |v| {
                    let c = v.require("GatewayClass", &reference)?;
                    c.conditions_current().map_err(|e| format!("GatewayClass {class}: {e}"))?;
                    if accepted_any && !c.conditions().iter().any(|x| str_field(x, "type") == Some("Accepted")) {
                        return Err(format!("GatewayClass {class}: no Accepted condition"));
                    }
                    Ok(())
                })
                .await?;
            ctx.apply_then(&then, "GatewayClass", &reference, &view)
        }
        Custom::RouteLatest { route, then } => {
            let route = match route {
                Some(r) => r,
                None => ctx
                    .remembered
                    .values()
                    .find(|(k, _, _)| k == "HTTPRoute")
                    .map(|(_, r, _)| r.clone())
                    .ok_or("no HTTPRoute remembered by an earlier step")?,
            };
            // "Read ... and remember" happens on the first read, before waiting.
            if then.iter().any(|t| matches!(t, Then::Remember(_))) {
                let view = ctx.poll(limit, |v| v.require("HTTPRoute", &route).map(|_| ())).await?;
                ctx.apply_then(&then, "HTTPRoute", &route, &view)?;
            }
            let view = ctx
                .poll(limit, |v| {
                    let r = v.require("HTTPRoute", &route)?;
                    for p in r.parents() {
                        crate::runner::status::conditions_at(crate::runner::status::arr(p.get("conditions")), r.generation())
                            .map_err(|e| format!("HTTPRoute {route}: {e}"))?;
                    }
                    Ok(())
                })
                .await?;
            let rest: Vec<Then> = then.into_iter().filter(|t| !matches!(t, Then::Remember(_))).collect();
            ctx.apply_then(&rest, "HTTPRoute", &route, &view)
        }
        Custom::AttachedListenerSets { gateway, count } => ctx
            .poll(limit, |v| {
                latest_gateway_conditions(v, &gateway)?;
                let g = v.require("Gateway", &gateway)?;
                let got = g.status().get("attachedListenerSets").and_then(|c| c.as_i64()).unwrap_or(0);
                if got == count {
                    Ok(())
                } else {
                    Err(format!("Gateway {gateway}: attachedListenerSets {got}, want {count}"))
                }
            })
            .await
            .map(|_| ()),
        Custom::ClientCertRequested => match ctx.cert_requested {
            Some(true) => Ok(()),
            Some(false) => Err("the Gateway never asked for a client certificate during the previous step".into()),
            None => Err("no previous requests step to check".into()),
        },
        Custom::MirrorDistribution { mirror_ns, mirror, path, min, max, p: _ } => {
            mirror_distribution(ctx, steps, index, &mirror_ns, &mirror, &path, min, max).await
        }
        Custom::SetupEndpointSlices { deployment, ipv4_slices, namespace } => {
            setup_endpoint_slices(ctx, &deployment, &ipv4_slices, &namespace)
        }
        Custom::AddressesSubstituted => Ok(()),
        Custom::RemoveAddress { gateway, which } => {
            let gw = match gateway {
                Some(g) => g,
                None => neighbour_gateway(steps, index).ok_or("no step around it names the Gateway")?,
            };
            let applied = applied_addresses(ctx, &gw)?;
            let idx = if which == "INVALID" { 0 } else { 1 };
            let value = applied.get(idx).and_then(|a| a.get("value")).cloned().ok_or_else(|| format!("Gateway {gw}: no applied address {which}"))?;
            let current: Vec<serde_yaml::Value> = ctx
                .store
                .get("Gateway", &gw)
                .and_then(|g| g.get("spec")?.get("addresses")?.as_sequence().cloned())
                .unwrap_or_default();
            let remaining: Vec<serde_yaml::Value> = current.into_iter().filter(|a| a.get("value") != Some(&value)).collect();
            let mut spec = serde_yaml::Mapping::new();
            spec.insert("addresses".into(), serde_yaml::Value::Sequence(remaining));
            let mut merge = serde_yaml::Mapping::new();
            merge.insert("spec".into(), serde_yaml::Value::Mapping(spec));
            let patch = crate::runner::case::ApplyStep::Patch(crate::runner::case::PatchSpec {
                kind: "Gateway".into(),
                object: gw.clone(),
                merge: serde_yaml::Value::Mapping(merge),
            });
            crate::runner::steps::apply::apply(ctx, &patch).await?;
            ctx.poll(limit, |v| latest_gateway_conditions(v, &gw)).await.map(|_| ())
        }
        Custom::StatusHoldsUsableAddress => {
            let gw = neighbour_gateway(steps, index).ok_or("no step around it names the Gateway")?;
            let applied = applied_addresses(ctx, &gw)?;
            let field = |i: usize, k: &str| applied.get(i).and_then(|a| a.get(k)).and_then(|v| v.as_str()).map(String::from);
            let (invalid, unusable, usable) = (field(0, "value"), field(1, "value"), field(2, "value"));
            let usable_type = field(2, "type").unwrap_or_else(|| "IPAddress".into());
            let usable = usable.ok_or_else(|| format!("Gateway {gw}: no applied USABLE address"))?;
            ctx.poll(limit, |v| {
                let g = v.require("Gateway", &gw)?;
                let addrs = g.addresses();
                if addrs.len() != 1 {
                    return Err(format!("Gateway {gw}: {} status addresses, want 1", addrs.len()));
                }
                let values: Vec<&str> = addrs.iter().filter_map(|a| str_field(a, "value")).collect();
                for bad in [&invalid, &unusable].into_iter().flatten() {
                    if values.contains(&bad.as_str()) {
                        return Err(format!("Gateway {gw}: status.addresses holds {bad}"));
                    }
                }
                let entry = addrs
                    .iter()
                    .find(|a| str_field(a, "value") == Some(usable.as_str()))
                    .ok_or_else(|| format!("Gateway {gw}: status.addresses {values:?} lacks the usable {usable}"))?;
                let ty = str_field(entry, "type").unwrap_or("IPAddress");
                if ty != usable_type {
                    return Err(format!("Gateway {gw}: address {usable} has type {ty}, want {usable_type}"));
                }
                Ok(())
            })
            .await
            .map(|_| ())
        }
        Custom::HeaderNamesBackend { port, times, header } => {
            let gw = neighbour_gateway(steps, index).ok_or("no step around it names the Gateway")?;
            header_names_backend(ctx, &gw, port, times, &header).await
        }
        Custom::TcpSampling { port, times, prefix } => {
            let gw = neighbour_gateway(steps, index).ok_or("no step around it names the Gateway")?;
            let (ip, port) = ctx.gateway_target(&gw, "tcp", Some(port)).await?;
            for i in 0..times {
                let pod = crate::runner::steps::tls_tcp::tcp_pod(std::net::SocketAddr::new(ip, port))
                    .await
                    .map_err(|e| format!("connection {}: {e}", i + 1))?;
                if !pod.starts_with(&prefix) {
                    return Err(format!("connection {}: answered by pod {pod:?}, want one starting with {prefix:?}", i + 1));
                }
            }
            Ok(())
        }
        Custom::TcpReady { port } => {
            let gw = neighbour_gateway(steps, index).ok_or("no step around it names the Gateway")?;
            let (ip, port) = ctx.gateway_target(&gw, "tcp", Some(port)).await?;
            let addr = std::net::SocketAddr::new(ip, port);
            let start = Instant::now();
            loop {
                match crate::runner::steps::tls_tcp::tcp_pod(addr).await {
                    Ok(_) => return Ok(()),
                    Err(e) if start.elapsed() >= ctx.shared.limits.requests => {
                        return Err(format!("no echo exchange on {addr} within {:?}: {e}", ctx.shared.limits.requests))
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }
}

/// "the Gateway" of a step: the one the closest earlier step names, else the next one that does.
fn neighbour_gateway(steps: &[crate::runner::case::StepEntry], index: usize) -> Option<String> {
    let named = |s: &crate::runner::case::StepEntry| -> Option<String> {
        if let Some(g) = s.kind.gateway() {
            return Some(g.to_string());
        }
        match &s.kind {
            Step::Custom(t) => match recognise(t)? {
                Custom::GatewayLatest { gateway, .. } | Custom::GatewayZeroRoutes(gateway) => Some(gateway),
                Custom::WaitForAddress(g) => g,
                Custom::AttachedListenerSets { gateway, .. } => Some(gateway),
                _ => None,
            },
            _ => None,
        }
    };
    steps[..index].iter().rev().find_map(named).or_else(|| steps[index + 1..].iter().find_map(named))
}
