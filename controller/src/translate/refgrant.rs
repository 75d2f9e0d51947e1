//! ReferenceGrant checks for cross-namespace references.

use crate::objects::ObjectSet;

/// The referring side of a reference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct From<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

/// The referenced object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct To<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The core group is written `""`; `core` is accepted too.
pub(crate) fn normalize_group(group: &str) -> &str {
    if group == "core" {
        ""
    } else {
        group
    }
}

/// "A ReferenceGrant in the target namespace allows references from the
/// listed `from` (group, kind, namespace) to the listed `to` (group, kind and
/// optionally name)". Same-namespace references need no grant.
pub(crate) fn permitted(objects: &ObjectSet, from: From<'_>, to: To<'_>) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    objects
        .reference_grants
        .values()
        .filter(|g| g.metadata.namespace() == to.namespace)
        .any(|grant| {
            let from_ok = grant.spec.from.iter().any(|f| {
                normalize_group(&f.group) == normalize_group(from.group)
                    && f.kind == from.kind
                    && f.namespace == from.namespace
            });
            let to_ok = grant.spec.to.iter().any(|t| {
                normalize_group(&t.group) == normalize_group(to.group)
                    && t.kind == to.kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to.name)
            });
            from_ok && to_ok
        })
}
