//! Recognises the recurring prose procedures of `custom` steps by their text.

use std::sync::OnceLock;

use regex::Regex;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::case::Step;

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

