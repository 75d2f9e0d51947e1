//! Weighted choices: which backendRef of a rule, and which endpoint of a
//! cluster. Pure; callers pass the random number so tests are deterministic.

use std::net::SocketAddr;

use weir_model::{Cluster, WeightedBackend};

/// Picks an index by cumulative weight: with weights `[w0, w1, ...]` and
/// `roll` uniform in `0..sum`, index `i` is picked with probability `wi/sum`.
/// Weight 0 is never picked; `None` when all weights are 0.
pub fn pick_weighted(weights: impl Iterator<Item = u32> + Clone, roll: u64) -> Option<usize> {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return None;
    }
    let mut point = roll % total;
    for (i, w) in weights.enumerate() {
        let w = u64::from(w);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// Which backendRef serves this request. `None` when every weight is 0
/// (the Gateway API answers 500 then).
pub fn pick_backend(backends: &[WeightedBackend], roll: u64) -> Option<&WeightedBackend> {
    pick_weighted(backends.iter().map(|b| b.weight), roll).map(|i| &backends[i])
}

/// A ready endpoint of the cluster, by endpoint weight. Endpoints in `avoid`
/// (already tried by this request) are skipped when another one exists.
pub fn pick_endpoint(cluster: &Cluster, roll: u64, avoid: &[SocketAddr]) -> Option<SocketAddr> {
    let usable = |skip_tried: bool| {
        cluster
            .endpoints
            .iter()
            .filter(move |e| e.ready && !(skip_tried && avoid.contains(&e.address)))
    };
    let skip_tried = usable(true).any(|e| e.weight > 0);
    let candidates: Vec<_> = usable(skip_tried).collect();
    pick_weighted(candidates.iter().map(|e| e.weight), roll).map(|i| candidates[i].address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::{Endpoint, UpstreamProtocol};

    fn backend(cluster: Option<&str>, weight: u32) -> WeightedBackend {
        WeightedBackend {
            cluster: cluster.map(Into::into),
            weight,
            filters: vec![],
        }
    }

    #[test]
    fn backend_weights_are_cumulative() {
        let backends = [
            backend(Some("a"), 1),
            backend(Some("b"), 0),
            backend(Some("c"), 3),
        ];
        let picks: Vec<_> = (0..4)
            .map(|r| pick_backend(&backends, r).and_then(|b| b.cluster.clone()))
            .collect();
        assert_eq!(
            picks,
            [
                Some("a".into()),
                Some("c".into()),
                Some("c".into()),
                Some("c".into())
            ]
        );
    }

    #[test]
    fn weight_zero_is_never_picked() {
        let backends = [backend(Some("zero"), 0), backend(Some("one"), 1)];
        for roll in 0..100 {
            assert_eq!(
                pick_backend(&backends, roll).and_then(|b| b.cluster.as_deref()),
                Some("one")
            );
        }
    }

    #[test]
    fn all_zero_weights_pick_nothing() {
        assert!(pick_backend(&[backend(Some("a"), 0), backend(None, 0)], 7).is_none());
        assert!(pick_backend(&[], 7).is_none());
    }

    #[test]
    fn invalid_backend_share_is_picked_by_weight() {
        let backends = [backend(None, 1), backend(Some("ok"), 1)];
        assert_eq!(
            pick_backend(&backends, 0).map(|b| b.cluster.is_none()),
            Some(true)
        );
        assert_eq!(
            pick_backend(&backends, 1).map(|b| b.cluster.is_none()),
            Some(false)
        );
    }

    fn endpoint(port: u16, weight: u32, ready: bool) -> Endpoint {
        Endpoint {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            weight,
            locality: None,
            labels: Default::default(),
            ready,
        }
    }

    fn cluster(endpoints: Vec<Endpoint>) -> Cluster {
        Cluster {
            name: "c".into(),
            protocol: UpstreamProtocol::Http1,
            endpoints,
            connect_timeout: None,
            tls: None,
        }
    }

    #[test]
    fn only_ready_endpoints_are_picked() {
        let c = cluster(vec![endpoint(1, 1, false), endpoint(2, 1, true)]);
        for roll in 0..10 {
            assert_eq!(pick_endpoint(&c, roll, &[]).map(|a| a.port()), Some(2));
        }
        assert_eq!(
            pick_endpoint(&cluster(vec![endpoint(1, 1, false)]), 0, &[]),
            None
        );
    }

    #[test]
    fn endpoint_weights_and_retry_avoidance() {
        let c = cluster(vec![endpoint(1, 1, true), endpoint(2, 2, true)]);
        let picks: Vec<_> = (0..3)
            .map(|r| pick_endpoint(&c, r, &[]).map(|a| a.port()))
            .collect();
        assert_eq!(picks, [Some(1), Some(2), Some(2)]);
        let tried = [SocketAddr::from(([127, 0, 0, 1], 2))];
        assert_eq!(pick_endpoint(&c, 2, &tried).map(|a| a.port()), Some(1));
        // When every endpoint was tried, any ready one is fine again.
        let single = cluster(vec![endpoint(1, 1, true)]);
        assert_eq!(
            pick_endpoint(&single, 0, &[SocketAddr::from(([127, 0, 0, 1], 1))]).map(|a| a.port()),
            Some(1)
        );
    }
}
