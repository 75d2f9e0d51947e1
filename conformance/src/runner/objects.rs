//! The object set of one case: manifests read as YAML documents, kept per
//! source file so that apply/delete steps become file writes in the gateway's
//! config dir.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use serde_yaml::{Mapping, Value};

use super::case::split_ref;

pub const GATEWAY_CLASS_NAME: &str = "weir";
pub const CONTROLLER_NAME: &str = "weir.dev/gateway-controller";

/// One file of the config dir and the objects it holds.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub objects: Vec<Value>,
}

#[derive(Debug, Default, Clone)]
pub struct ObjectStore {
    pub files: Vec<SourceFile>,
}

/// Address values given to `PLACEHOLDER_*_ADDRS`.
#[derive(Debug, Clone)]
pub struct Placeholders {
    pub usable: String,
    pub unusable: String,
}

pub fn kind(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}
pub fn api_version(v: &Value) -> &str {
    v.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}
pub fn name(v: &Value) -> &str {
    v.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("")
}
pub fn namespace(v: &Value) -> Option<&str> {
    v.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str)
}

/// Same object: kind, namespace, name and API group.
fn same_object(a: &Value, b: &Value) -> bool {
    kind(a) == kind(b)
        && namespace(a) == namespace(b)
        && name(a) == name(b)
        && group(api_version(a)) == group(api_version(b))
}

fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Replaces the class and controller placeholders in manifest text.
pub fn substitute_text(text: &str) -> String {
    text.replace("{GATEWAY_CLASS_NAME}", GATEWAY_CLASS_NAME)
        .replace("{GATEWAY_CONTROLLER_NAME}", CONTROLLER_NAME)
}

/// Parses a multi-document YAML text into objects (empty documents dropped).
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)?;
        if v.is_mapping() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Reads a manifest file with the text placeholders replaced.
pub fn read_manifest(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_documents(&substitute_text(&text)).with_context(|| format!("parsing {}", path.display()))
}

/// Replaces `PLACEHOLDER_USABLE_ADDRS` / `PLACEHOLDER_UNUSABLE_ADDRS` entries of
/// Gateway `spec.addresses` by `{type, value}` (type IPAddress unless given).
pub fn substitute_addresses(obj: &mut Value, p: &Placeholders) {
    if kind(obj) != "Gateway" {
        return;
    }
    let Some(addrs) = obj
        .get_mut("spec")
        .and_then(|s| s.get_mut("addresses"))
        .and_then(Value::as_sequence_mut)
    else {
        return;
    };
    for a in addrs.iter_mut() {
        let replacement = match a.get("value").and_then(Value::as_str) {
            Some("PLACEHOLDER_USABLE_ADDRS") => p.usable.clone(),
            Some("PLACEHOLDER_UNUSABLE_ADDRS") => p.unusable.clone(),
            _ => continue,
        };
        let ty = a.get("type").and_then(Value::as_str).unwrap_or("IPAddress").to_string();
        let mut m = Mapping::new();
        m.insert("type".into(), ty.into());
        m.insert("value".into(), replacement.into());
        *a = Value::Mapping(m);
    }
}

/// The GatewayClass under test.
pub fn gateway_class() -> Value {
    serde_yaml::from_str(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: {GATEWAY_CLASS_NAME}\nspec:\n  controllerName: {CONTROLLER_NAME}\n"
    ))
    .unwrap_or(Value::Null)
}

/// RFC 7386 JSON merge patch: maps merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Mapping(pm) => {
            if !target.is_mapping() {
                *target = Value::Mapping(Mapping::new());
            }
            if let Value::Mapping(tm) = target {
                for (k, v) in pm {
                    if v.is_null() {
                        tm.remove(k);
                    } else {
                        let entry = tm.entry(k.clone()).or_insert(Value::Null);
                        merge_patch(entry, v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl ObjectStore {
    pub fn add_file(&mut self, name: impl Into<String>, objects: Vec<Value>) {
        self.files.push(SourceFile { name: name.into(), objects });
    }

    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.files.iter().flat_map(|f| f.objects.iter())
    }

    pub fn of_kind<'a>(&'a self, k: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.all().filter(move |o| kind(o) == k)
    }

    /// Finds `kind ns/name`, preferring the Gateway API group on ambiguity.
    pub fn find(&self, k: &str, reference: &str) -> Option<(usize, usize)> {
        let (ns, n) = split_ref(reference);
        let mut found = None;
        for (fi, f) in self.files.iter().enumerate() {
            for (oi, o) in f.objects.iter().enumerate() {
                if kind(o) == k && name(o) == n && namespace(o) == ns {
                    if group(api_version(o)) == "gateway.networking.k8s.io" {
                        return Some((fi, oi));
                    }
                    found.get_or_insert((fi, oi));
                }
            }
        }
        found
    }

    pub fn get(&self, k: &str, reference: &str) -> Option<&Value> {
        self.find(k, reference).map(|(f, o)| &self.files[f].objects[o])
    }

    /// Adds or replaces an object; new objects go to file `new_file`.
    /// Returns the index of the file that changed.
    pub fn upsert(&mut self, obj: Value, new_file: &str) -> usize {
        for (fi, f) in self.files.iter_mut().enumerate() {
            if let Some(slot) = f.objects.iter_mut().find(|o| same_object(o, &obj)) {
                *slot = obj;
                return fi;
            }
        }
        if let Some(fi) = self.files.iter().position(|f| f.name == new_file) {
            self.files[fi].objects.push(obj);
            return fi;
        }
        self.files.push(SourceFile { name: new_file.to_string(), objects: vec![obj] });
        self.files.len() - 1
    }

    pub fn remove(&mut self, k: &str, reference: &str) -> anyhow::Result<usize> {
        let (fi, oi) = self.find(k, reference).ok_or_else(|| anyhow!("no {k} {reference} in the case's objects"))?;
        self.files[fi].objects.remove(oi);
        Ok(fi)
    }

    pub fn patch(&mut self, k: &str, reference: &str, merge: &Value) -> anyhow::Result<usize> {
        let (fi, oi) = self.find(k, reference).ok_or_else(|| anyhow!("no {k} {reference} in the case's objects"))?;
        merge_patch(&mut self.files[fi].objects[oi], merge);
        Ok(fi)
    }

    pub fn file_index(&self, name: &str) -> Option<usize> {
        self.files.iter().position(|f| f.name == name)
    }

    /// Writes one file atomically (temp name without a YAML extension, then rename).
    pub fn write_file(&self, dir: &Path, index: usize) -> anyhow::Result<()> {
        let f = &self.files[index];
        let path = dir.join(&f.name);
        if f.objects.is_empty() {
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
            return Ok(());
        }
        let mut text = String::new();
        for o in &f.objects {
            text.push_str("---\n");
            text.push_str(&serde_yaml::to_string(o)?);
        }
        let tmp: PathBuf = dir.join(format!(".{}.tmp", f.name));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    pub fn write_all(&self, dir: &Path) -> anyhow::Result<()> {
        for i in 0..self.files.len() {
            self.write_file(dir, i)?;
        }
        Ok(())
    }
}

/// A file name for a manifest path: `tests/httproute-matching.yaml` -> `20-httproute-matching.yaml`.
pub fn file_name_for(prefix: &str, manifest: &str) -> String {
    let base = Path::new(manifest)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| manifest.replace('/', "_"));
    format!("{prefix}-{base}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).expect("yaml")
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = y("{a: 1, b: {c: 2, d: 3}, l: [1, 2]}");
        merge_patch(&mut t, &y("{b: {c: null, e: 4}, l: [9], n: x}"));
        assert_eq!(t, y("{a: 1, b: {d: 3, e: 4}, l: [9], n: x}"));
        let mut t = y("{a: [1]}");
        merge_patch(&mut t, &y("{a: {b: 1}}"));
        assert_eq!(t, y("{a: {b: 1}}"));
    }

    #[test]
    fn placeholders() {
        let text = substitute_text("spec:\n  gatewayClassName: \"{GATEWAY_CLASS_NAME}\"\n  c: \"{GATEWAY_CONTROLLER_NAME}\"\n");
        assert!(text.contains("gatewayClassName: \"weir\""));
        assert!(text.contains("weir.dev/gateway-controller"));
        let mut gw = y("kind: Gateway\nspec:\n  addresses:\n  - {type: test/fake-invalid-type, value: x}\n  - value: PLACEHOLDER_UNUSABLE_ADDRS\n  - value: PLACEHOLDER_USABLE_ADDRS\n");
        substitute_addresses(&mut gw, &Placeholders { usable: "127.20.255.1".into(), unusable: "192.0.2.1".into() });
        let want = y("kind: Gateway\nspec:\n  addresses:\n  - {type: test/fake-invalid-type, value: x}\n  - {type: IPAddress, value: 192.0.2.1}\n  - {type: IPAddress, value: 127.20.255.1}\n");
        assert_eq!(gw, want);
    }

    #[test]
    fn store_upsert_patch_remove() {
        let mut s = ObjectStore::default();
        s.add_file("a.yaml", vec![y("{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: r, namespace: n}, spec: {x: 1}}")]);
        let fi = s.upsert(y("{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: r, namespace: n}, spec: {x: 2}}"), "b.yaml");
        assert_eq!(fi, 0);
        assert_eq!(s.files.len(), 1);
        s.patch("HTTPRoute", "n/r", &y("{spec: {y: 3}}")).expect("patch");
        assert_eq!(s.get("HTTPRoute", "n/r").and_then(|o| o.get("spec")), Some(&y("{x: 2, y: 3}")));
        assert_eq!(s.upsert(y("{kind: GatewayClass, metadata: {name: c}}"), "b.yaml"), 1);
        assert!(s.get("GatewayClass", "/c").is_some());
        s.remove("HTTPRoute", "n/r").expect("remove");
        assert!(s.get("HTTPRoute", "n/r").is_none());
    }
}
