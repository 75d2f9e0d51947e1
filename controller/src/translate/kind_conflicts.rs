//! HTTPRoute and GRPCRoute sharing a listener and a hostname.
//!
//! "If a Route (A) of type HTTPRoute or GRPCRoute is attached to a Listener
//! and that listener already has another Route (B) of the other type
//! attached and the intersection of the hostnames of A and B is non-empty,
//! then the implementation MUST accept exactly one of these two routes,
//! determined by the following criteria, in order: the oldest Route based on
//! creation timestamp; the Route appearing first in alphabetical order by
//! "{namespace}/{name}". The rejected Route MUST raise an 'Accepted'
//! condition with a status of 'False' in the corresponding RouteParentStatus."

use std::collections::{BTreeMap, BTreeSet};

use super::attach::ParentOutcome;
use super::hostname::covers;
use super::listeners::Problem;

/// What the resolution needs to know about one route.
pub(crate) struct RouteView<'a> {
    pub kind: &'a str,
    pub ns: &'a str,
    pub name: &'a str,
    pub created: Option<&'a str>,
    pub outcomes: &'a mut Vec<ParentOutcome>,
}

/// (route, parentRef, attachment) indices.
type Entry = (usize, usize, usize);

fn age_key<'a>(r: &RouteView<'a>) -> (bool, &'a str, &'a str, &'a str) {
    // Missing timestamps count as newest, as in route precedence.
    (r.created.is_none(), r.created.unwrap_or(""), r.ns, r.name)
}

fn hostnames<'r>(routes: &'r [RouteView<'_>], (r, p, a): Entry) -> &'r [String] {
    match &routes[r].outcomes[p] {
        ParentOutcome::Attached(list) => &list[a].hostnames,
        _ => &[],
    }
}

fn intersect(a: &[String], b: &[String]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| covers(x, y) || covers(y, x)))
}

/// Removes the losing attachments; a parentRef left with none is rejected.
pub(crate) fn resolve(routes: &mut [RouteView<'_>]) {
    // Listener → (route, parentRef, attachment) attached there.
    let mut by_listener: BTreeMap<(usize, usize), Vec<Entry>> = BTreeMap::new();
    for (r, route) in routes.iter().enumerate() {
        for (p, outcome) in route.outcomes.iter().enumerate() {
            if let ParentOutcome::Attached(list) = outcome {
                for (a, attachment) in list.iter().enumerate() {
                    by_listener
                        .entry((attachment.gateway, attachment.listener))
                        .or_default()
                        .push((r, p, a));
                }
            }
        }
    }
    // (route, parentRef, attachment) → the route it lost to. Oldest first, a
    // route is kept unless a kept route of the other kind shares a hostname,
    // so a route that lost cannot knock out a third one.
    let mut losers: BTreeMap<Entry, String> = BTreeMap::new();
    for entries in by_listener.values_mut() {
        let kinds: BTreeSet<&str> = entries.iter().map(|e| routes[e.0].kind).collect();
        if kinds.len() < 2 {
            continue; // one kind only: nothing to settle (the common case)
        }
        entries.sort_by(|x, y| age_key(&routes[x.0]).cmp(&age_key(&routes[y.0])));
        let mut kept: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
        for &entry in entries.iter() {
            let route = &routes[entry.0];
            let mine = hostnames(routes, entry);
            let winner = kept
                .iter()
                .filter(|(kind, _)| **kind != route.kind)
                .flat_map(|(_, list)| list.iter())
                .find(|k| intersect(hostnames(routes, **k), mine));
            match winner {
                Some(w) => {
                    let w = &routes[w.0];
                    losers.insert(entry, format!("{} {}/{}", w.kind, w.ns, w.name));
                }
                None => kept.entry(route.kind).or_default().push(entry),
            }
        }
    }
    let touched: BTreeSet<(usize, usize)> = losers.keys().map(|&(r, p, _)| (r, p)).collect();
    for (r, p) in touched {
        let ParentOutcome::Attached(list) = &routes[r].outcomes[p] else {
            continue;
        };
        let mut kept = Vec::new();
        let mut lost_to = Vec::new();
        for (a, attachment) in list.iter().enumerate() {
            match losers.get(&(r, p, a)) {
                Some(winner) => lost_to.push(winner.clone()),
                None => kept.push(attachment.clone()),
            }
        }
        routes[r].outcomes[p] = if kept.is_empty() {
            lost_to.sort();
            lost_to.dedup();
            ParentOutcome::Rejected(Problem::new(
                "NotAllowedByListeners",
                format!(
                    "the listener already serves these hostnames for {}, which is older or sorts first",
                    lost_to.join(", ")
                ),
            ))
        } else {
            ParentOutcome::Attached(kept)
        };
    }
}
