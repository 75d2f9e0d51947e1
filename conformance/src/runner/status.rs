//! A snapshot of the gateway's `GET /status` and the lookups steps need.

use serde_json::Value;

use super::case::{split_ref, ConditionExpect};

#[derive(Debug, Clone)]
pub struct StatusView {
    pub raw: Value,
}

/// One object of `/status`.
#[derive(Debug, Clone, Copy)]
pub struct ObjStatus<'a> {
    pub entry: &'a Value,
}

impl<'a> ObjStatus<'a> {
    pub fn generation(&self) -> Option<i64> {
        self.entry.get("generation").and_then(Value::as_i64)
    }
    pub fn status(&self) -> &'a Value {
        self.entry.get("status").unwrap_or(&Value::Null)
    }
    pub fn conditions(&self) -> &'a [Value] {
        arr(self.status().get("conditions"))
    }
    pub fn parents(&self) -> &'a [Value] {
        arr(self.status().get("parents"))
    }
    pub fn listeners(&self) -> &'a [Value] {
        arr(self.status().get("listeners"))
    }
    pub fn listener(&self, name: &str) -> Option<&'a Value> {
        self.listeners().iter().find(|l| l.get("name").and_then(Value::as_str) == Some(name))
    }
    pub fn addresses(&self) -> &'a [Value] {
        arr(self.status().get("addresses"))
    }
    /// First status address value.
    pub fn address(&self) -> Option<&'a str> {
        self.addresses().iter().find_map(|a| a.get("value").and_then(Value::as_str))
    }
    /// Every status condition's observedGeneration equals the object's generation.
    pub fn conditions_current(&self) -> Result<(), String> {
        conditions_at(self.conditions(), self.generation())
    }
}

pub fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// All conditions are at `generation` (None: the object has no generation; nothing to compare).
pub fn conditions_at(conds: &[Value], generation: Option<i64>) -> Result<(), String> {
    let Some(g) = generation else { return Ok(()) };
    for c in conds {
        let og = c.get("observedGeneration").and_then(Value::as_i64);
        if og != Some(g) {
            return Err(format!(
                "condition {} has observedGeneration {:?}, want {g}",
                str_field(c, "type").unwrap_or("?"),
                og
            ));
        }
    }
    Ok(())
}

/// Each expected condition is present (type + status, reason when given).
pub fn conditions_match(actual: &[Value], expected: &[ConditionExpect]) -> Result<(), String> {
    for e in expected {
        let found = actual.iter().find(|c| str_field(c, "type") == Some(e.type_.as_str()));
        match found {
            None => return Err(format!("no {} condition (have {})", e.type_, summarize(actual))),
            Some(c) => {
                let status = str_field(c, "status").unwrap_or("");
                let reason = str_field(c, "reason").unwrap_or("");
                if status != e.status || e.reason.as_deref().is_some_and(|r| r != reason) {
                    return Err(format!(
                        "condition {}: want status {} reason {}, got status {status} reason {reason} ({})",
                        e.type_,
                        e.status,
                        e.reason.as_deref().unwrap_or("(any)"),
                        str_field(c, "message").unwrap_or("")
                    ));
                }
            }
        }
    }
    Ok(())
}

pub fn summarize(conds: &[Value]) -> String {
    let parts: Vec<String> = conds
        .iter()
        .map(|c| {
            format!(
                "{}={}/{}",
                str_field(c, "type").unwrap_or("?"),
                str_field(c, "status").unwrap_or("?"),
                str_field(c, "reason").unwrap_or("?")
            )
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

impl StatusView {
    pub fn new(raw: Value) -> Self {
        StatusView { raw }
    }

    pub fn objects(&self) -> &[Value] {
        arr(self.raw.get("objects"))
    }

    /// `kind ns/name`; on a kind shared by two APIs (Gateway), the Gateway API one wins.
    pub fn find(&self, kind: &str, reference: &str) -> Option<ObjStatus<'_>> {
        let (ns, name) = split_ref(reference);
        let mut fallback = None;
        for o in self.objects() {
            if str_field(o, "kind") != Some(kind) || str_field(o, "name") != Some(name) {
                continue;
            }
            if str_field(o, "namespace").filter(|s| !s.is_empty()) != ns {
                continue;
            }
            if str_field(o, "apiVersion").is_some_and(|a| a.starts_with("gateway.networking.k8s.io")) {
                return Some(ObjStatus { entry: o });
            }
            fallback.get_or_insert(ObjStatus { entry: o });
        }
        fallback
    }

    pub fn require(&self, kind: &str, reference: &str) -> Result<ObjStatus<'_>, String> {
        self.find(kind, reference).ok_or_else(|| format!("{kind} {reference} is not in /status"))
    }

    /// Gateway diagnostics (`errors`), for failure messages.
    pub fn errors_summary(&self) -> String {
        let errs = arr(self.raw.get("errors"));
        errs.iter()
            .take(5)
            .map(|e| {
                format!(
                    "{} {} {}: {}",
                    str_field(e, "file").unwrap_or("-"),
                    str_field(e, "object").unwrap_or("-"),
                    str_field(e, "field").unwrap_or("-"),
                    str_field(e, "message").unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
