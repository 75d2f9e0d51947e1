//! Route precedence, as the HTTPRoute spec orders matches for one hostname:
//!
//! "Proxy or Load Balancer routing configuration generated from HTTPRoutes
//! MUST prioritize matches based on the following criteria, continuing on
//! ties [...]: Exact path match; Prefix path match with largest number of
//! characters; Method match; Largest number of header matches; Largest
//! number of query param matches. If ties still exist across multiple
//! Routes, matching precedence MUST be determined in order of: the oldest
//! Route based on creation timestamp; the Route appearing first in
//! alphabetical order by {namespace}/{name}. If ties still exist within an
//! HTTPRoute, matching precedence MUST be granted to the FIRST matching rule
//! (in list order) with a match meeting the above criteria."
//!
//! Regular expression paths are implementation-specific; Weir ranks them
//! between exact and prefix paths (longer expressions first), as Envoy
//! Gateway does, so that a catch-all prefix never hides them.

use std::cmp::Reverse;

use weir_model::{PathMatch, RouteMatch};

/// Sort key of one match of one rule: smaller sorts first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Precedence {
    path_kind: u8,
    path_len: Reverse<usize>,
    no_method: bool,
    headers: Reverse<usize>,
    query: Reverse<usize>,
    /// Missing timestamps sort after present ones (treated as newest) and
    /// tie among themselves; RFC 3339 UTC strings order chronologically.
    created: (bool, String),
    namespace: String,
    name: String,
    rule: usize,
    match_index: usize,
}

impl Precedence {
    pub(crate) fn new(
        m: &RouteMatch,
        creation_timestamp: Option<&str>,
        namespace: &str,
        name: &str,
        rule: usize,
        match_index: usize,
    ) -> Self {
        let (path_kind, path_len) = match &m.path {
            PathMatch::Exact(p) => (0, p.len()),
            PathMatch::Regex(p) => (1, p.len()),
            // A trailing slash does not change what a prefix matches.
            PathMatch::Prefix(p) => (2, p.trim_end_matches('/').len()),
        };
        Precedence {
            path_kind,
            path_len: Reverse(path_len),
            no_method: m.method.is_none(),
            headers: Reverse(m.headers.len()),
            query: Reverse(m.query.len()),
            created: match creation_timestamp {
                Some(ts) => (false, ts.to_string()),
                None => (true, String::new()),
            },
            namespace: namespace.to_string(),
            name: name.to_string(),
            rule,
            match_index,
        }
    }
}
