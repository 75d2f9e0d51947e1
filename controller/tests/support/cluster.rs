//! A fake cluster for tests: objects as JSON, written to a temporary folder
//! and read back through the real `DirSource`, so generations, parsing and
//! translation are exercised exactly as `weir-gateway` runs them.
// Shared by several test crates; each uses a part.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use weir_controller::{AddressPool, DirSource, TranslateOptions, Translation};

pub const CONTROLLER: &str = "weir.dev/gateway-controller";
pub const POOL: &str = "127.20.0.0/16";

pub struct Cluster {
    dir: tempfile::TempDir,
    source: DirSource,
    /// (kind, namespace, name) → object.
    pub objects: BTreeMap<(String, String, String), Value>,
    pub last: Translation,
}

fn key_of(object: &Value) -> Option<(String, String, String)> {
    let kind = object.get("kind")?.as_str()?.to_string();
    let meta = object.get("metadata")?;
    let name = meta.get("name")?.as_str()?.to_string();
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((kind, ns, name))
}

impl Cluster {
    pub fn new() -> Self {
        Self::with_pool(POOL)
    }

    pub fn with_pool(pool: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = AddressPool::new(pool.parse().expect("pool")).expect("pool");
        let source = DirSource::new(
            dir.path().to_path_buf(),
            TranslateOptions::new(CONTROLLER.to_string(), pool),
        );
        Cluster {
            dir,
            source,
            objects: BTreeMap::new(),
            last: Translation::default(),
        }
    }

    /// Adds or replaces objects given as YAML text (multi-document).
    pub fn apply_yaml(&mut self, text: &str) {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("test YAML parses");
            self.apply_value(value);
        }
    }

    pub fn apply_value(&mut self, value: Value) {
        if let Some(key) = key_of(&value) {
            self.objects.insert(key, value);
        }
    }

    pub fn delete(&mut self, kind: &str, ns: &str, name: &str) {
        self.objects
            .remove(&(kind.to_string(), ns.to_string(), name.to_string()));
    }

    /// RFC 7386 merge patch of one object.
    pub fn patch(&mut self, kind: &str, ns: &str, name: &str, patch: &Value) -> bool {
        match self
            .objects
            .get_mut(&(kind.to_string(), ns.to_string(), name.to_string()))
        {
            Some(target) => {
                merge(target, patch);
                true
            }
            None => false,
        }
    }

    /// Writes every object to the folder and reloads.
    pub fn reload(&mut self) -> &Translation {
        let docs: Vec<String> = self
            .objects
            .values()
            .map(|v| serde_yaml::to_string(v).expect("YAML"))
            .collect();
        std::fs::write(self.dir.path().join("objects.yaml"), docs.join("---\n"))
            .expect("write objects");
        self.last = self.source.reload();
        &self.last
    }

    /// Writes a raw file next to the objects (for malformed-input tests).
    pub fn write_file(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write file");
    }

    pub fn remove_file(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).expect("remove file");
    }

    pub fn reload_only(&mut self) -> &Translation {
        self.last = self.source.reload();
        &self.last
    }

    /// `status` of an object in the last translation.
    pub fn status(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.last.status_of(kind, ns, name)
    }

    pub fn generation(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<i64> {
        self.last
            .statuses
            .iter()
            .find(|s| s.kind == kind && s.namespace.as_deref() == ns && s.name == name)
            .map(|s| s.generation)
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(map) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let Value::Object(t) = target else { return };
            for (k, v) in map {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The condition of `type_` in a conditions array.
pub fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == type_)
}

/// Asserts `type_` has `status` (and `reason` when given).
pub fn assert_condition(
    conditions: &Value,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    what: &str,
) {
    let c = condition(conditions, type_)
        .unwrap_or_else(|| panic!("{what}: no {type_} condition in {conditions}"));
    assert_eq!(c["status"], status, "{what}: {type_} status in {c}");
    if let Some(reason) = reason {
        assert_eq!(c["reason"], reason, "{what}: {type_} reason in {c}");
    }
}
