//! The checked-in table of what Weir claims and what the runner can do. Every
//! skip the runner reports comes from here, with its reason (STYLE.md #14).

use super::case::{Case, Step};
use super::steps::custom;

/// Features Weir claims: the GATEWAY-HTTP and GATEWAY-GRPC core features plus
/// the extended features Weir implements (upstream feature names). A feature
/// is listed only once every case that needs it (and nothing unclaimed)
/// passes; `--try-unclaimed` shows what else is close.
pub const CLAIMED_FEATURES: &[&str] = &[
    // GATEWAY-HTTP core
    "Gateway",
    "HTTPRoute",
    "ReferenceGrant",
    // HTTPRoute / Gateway extended features Weir implements
    "GatewayPort8080",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteMethodMatching",
    "HTTPRouteResponseHeaderModification",
    "HTTPRoutePortRedirect",
    "HTTPRouteSchemeRedirect",
    "HTTPRoutePathRedirect",
    "HTTPRouteHostRewrite",
    "HTTPRoutePathRewrite",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteBackendTimeout",
    "HTTPRouteRetry",
    "HTTPRouteRetryConnectionError",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteParentRefPort",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteDestinationPortMatching",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendRequestRedirect",
    "HTTPRouteBackendURLRewrite",
    "HTTPRouteCORS",
    "HTTPRouteRetryBackendTimeout",
    "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayStaticAddresses",
    "GatewayAddressEmpty",
    // GATEWAY-GRPC
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "GRPCRouteRequestHeaderModifier",
];

/// Cases skipped by name even though their features are claimed, with why.
pub const CASE_SKIPS: &[(&str, &str)] = &[];

/// Step kinds the runner does not perform yet, with why.
pub const UNIMPLEMENTED_STEPS: &[(&str, &str)] = &[
    ("external", "step kind external not implemented by the runner (no external-service simulation yet)"),
];

/// Diagnostic mode (`--try-unclaimed`): run every case as if its features were
/// claimed, to see what the gateway does. Reports made this way carry
/// `mode: try-unclaimed` and are not conformance claims.
static TRY_UNCLAIMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_try_unclaimed(on: bool) {
    TRY_UNCLAIMED.store(on, std::sync::atomic::Ordering::SeqCst);
}

pub fn try_unclaimed() -> bool {
    TRY_UNCLAIMED.load(std::sync::atomic::Ordering::SeqCst)
}

pub fn claimed(feature: &str) -> bool {
    CLAIMED_FEATURES.contains(&feature) || try_unclaimed()
}

/// `requires: [F, not G]` holds for Weir's claims.
pub fn requires_met(requires: &[String]) -> bool {
    requires.iter().all(|r| match r.strip_prefix("not ") {
        Some(f) => !claimed(f.trim()),
        None => claimed(r.trim()),
    })
}

/// Why a case cannot be run (None: run it).
pub fn skip_reason(case: &Case) -> Option<String> {
    if let Some((_, why)) = CASE_SKIPS.iter().find(|(n, _)| *n == case.name) {
        return Some((*why).to_string());
    }
    let missing: Vec<&str> = case.features.iter().map(String::as_str).filter(|f| !claimed(f)).collect();
    if !missing.is_empty() {
        return Some(format!("features not claimed by Weir: {}", missing.join(", ")));
    }
    for (i, s) in case.steps.iter().enumerate() {
        if !requires_met(&s.requires) {
            continue;
        }
        let kind = s.kind.kind_name();
        if let Some((_, why)) = UNIMPLEMENTED_STEPS.iter().find(|(k, _)| *k == kind) {
            return Some(format!("step {} ({kind}): {why}", i + 1));
        }
        match &s.kind {
            Step::Custom(text) if custom::recognise(text).is_none() => {
                let first: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(80).collect();
                return Some(format!("step {}: custom step not implemented: {first}", i + 1));
            }
            Step::Weights(w) if w.protocol.as_deref().is_some_and(|p| !matches!(p, "http" | "grpc" | "tcp")) => {
                return Some(format!("step {} (weights): protocol {} not implemented by the runner", i + 1, w.protocol.as_deref().unwrap_or("")));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_semantics() {
        assert!(requires_met(&["HTTPRoute".into()]));
        assert!(!requires_met(&["TLSRouteModeMixed".into()]));
        assert!(requires_met(&["not TLSRouteModeMixed".into()]));
        assert!(!requires_met(&["not HTTPRoute".into()]));
    }
}
