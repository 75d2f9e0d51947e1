//! Gateway status from the Service in front of the gateway replicas: its
//! addresses, and whether any replica serves yet.
//!
//! In Kubernetes mode the gateway pods listen on every interface (the
//! translation runs with the address pool `0.0.0.0/32`), so the address
//! clients use is the Service's: its LoadBalancer ingress (IP or hostname),
//! else its ClusterIP. The controller crate's translation has no pluggable
//! address source, so the stanza it computes is replaced here.

use k8s_openapi::api::core::v1::Service;
use serde_json::{json, Value};
use weir_controller::ObjectStatus;

/// The addresses clients reach the gateway Service on.
pub fn service_addresses(service: &Service) -> Vec<Value> {
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = ingress
        .iter()
        .filter_map(|i| match (&i.ip, &i.hostname) {
            (Some(ip), _) if !ip.is_empty() => Some(json!({"type": "IPAddress", "value": ip})),
            (_, Some(host)) if !host.is_empty() => Some(json!({"type": "Hostname", "value": host})),
            _ => None,
        })
        .collect();
    if out.is_empty() {
        let spec = service.spec.as_ref();
        let ips = spec.and_then(|s| s.cluster_ips.clone()).unwrap_or_default();
        let ips = if ips.is_empty() { spec.and_then(|s| s.cluster_ip.clone()).into_iter().collect() } else { ips };
        out = ips
            .into_iter()
            .filter(|ip| !ip.is_empty() && ip != "None")
            .map(|ip| json!({"type": "IPAddress", "value": ip}))
            .collect();
    }
    out
}

/// Replaces `status.addresses` of every Gateway Weir manages (those whose
/// status the translation filled in). Without the Service the list is empty.
pub fn set_gateway_addresses(statuses: &mut [ObjectStatus], service: Option<&Service>) {
    let addresses = service.map(service_addresses).unwrap_or_default();
    for status in statuses.iter_mut().filter(|s| s.kind == "Gateway") {
        if let Some(map) = status.status.as_object_mut() {
            if map.contains_key("addresses") {
                map.insert("addresses".into(), Value::Array(addresses.clone()));
            }
        }
    }
}

/// `Programmed` means the configuration reached the data plane. Gateway
/// replicas turn ready only once they serve a snapshot, so with no ready
/// endpoint behind the gateway Service a Gateway the translation found
/// programmable is reported `Programmed=False` (`Pending`) instead. (Whether
/// the replicas serve the *latest* snapshot is not tracked.)
pub fn require_ready_replicas(statuses: &mut [ObjectStatus], ready_replicas: usize, service: &str) {
    if ready_replicas > 0 {
        return;
    }
    for status in statuses.iter_mut().filter(|s| s.kind == "Gateway") {
        // The Gateway's own conditions, and each listener's.
        let mut lists: Vec<&mut Value> = Vec::new();
        let Some(map) = status.status.as_object_mut() else { continue };
        for (key, value) in map.iter_mut() {
            match key.as_str() {
                "conditions" => lists.push(value),
                "listeners" => lists.extend(value.as_array_mut().into_iter().flatten().filter_map(|l| l.get_mut("conditions"))),
                _ => {}
            }
        }
        for condition in lists.into_iter().filter_map(Value::as_array_mut).flatten() {
            if condition["type"] == "Programmed" && condition["status"] == "True" {
                condition["status"] = json!("False");
                condition["reason"] = json!("Pending");
                condition["message"] = json!(format!(
                    "no gateway replica is ready yet (the Service {service} has no ready endpoints)"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(value: Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn load_balancer_ingress_wins_over_cluster_ip() {
        let svc = service(json!({
            "metadata": {"name": "gw"},
            "spec": {"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}}
        }));
        assert_eq!(
            service_addresses(&svc),
            vec![json!({"type": "IPAddress", "value": "203.0.113.7"}), json!({"type": "Hostname", "value": "lb.example.com"})]
        );
    }

    #[test]
    fn not_programmed_without_a_ready_replica() {
        let programmed = json!({"type": "Programmed", "status": "True", "reason": "Programmed"});
        let invalid = json!({"type": "Programmed", "status": "False", "reason": "Invalid"});
        let status = ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "Gateway".into(),
            namespace: Some("app".into()),
            name: "gw".into(),
            generation: 1,
            status: json!({"conditions": [programmed.clone()],
                           "listeners": [{"name": "a", "conditions": [programmed]}, {"name": "b", "conditions": [invalid]}]}),
        };
        let mut ready = vec![status.clone()];
        require_ready_replicas(&mut ready, 2, "weir-system/weir-gateway");
        assert_eq!(ready[0], status);
        let mut none = vec![status];
        require_ready_replicas(&mut none, 0, "weir-system/weir-gateway");
        let s = &none[0].status;
        assert_eq!(s["conditions"][0]["reason"], "Pending");
        assert_eq!(s["listeners"][0]["conditions"][0]["reason"], "Pending");
        assert_eq!(s["listeners"][1]["conditions"][0]["reason"], "Invalid", "other failures are kept");
    }

    #[test]
    fn cluster_ip_when_no_load_balancer_yet() {
        let svc = service(json!({"metadata": {"name": "gw"}, "spec": {"clusterIP": "10.0.0.5"}}));
        assert_eq!(service_addresses(&svc), vec![json!({"type": "IPAddress", "value": "10.0.0.5"})]);
    }
}
