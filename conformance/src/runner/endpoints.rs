//! EndpointSlices for the case's Services, naming the echo pods their
//! selectors pick (what the EndpointSlice controller would write).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde_json::json;
use serde_yaml::Value;

use super::objects::{kind, name, namespace};

/// What a Service needs to know about an echo pod.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct PodInfo {
    pub name: String,
    pub namespace: String,
    pub deployment: String,
    pub ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    /// Named container ports (for named targetPorts).
    pub container_ports: HashMap<String, u16>,
}

pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub const NODE_NAME: &str = "weir-conformance-node";

pub fn pod_uid(pod: &PodInfo) -> String {
    format!("uid-{}-{}", pod.namespace, pod.name)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Mapping(m)) = v {
        for (k, v) in m {
            if let Some(k) = k.as_str() {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                out.insert(k.to_string(), v);
            }
        }
    }
    out
}

/// The selector of a Service (empty map: no selector).
pub fn service_selector(svc: &Value) -> BTreeMap<String, String> {
    string_map(svc.get("spec").and_then(|s| s.get("selector")))
}

pub fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// One endpoint entry for a pod.
pub fn endpoint_entry(pod: &PodInfo) -> serde_json::Value {
    let mut e = json!({
        "addresses": [pod.ip.to_string()],
        "conditions": {"ready": true, "serving": true, "terminating": false},
        "nodeName": NODE_NAME,
        "targetRef": {"kind": "Pod", "name": pod.name, "namespace": pod.namespace, "uid": pod_uid(pod)},
    });
    if let Some(zone) = pod.labels.get(ZONE_LABEL) {
        e["zone"] = json!(zone);
    }
    let topo: BTreeMap<&str, &String> = [REGION_LABEL, ZONE_LABEL]
        .iter()
        .filter_map(|k| pod.labels.get(*k).map(|v| (*k, v)))
        .collect();
    if !topo.is_empty() {
        e["deprecatedTopology"] = json!(topo);
    }
    e
}

/// EndpointSlices for every Service with a selector: one slice per distinct
/// pod label set (so subsets and localities stay visible as slice labels).
pub fn endpoint_slices<'a>(objects: impl Iterator<Item = &'a Value>, pods: &[PodInfo]) -> Vec<Value> {
    let mut out = Vec::new();
    for svc in objects.filter(|o| kind(o) == "Service") {
        let selector = service_selector(svc);
        if selector.is_empty() {
            continue;
        }
        let ns = namespace(svc).unwrap_or("default");
        let selected: Vec<&PodInfo> = pods
            .iter()
            .filter(|p| p.namespace == ns && labels_match(&selector, &p.labels))
            .collect();
        let mut groups: BTreeMap<&BTreeMap<String, String>, Vec<&PodInfo>> = BTreeMap::new();
        for p in &selected {
            groups.entry(&p.labels).or_default().push(p);
        }
        let svc_ports: Vec<Value> = svc
            .get("spec")
            .and_then(|s| s.get("ports"))
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        let slice_ports = |pod: Option<&PodInfo>| -> Vec<serde_json::Value> {
            svc_ports
                .iter()
                .filter_map(|p| {
                    let port = p.get("port").and_then(Value::as_u64)?;
                    let target = match p.get("targetPort") {
                        None => port,
                        Some(Value::Number(n)) => n.as_u64()?,
                        Some(Value::String(s)) => match s.parse::<u64>() {
                            Ok(n) => n,
                            Err(_) => u64::from(*pod?.container_ports.get(s)?),
                        },
                        _ => return None,
                    };
                    let mut e = json!({
                        "name": p.get("name").and_then(Value::as_str).unwrap_or(""),
                        "port": target,
                        "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
                    });
                    if let Some(ap) = p.get("appProtocol").and_then(Value::as_str) {
                        e["appProtocol"] = json!(ap);
                    }
                    Some(e)
                })
                .collect()
        };
        let svc_name = name(svc);
        let mut slices: Vec<(BTreeMap<String, String>, Vec<&PodInfo>)> =
            groups.into_iter().map(|(l, p)| (l.clone(), p)).collect();
        if slices.is_empty() {
            slices.push((BTreeMap::new(), Vec::new()));
        }
        for (i, (labels, members)) in slices.into_iter().enumerate() {
            let mut meta_labels = labels;
            meta_labels.insert("kubernetes.io/service-name".into(), svc_name.to_string());
            meta_labels.insert("endpointslice.kubernetes.io/managed-by".into(), "weir-conformance".into());
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": format!("{svc_name}-weir-{i}"), "namespace": ns, "labels": meta_labels},
                "addressType": "IPv4",
                "ports": slice_ports(members.first().copied()),
                "endpoints": members.iter().map(|p| endpoint_entry(p)).collect::<Vec<_>>(),
            });
            if let Ok(v) = serde_yaml::to_value(slice) {
                out.push(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: [u8; 4], labels: &[(&str, &str)]) -> PodInfo {
        PodInfo {
            name: name.into(),
            namespace: "ns".into(),
            deployment: "d".into(),
            ip: Ipv4Addr::from(ip),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            container_ports: [("web".to_string(), 3000u16)].into_iter().collect(),
        }
    }

    #[test]
    fn slices_from_service_and_deployment_pods() {
        let svc: Value = serde_yaml::from_str(
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: ns}\nspec:\n  selector: {app: reviews}\n  ports:\n  - {name: http, port: 8080, targetPort: 3000}\n  - {name: h2c, port: 8081, targetPort: 3001, appProtocol: kubernetes.io/h2c}\n  - {name: named, port: 9000, targetPort: web}\n",
        )
        .expect("yaml");
        let pods = vec![
            pod("reviews-v1-1-0", [127, 1, 0, 1], &[("app", "reviews"), ("version", "v1"), (ZONE_LABEL, "zone-a")]),
            pod("reviews-v2-2-0", [127, 1, 0, 2], &[("app", "reviews"), ("version", "v2")]),
            pod("other-3-0", [127, 1, 0, 3], &[("app", "other")]),
        ];
        let slices = endpoint_slices([svc].iter(), &pods);
        assert_eq!(slices.len(), 2, "one slice per label set");
        let s: serde_json::Value = serde_json::to_value(&slices[0]).expect("json");
        assert_eq!(s["metadata"]["labels"]["kubernetes.io/service-name"], "reviews");
        assert_eq!(s["metadata"]["labels"]["version"], "v1");
        assert_eq!(s["ports"][0], json!({"name": "http", "port": 3000, "protocol": "TCP"}));
        assert_eq!(s["ports"][1]["appProtocol"], "kubernetes.io/h2c");
        assert_eq!(s["ports"][2]["port"], 3000);
        assert_eq!(s["endpoints"][0]["addresses"][0], "127.1.0.1");
        assert_eq!(s["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(s["endpoints"][0]["zone"], "zone-a");
        let s1: serde_json::Value = serde_json::to_value(&slices[1]).expect("json");
        assert_eq!(s1["endpoints"][0]["targetRef"]["name"], "reviews-v2-2-0");
    }

    #[test]
    fn selectorless_service_gets_no_slice_and_empty_selection_gets_empty_slice() {
        let svcs: Vec<Value> = vec![
            serde_yaml::from_str("kind: Service\nmetadata: {name: manual, namespace: ns}\nspec: {ports: [{port: 80}]}").expect("yaml"),
            serde_yaml::from_str("kind: Service\nmetadata: {name: none, namespace: ns}\nspec: {selector: {app: x}, ports: [{port: 80}]}").expect("yaml"),
        ];
        let slices = endpoint_slices(svcs.iter(), &[]);
        assert_eq!(slices.len(), 1);
        let s: serde_json::Value = serde_json::to_value(&slices[0]).expect("json");
        assert_eq!(s["endpoints"], json!([]));
        assert_eq!(s["ports"][0]["port"], 80);
    }
}
