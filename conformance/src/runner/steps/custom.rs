//! `custom` steps: the recurring prose procedures of the transcriptions are
//! recognised by their text and run; any other text makes the case skipped
//! (see features.rs).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::runner::case::{RequestsStep, Step};
use crate::runner::context::CaseCtx;
use crate::runner::status::{str_field, StatusView};
use crate::runner::steps::requests::{add_query, attempt};
use crate::runner::steps::status_steps::check_zero_routes;

/// A follow-up of a "latest conditions" wait.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    Remember(String),
    Differs(String),
    SpecListLen(String, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Custom {
    NamespacesReady(Vec<String>),
    GatewayLatest { gateway: String, then: Vec<Then> },
    GatewayZeroRoutes(String),
    /// Gateway None: the Gateway of the next step that names one.
    WaitForAddress(Option<String>),
    GatewayClassLatest { class: Option<String>, accepted_any: bool, then: Vec<Then> },
    RouteLatest { route: Option<String>, then: Vec<Then> },
    AttachedListenerSets { gateway: String, count: i64 },
    ClientCertRequested,
    MirrorDistribution { p: f64, mirror_ns: String, mirror: String, path: String, min: usize, max: usize },
    SetupEndpointSlices { deployment: String, ipv4_slices: Vec<String>, namespace: String },
    /// N sequential requests; each echoed `header` has one value that prefixes the pod.
    HeaderNamesBackend { port: u16, times: usize, header: String },
    /// N sequential TCP echo exchanges, every pod starting with `prefix`.
    TcpSampling { port: u16, times: usize, prefix: String },
    /// Poll until a TCP connection is accepted and one echo exchange completes.
    TcpReady { port: u16 },
    /// The runner already substituted the address placeholders when it built the objects.
    AddressesSubstituted,
    /// Merge-patch spec.addresses without the entry named INVALID/UNUSABLE (as applied), then latest conditions.
    RemoveAddress { gateway: Option<String>, which: String },
    /// status.addresses: exactly one entry, USABLE's value and type, neither INVALID's nor UNUSABLE's.
    StatusHoldsUsableAddress,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in regex {pattern}: {e}"))
}

macro_rules! regex {
    ($p:expr) => {{
        static R: OnceLock<Regex> = OnceLock::new();
        R.get_or_init(|| re($p))
    }};
}

fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Known follow-ups after a Gateway latest-conditions wait.
fn parse_gateway_tail(tail: &str) -> Option<Vec<Then>> {
    let tail = tail.trim();
    if tail.is_empty() || tail.starts_with("The condition values are not checked.") {
        return Some(vec![]);
    }
    if let Some(c) = regex!(r"^Then read the Gateway and remember its metadata\.generation \((G\d)\)\.$").captures(tail) {
        return Some(vec![Then::Remember(c[1].to_string())]);
    }
    if let Some(c) = regex!(r"^then read the Gateway again: its metadata\.generation must differ from (G\d)\.$").captures(tail) {
        return Some(vec![Then::Differs(c[1].to_string())]);
    }
    if let Some(c) = regex!(r"^Then read the Gateway, require that spec\.(\w+) has exactly (\d+) entries, and remember its metadata\.generation \((G\d)\)\.$").captures(tail) {
        return Some(vec![Then::SpecListLen(c[1].to_string(), c[2].parse().ok()?), Then::Remember(c[3].to_string())]);
    }
    if let Some(c) = regex!(r"^Then read the Gateway: spec\.(\w+) must have exactly (\d+) entries\.$").captures(tail) {
        return Some(vec![Then::SpecListLen(c[1].to_string(), c[2].parse().ok()?)]);
    }
    None
}

/// Recognises a custom step's text.
pub fn recognise(text: &str) -> Option<Custom> {
    let t = normalize(text);
    if let Some(c) = regex!(r"^Upstream NamespacesMustBeReady\(([^)]*)\)").captures(&t) {
        return Some(Custom::NamespacesReady(c[1].split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()));
    }
    if let Some(c) = regex!(r"^Upstream GatewayMustHaveLatestConditions: wait until every condition in status\.conditions of Gateway (\S+) has observedGeneration = metadata\.generation\.(.*)$").captures(&t) {
        return Some(Custom::GatewayLatest { gateway: c[1].to_string(), then: parse_gateway_tail(&c[2])? });
    }
    if let Some(c) = regex!(r"^Upstream GatewayMustHaveLatestConditions for (\S+) \(every status condition at observedGeneration = metadata\.generation\)[;.](.*)$").captures(&t) {
        return Some(Custom::GatewayLatest { gateway: c[1].to_string(), then: parse_gateway_tail(&c[2])? });
    }
    if let Some(c) = regex!(r"^Upstream GatewayMustHaveZeroRoutes\(([^)]+)\): once every condition in the Gateway's status\.conditions has observedGeneration = metadata\.generation, status\.listeners is either empty or holds exactly one entry whose attachedRoutes is 0\.$").captures(&t) {
        return Some(Custom::GatewayZeroRoutes(c[1].to_string()));
    }
    if t.starts_with("Upstream WaitForGatewayAddress") {
        if let Some(c) = regex!(r"of Gateway (\S+?) has observedGeneration").captures(&t) {
            return Some(Custom::WaitForAddress(Some(c[1].to_string())));
        }
        if t.contains("of the Gateway has observedGeneration") {
            return Some(Custom::WaitForAddress(None));
        }
        return None;
    }
    if let Some(c) = regex!(r"^Upstream GWCMustHaveAcceptedConditionAny: wait until every condition in status\.conditions of GatewayClass (\S+) has observedGeneration = metadata\.generation and there is an Accepted condition \(any status, any reason\)\.$").captures(&t) {
        return Some(Custom::GatewayClassLatest { class: Some(c[1].to_string()), accepted_any: true, then: vec![] });
    }
    if let Some(c) = regex!(r"^Read the GatewayClass and remember its metadata\.generation \((G\d)\)\. Upstream GatewayClassMustHaveLatestConditions: wait until every condition in status\.conditions has observedGeneration = metadata\.generation\.$").captures(&t) {
        return Some(Custom::GatewayClassLatest { class: None, accepted_any: false, then: vec![Then::Remember(c[1].to_string())] });
    }
    if let Some(c) = regex!(r"^Upstream GWCMustHaveAcceptedConditionAny again \(every condition at observedGeneration = metadata\.generation, and an Accepted condition with any status\), then GatewayClassMustHaveLatestConditions; then read the GatewayClass again: its metadata\.generation must differ from (G\d)\.$").captures(&t) {
        return Some(Custom::GatewayClassLatest { class: None, accepted_any: true, then: vec![Then::Differs(c[1].to_string())] });
    }
    if let Some(c) = regex!(r"^Read HTTPRoute (\S+) and remember its metadata\.generation \((G\d)\)\. Then \(upstream HTTPRouteMustHaveLatestConditions\) wait until every condition of every entry of its status\.parents has observedGeneration = metadata\.generation\.$").captures(&t) {
        return Some(Custom::RouteLatest { route: Some(c[1].to_string()), then: vec![Then::Remember(c[2].to_string())] });
    }
    if let Some(c) = regex!(r"^Wait until every condition of every entry of the route's status\.parents has observedGeneration = metadata\.generation \(upstream HTTPRouteMustHaveLatestConditions\); then read the route again: its metadata\.generation must differ from (G\d)\.$").captures(&t) {
        return Some(Custom::RouteLatest { route: None, then: vec![Then::Differs(c[1].to_string())] });
    }
    if let Some(c) = regex!(r"^Upstream GatewayMustHaveAttachedListeners: Gateway (\S+) reports status\.attachedListenerSets = (\d+) \(an absent field counts as 0\), read once every Gateway condition has observedGeneration = metadata\.generation\.").captures(&t) {
        return Some(Custom::AttachedListenerSets { gateway: c[1].to_string(), count: c[2].parse().ok()? });
    }
    if t.starts_with("Client certificate requested: during the previous step the Gateway sent a TLS CertificateRequest") {
        return Some(Custom::ClientCertRequested);
    }
    if let Some(c) = regex!(r"^Mirror distribution, p = ([\d.]+) \(mirror (\S+) in (\S+)\)").captures(&t) {
        let path = regex!(r"(?:here|with path) (/[^?\s]*)\?gateway-api-conformance-request-id=<uuid>").captures(&t)?;
        let range = regex!(r"\((\d+) to (\d+) requests\)").captures(&t)?;
        return Some(Custom::MirrorDistribution {
            p: c[1].parse().ok()?,
            mirror: c[2].to_string(),
            mirror_ns: c[3].to_string(),
            path: path[1].to_string(),
            min: range[1].parse().ok()?,
            max: range[2].parse().ok()?,
        });
    }
    if let Some(c) = regex!(r"^Then send the same request \(GET / to the Gateway address, port (\d+)\) (\d+) times, one after another\. Each round trip must complete \(a transport error fails the test; the status code is not checked\), the echoed request headers must hold header (\S+) with exactly one value, and the echoed pod name must start with that value").captures(&t) {
        return Some(Custom::HeaderNamesBackend { port: c[1].parse().ok()?, times: c[2].parse().ok()?, header: c[3].to_string() });
    }
    if let Some(c) = regex!(r#"^Upstream sampling loop \(tcp\.EchoSendOnce, (\d+) times\): open \d+ TCP connections one after another to the Gateway address on port (\d+) \(plain TCP\), each with a 5 s deadline; on each, read the welcome line "Gateway API Test TCP Server", send TEST and decode the JSON answer\. Every one of the \d+ connections must succeed with a non-empty pod, and every pod must start with "([^"]+)""#).captures(&t) {
        return Some(Custom::TcpSampling { times: c[1].parse().ok()?, port: c[2].parse().ok()?, prefix: c[3].to_string() });
    }
    if let Some(c) = regex!(r"^Readiness before sampling \(upstream tcp\.ExpectAddressBeAvailable then tcp\.ExpectEchoResponse\): poll until a plain TCP connection to the Gateway address on port (\d+) is accepted; then poll until one connection there completes the echo exchange").captures(&t) {
        return Some(Custom::TcpReady { port: c[1].parse().ok()? });
    }
    if t.starts_with("Before applying the manifest, the runner substitutes the addresses as upstream does: the entry with value PLACEHOLDER_UNUSABLE_ADDRS becomes one address the implementation supports but cannot use for this Gateway, and the entry with value PLACEHOLDER_USABLE_ADDRS one address it can use") {
        return Some(Custom::AddressesSubstituted);
    }
    if let Some(c) = regex!(r"^JSON merge patch of (?:Gateway (\S+)|the Gateway) computed from the Gateway as read: spec\.addresses = the current list without the entries whose value equals (INVALID|UNUSABLE)'s value, i\.e\. \[[A-Z, ]+\](?: \(the list is replaced whole\))?\. Then upstream GatewayMustHaveLatestConditions \(every status condition at observedGeneration = metadata\.generation\)\.$").captures(&t) {
        return Some(Custom::RemoveAddress { gateway: c.get(1).map(|m| m.as_str().to_string()), which: c[2].to_string() });
    }
    if t == "Poll the Gateway until status.addresses has exactly 1 entry (within the Gateway address time limit). Then the values of status.addresses must not include UNUSABLE's value or INVALID's value and must include USABLE's value, and the status entry whose value equals USABLE's value must have the same type as USABLE." {
        return Some(Custom::StatusHoldsUsableAddress);
    }
    if let Some(c) = regex!(r"^Upstream setupEndpointSlices: list the Pods of Deployment (\S+) \(by its selector .*For each of the EndpointSlices (.+?) \(IPv4 pod addresses\) and .+? \(IPv6 pod addresses\) in (\S+), merge-patch its endpoints to one entry per pod address of that family").captures(&t) {
        return Some(Custom::SetupEndpointSlices {
            deployment: c[1].to_string(),
            ipv4_slices: c[2].split(',').map(|s| s.trim().to_string()).collect(),
            namespace: c[3].to_string(),
        });
    }
    None
}

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

/// Upstream's percentage-mirror procedure (see HTTPRouteRequestPercentageMirror).
#[allow(clippy::too_many_arguments)]
async fn mirror_distribution(
    ctx: &mut CaseCtx,
    steps: &[crate::runner::case::StepEntry],
    index: usize,
    mirror_ns: &str,
    mirror: &str,
    path: &str,
    min: usize,
    max: usize,
) -> Result<(), String> {
    const ATTEMPTS: usize = 5;
    const TOTAL: usize = 500;
    let req_step: RequestsStep = steps[..index]
        .iter()
        .rev()
        .find_map(|s| match &s.kind {
            Step::Requests(r) => Some(r.clone()),
            _ => None,
        })
        .ok_or("mirror distribution: no requests step before it")?;
    let mut prepared = ctx.prepare_requests(&req_step).await?;
    let mut base = prepared.drain(..).next().ok_or("mirror distribution: the requests step has no case")?;
    base.mirrors.clear();
    let controls = ctx.backend_controls(mirror_ns, mirror);
    if controls.is_empty() {
        return Err(format!("mirror backend {mirror_ns}/{mirror} has no echo pods"));
    }
    let mut last = String::new();
    for n in 0..ATTEMPTS {
        let full = add_query(path, "gateway-api-conformance-request-id", &uuid::Uuid::new_v4().to_string());
        let deadline = Instant::now() + ctx.shared.limits.requests * 4;
        use futures::StreamExt;
        let results: Vec<Result<(), String>> = futures::stream::iter((0..TOTAL).map(|_| {
            let base = base.clone();
            let full = full.clone();
            async move {
                loop {
                    let a = attempt(&base, Some(&full)).await;
                    match a.verdict {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() > deadline => return Err(e),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }))
        .buffer_unordered(10)
        .collect()
        .await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(format!("mirror distribution: a request never got its answer: {e}"));
        }
        // Give in-flight mirror copies a moment to land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut count = 0;
        for c in &controls {
            let reqs = crate::runner::steps::requests::echo_requests(*c).await?;
            count += reqs.iter().filter(|r| r.get("path").and_then(|p| p.as_str()) == Some(full.as_str())).count();
        }
        if (min..=max).contains(&count) {
            return Ok(());
        }
        last = format!("attempt {}: {count} mirrored copies of {TOTAL}, want {min} to {max}", n + 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(format!("mirror distribution failed after {ATTEMPTS} attempts; {last}"))
}

/// A Gateway's spec.addresses as first applied (after placeholder substitution).
fn applied_addresses(ctx: &CaseCtx, gateway: &str) -> Result<Vec<serde_yaml::Value>, String> {
    ctx.applied_addresses.get(gateway).cloned().ok_or_else(|| format!("Gateway {gateway} had no spec.addresses when the case began"))
}

/// Sequential requests whose echoed header names the backend that answered.
async fn header_names_backend(ctx: &mut CaseCtx, gateway: &str, port: u16, times: usize, header: &str) -> Result<(), String> {
    use crate::runner::http_client::{send, ClientRequest, Proto};
    let (ip, port) = ctx.gateway_target(gateway, "http", Some(port)).await?;
    let addr = std::net::SocketAddr::new(ip, port);
    for i in 0..times {
        let req = ClientRequest {
            addr,
            proto: Proto::Http1,
            host: if port == 80 { ip.to_string() } else { addr.to_string() },
            method: "GET".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: None,
            tls: None,
            timeout: Duration::from_secs(10),
        };
        let resp = send(&req).await.result.map_err(|e| format!("request {}: transport error: {}", i + 1, e.0))?;
        let echoed: crate::runner::compare::Echoed =
            serde_json::from_slice(&resp.body).map_err(|e| format!("request {}: status {}, body is not the echo JSON: {e}", i + 1, resp.status))?;
        let values: Vec<&String> = echoed.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(header)).flat_map(|(_, v)| v).collect();
        if values.len() != 1 {
            return Err(format!("request {}: header {header} has {} values {values:?}, want exactly one", i + 1, values.len()));
        }
        if !echoed.pod.starts_with(values[0].as_str()) {
            return Err(format!("request {}: header {header} is {:?} but pod {:?} answered", i + 1, values[0], echoed.pod));
        }
    }
    Ok(())
}

/// Upstream setupEndpointSlices: fill the manual IPv4 slices with the Deployment's pod addresses.
fn setup_endpoint_slices(ctx: &mut CaseCtx, deployment: &str, slices: &[String], namespace: &str) -> Result<(), String> {
    let pods = ctx.deployment_pods(deployment);
    if pods.is_empty() {
        return Err(format!("Deployment {deployment} has no pods"));
    }
    let endpoints: Vec<serde_json::Value> = pods.iter().map(|p| crate::runner::endpoints::endpoint_entry(&p.info)).collect();
    let merge = serde_yaml::to_value(serde_json::json!({"endpoints": endpoints})).map_err(|e| e.to_string())?;
    let mut changed = Vec::new();
    for s in slices {
        let reference = format!("{namespace}/{s}");
        changed.push(ctx.store.patch("EndpointSlice", &reference, &merge).map_err(|e| e.to_string())?);
    }
    changed.sort_unstable();
    changed.dedup();
    for fi in changed {
        ctx.store.write_file(&ctx.config_dir, fi).map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_known_prose() {
        assert_eq!(
            recognise("Upstream NamespacesMustBeReady(gateway-conformance-infra, gateway-conformance-web-backend): every Gateway ..."),
            Some(Custom::NamespacesReady(vec!["gateway-conformance-infra".into(), "gateway-conformance-web-backend".into()]))
        );
        assert_eq!(
            recognise("Upstream GatewayMustHaveLatestConditions: wait until every condition in status.conditions of\n Gateway ns/gw has observedGeneration =\n metadata.generation. Then read the Gateway and remember its metadata.generation (G0)."),
            Some(Custom::GatewayLatest { gateway: "ns/gw".into(), then: vec![Then::Remember("G0".into())] })
        );
        assert_eq!(
            recognise("Upstream GatewayMustHaveLatestConditions for ns/gw (every status condition at observedGeneration = metadata.generation); then read the Gateway again: its metadata.generation must differ from G1."),
            Some(Custom::GatewayLatest { gateway: "ns/gw".into(), then: vec![Then::Differs("G1".into())] })
        );
        assert!(recognise("Upstream GatewayMustHaveLatestConditions: wait until every condition in status.conditions of Gateway ns/gw has observedGeneration = metadata.generation. Then do something unheard of.").is_none());
        assert!(recognise("Something nobody wrote a recogniser for").is_none());
    }

    #[test]
    fn recognises_the_procedures_of_the_shared_cases() {
        let dir = std::path::Path::new("/work/shared/conformance/cases");
        if !dir.exists() {
            println!("cases folder absent: not checked");
            return;
        }
        let cases = crate::runner::case::load_dir(dir).expect("cases");
        let must = [
            "HTTPRouteRequestHeaderModifierBackendWeights",
            "TCPRouteMultipleRoutesAttachment",
            "TCPRouteWeightedRouting",
            "HTTPRouteRequestPercentageMirror",
            "HTTPRouteServiceTypes",
            "GatewayModifyListeners",
            "GatewayClassObservedGenerationBump",
            "HTTPRouteObservedGenerationBump",
            "GatewayOptionalAddressValue",
            "GatewayStaticAddresses",
        ];
        for c in &cases {
            for s in &c.case.steps {
                if let Step::Custom(t) = &s.kind {
                    let r = recognise(t);
                    if must.contains(&c.case.name.as_str()) {
                        assert!(r.is_some(), "{}: not recognised: {t}", c.case.name);
                    }
                    if r.is_none() {
                        println!("unrecognised in {}: {}", c.case.name, t.chars().take(80).collect::<String>());
                    }
                }
            }
        }
        let mirror = cases.iter().find(|c| c.case.name == "HTTPRouteRequestPercentageMirror").expect("case");
        let found: Vec<Custom> = mirror.case.steps.iter().filter_map(|s| match &s.kind { Step::Custom(t) => recognise(t), _ => None }).collect();
        assert_eq!(
            found[0],
            Custom::MirrorDistribution { p: 0.2, mirror_ns: "gateway-conformance-infra".into(), mirror: "infra-backend-v2".into(), path: "/percent-mirror".into(), min: 74, max: 126 }
        );
    }
}
