//! What a translation reports: object status stanzas and diagnostics.

use serde::Serialize;

/// A `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: i64,
    /// Kept from the previous translation while `status` is unchanged.
    pub last_transition_time: String,
}

impl Condition {
    pub fn new(
        type_: &str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
        generation: i64,
    ) -> Self {
        Condition {
            type_: type_.to_string(),
            status: if ok { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: String::new(),
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// One object's status as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub generation: i64,
    /// Exactly the Kubernetes `status` stanza; `{}` for objects we don't manage.
    pub status: serde_json::Value,
}

/// A problem that is not (only) a status condition: a file that does not
/// parse, an object that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: Option<String>,
    /// `Kind ns/name`.
    pub object: Option<String>,
    /// `spec.x.y`.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sep = "";
        for part in [&self.file, &self.object, &self.field]
            .into_iter()
            .flatten()
        {
            write!(f, "{sep}{part}")?;
            sep = ": ";
        }
        write!(f, "{sep}{}", self.message)
    }
}

/// The result of one translation.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    pub snapshot: weir_model::Snapshot,
    pub statuses: Vec<ObjectStatus>,
    pub errors: Vec<Diagnostic>,
}

impl Translation {
    /// The status of one object, if listed.
    pub fn status_of(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&serde_json::Value> {
        self.statuses
            .iter()
            .find(|s| s.kind == kind && s.namespace.as_deref() == namespace && s.name == name)
            .map(|s| &s.status)
    }
}
