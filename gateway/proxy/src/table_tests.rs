//! Table tests for host lookup, listener isolation and precedence.
use super::*;
use std::collections::BTreeMap;
use weir_model::{ListenerTls, RouteAction, RouteMatch, RouteSource, SniCertificate, Timeouts};

fn route(name: &str, path: PathMatch) -> Route {
    Route {
        source: RouteSource {
            kind: "HTTPRoute".into(),
            namespace: "ns".into(),
            name: name.into(),
            rule: 0,
            rule_name: None,
        },
        matcher: RouteMatch {
            path,
            ..Default::default()
        },
        action: RouteAction::DirectResponse {
            status: 200,
            body: None,
        },
        filters: vec![],
        timeouts: Timeouts::default(),
        retry: None,
    }
}
use weir_model::PathMatch;

fn vhost(host: &str, routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        hostname: host.into(),
        gateway_listener: format!("gw/{host}"),
        routes,
    }
}

fn table(vhosts: Vec<VirtualHost>) -> RouteTable {
    let listener = Listener {
        name: "l".into(),
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 80,
        protocol: ListenerProtocol::Http,
        tls: None,
        virtual_hosts: vhosts,
    };
    let snap = Snapshot {
        version: 1,
        listeners: vec![listener],
        clusters: BTreeMap::new(),
        certificates: BTreeMap::new(),
    };
    RouteTable::compile(&snap).0
}

fn find(t: &RouteTable, host: &str, path: &str) -> Option<String> {
    let h = http::HeaderMap::new();
    let req = RequestView {
        method: "GET",
        path,
        query: None,
        headers: &h,
        port: 80,
    };
    match t.lookup(
        SocketAddr::from(([127, 0, 0, 1], 80)),
        &normalize_host(host),
        &req,
    ) {
        Lookup::Matched(_, r) => Some(r.route.source.name.clone()),
        _ => None,
    }
}

#[test]
fn host_lookup_exact_then_longest_wildcard_then_catch_all() {
    let t = table(vec![
        vhost("*", vec![route("any", PathMatch::default())]),
        vhost("*.example.com", vec![route("wild", PathMatch::default())]),
        vhost(
            "*.b.example.com",
            vec![route("wild-b", PathMatch::default())],
        ),
        vhost("a.example.com", vec![route("exact", PathMatch::default())]),
    ]);
    let cases = [
        ("a.example.com", "exact"),
        ("A.EXAMPLE.COM:80", "exact"),
        ("x.example.com", "wild"),
        ("x.y.example.com", "wild"),
        ("x.b.example.com", "wild-b"),
        ("b.example.com", "wild"),
        ("example.com", "any"),
        ("other.org", "any"),
        ("", "any"),
    ];
    for (host, want) in cases {
        assert_eq!(find(&t, host, "/").as_deref(), Some(want), "host {host}");
    }
}

#[test]
fn listener_isolation_no_fallback_from_a_matching_vhost() {
    let t = table(vec![
        vhost("*", vec![route("any", PathMatch::default())]),
        vhost(
            "a.example.com",
            vec![route("exact", PathMatch::Prefix("/a".into()))],
        ),
    ]);
    assert_eq!(find(&t, "a.example.com", "/a/b").as_deref(), Some("exact"));
    assert_eq!(find(&t, "a.example.com", "/other"), None);
}

#[test]
fn routes_walk_in_precedence_order() {
    let t = table(vec![vhost(
        "h",
        vec![
            route("exact", PathMatch::Exact("/x".into())),
            route("prefix", PathMatch::Prefix("/".into())),
        ],
    )]);
    assert_eq!(find(&t, "h", "/x").as_deref(), Some("exact"));
    assert_eq!(find(&t, "h", "/y").as_deref(), Some("prefix"));
}

#[test]
fn bad_regex_disables_only_its_route() {
    let listener = Listener {
        name: "l".into(),
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 80,
        protocol: ListenerProtocol::Http,
        tls: None,
        virtual_hosts: vec![vhost(
            "h",
            vec![
                route("bad", PathMatch::Regex("(".into())),
                route("good", PathMatch::default()),
            ],
        )],
    };
    let snap = Snapshot {
        version: 1,
        listeners: vec![listener],
        clusters: BTreeMap::new(),
        certificates: BTreeMap::new(),
    };
    let (t, problems) = RouteTable::compile(&snap);
    assert_eq!(problems.len(), 1);
    assert_eq!(find(&t, "h", "/").as_deref(), Some("good"));
}

#[test]
fn unspecified_address_listener_is_found_by_port() {
    let listener = Listener {
        name: "l".into(),
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 8080,
        protocol: ListenerProtocol::Https,
        tls: Some(ListenerTls {
            certificates: vec![SniCertificate {
                hostname: None,
                certificate: "c".into(),
                gateway_listener: "gw/l".into(),
            }],
        }),
        virtual_hosts: vec![],
    };
    let snap = Snapshot {
        version: 1,
        listeners: vec![listener],
        clusters: BTreeMap::new(),
        certificates: BTreeMap::new(),
    };
    let (t, _) = RouteTable::compile(&snap);
    let l = t
        .listener(SocketAddr::from(([10, 0, 0, 1], 8080)))
        .expect("listener");
    assert_eq!(l.default_sni_listener.as_deref(), Some("gw/l"));
    assert!(t
        .listener(SocketAddr::from(([10, 0, 0, 1], 8081)))
        .is_none());
}

/// HTTPRouteHTTPSListenerDetectMisdirectedRequests: listeners `https`
/// (no hostname), `second-example.org`, `*.wildcard.org`,
/// `fourth-example.wildcard.org`.
#[test]
fn misdirected_request_detection() {
    let mut sni_listeners = HostIndex::default();
    sni_listeners.insert("second-example.org", "second".to_string());
    sni_listeners.insert("*.wildcard.org", "wild".to_string());
    sni_listeners.insert("fourth-example.wildcard.org", "fourth".to_string());
    let l = ListenerTable {
        name: "l".into(),
        port: 443,
        protocol: ListenerProtocol::Https,
        hosts: HostIndex::default(),
        sni_listeners,
        default_sni_listener: Some("https".into()),
    };
    let cases = [
        // (SNI, Host's listener, misdirected)
        ("example.org", Some("https"), false),
        ("example.org", Some("second"), true),
        ("example.org", None, false),
        ("second-example.org", Some("second"), false),
        ("second-example.org", Some("https"), true),
        ("second-example.org", None, true),
        ("third-example.wildcard.org", Some("wild"), false),
        ("third-example.wildcard.org", Some("fourth"), true),
        ("third-example.wildcard.org", None, true),
        ("fourth-example.wildcard.org", Some("fourth"), false),
        ("fourth-example.wildcard.org", Some("wild"), true),
        ("unknown-example.org", Some("https"), false),
        ("unknown-example.org", None, false),
    ];
    for (sni, vhost, want) in cases {
        assert_eq!(
            l.is_misdirected(Some(sni), vhost),
            want,
            "SNI {sni} host listener {vhost:?}"
        );
    }
}

#[test]
fn normalize_host_strips_port_and_case() {
    assert_eq!(normalize_host("Example.COM:8080"), "example.com");
    assert_eq!(normalize_host("example.com."), "example.com");
    assert_eq!(normalize_host("[::1]:80"), "[::1]");
    assert_eq!(normalize_host("1.2.3.4"), "1.2.3.4");
}
