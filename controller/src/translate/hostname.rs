//! Hostname patterns: `example.com`, `*.example.com` (one or more labels in
//! front of `example.com`) and `*` (any host, used for listeners and routes
//! without hostnames).

/// The catch-all pattern.
pub(crate) const ANY: &str = "*";

/// Whether every host matched by `inner` is also matched by `outer`.
pub(crate) fn covers(outer: &str, inner: &str) -> bool {
    if outer == ANY || outer == inner {
        return true;
    }
    let Some(suffix) = outer.strip_prefix('*') else {
        return false;
    };
    // `*.example.com` covers `a.example.com`, `a.b.example.com`,
    // `*.b.example.com`, but not `example.com`.
    let inner_base = inner.strip_prefix('*').unwrap_or(inner);
    inner_base.len() > suffix.len() && inner_base.ends_with(suffix)
        || inner.starts_with('*') && inner_base == suffix
}

/// Ordering key: larger is more specific. Exact names beat wildcards, longer
/// wildcards beat shorter ones, `*` is the least specific.
pub(crate) fn specificity(pattern: &str) -> (u8, usize) {
    if pattern == ANY {
        (0, 0)
    } else if pattern.starts_with('*') {
        (1, pattern.len())
    } else {
        (2, pattern.len())
    }
}

/// The hostnames a route serves through a listener, per the spec: "Hostnames
/// that are prefixed with a wildcard label (`*.`) are interpreted as a suffix
/// match. [...] The HTTPRoute's hostnames are matched against the Listener's
/// hostname; only the intersection is used." Empty means no match.
pub(crate) fn intersect(listener: Option<&str>, route_hostnames: &[String]) -> Vec<String> {
    let listener = listener.unwrap_or(ANY);
    if route_hostnames.is_empty() {
        return vec![listener.to_string()];
    }
    let mut out: Vec<String> = route_hostnames
        .iter()
        .filter_map(|route| {
            let route = route.to_ascii_lowercase();
            if covers(listener, &route) {
                Some(route)
            } else if covers(&route, listener) {
                Some(listener.to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcard_covers_one_or_more_labels_but_not_the_bare_suffix() {
        assert!(covers("*.example.com", "a.example.com"));
        assert!(covers("*.example.com", "a.b.example.com"));
        assert!(covers("*.example.com", "*.b.example.com"));
        assert!(covers("*.example.com", "*.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "aexample.com"));
        assert!(!covers("a.example.com", "*.example.com"));
        assert!(covers("*", "*.example.com"));
    }

    #[test]
    fn intersection_keeps_the_more_specific_side() {
        // Spec examples (HTTPRoute hostnames doc).
        assert_eq!(
            intersect(Some("*.example.com"), &names(&["foo.example.com"])),
            names(&["foo.example.com"])
        );
        assert_eq!(
            intersect(Some("foo.example.com"), &names(&["*.example.com"])),
            names(&["foo.example.com"])
        );
        assert_eq!(
            intersect(Some("*.example.com"), &names(&["*.foo.example.com"])),
            names(&["*.foo.example.com"])
        );
        assert_eq!(
            intersect(Some("foo.example.com"), &names(&["bar.example.com"])),
            Vec::<String>::new()
        );
        assert_eq!(intersect(None, &[]), names(&["*"]));
        assert_eq!(intersect(Some("a.com"), &[]), names(&["a.com"]));
        assert_eq!(
            intersect(None, &names(&["b.com", "a.com"])),
            names(&["a.com", "b.com"])
        );
    }

    #[test]
    fn specificity_orders_exact_then_longest_wildcard_then_any() {
        assert!(specificity("a.example.com") > specificity("*.foo.example.com"));
        assert!(specificity("*.foo.example.com") > specificity("*.example.com"));
        assert!(specificity("*.example.com") > specificity("*"));
    }
}
