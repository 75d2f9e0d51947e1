//! The case file format of /work/shared/conformance/FORMAT.md, read exactly as
//! written. Step bodies are typed where the runner interprets them; free-form
//! parts (expected maps, inline objects) stay `serde_yaml::Value`.
//! Some fields are read only to validate the format (and for future steps).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_yaml::Value;

use super::secrets::SecretSpec;
pub use super::case_steps::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub provisional: bool,
    #[serde(default)]
    pub manifests: Vec<String>,
    #[serde(default)]
    pub objects: Vec<Value>,
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    #[serde(default)]
    pub gateway_locality: Option<String>,
    pub steps: Vec<StepEntry>,
}

/// Where a case came from: its file and the folders its manifests are relative to.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    pub case: Case,
    pub file: PathBuf,
    /// Folder `manifests:` are relative to (`upstream/` or `istio/`).
    pub manifest_root: PathBuf,
    /// Base manifest file (upstream/base/manifests.yaml or istio/base.yaml).
    pub base_manifest: Option<PathBuf>,
    /// The upstream/ folder (apply `file:` entries are relative to it).
    pub upstream_dir: PathBuf,
    pub istio: bool,
}

/// One step: exactly one kind key, plus an optional `requires`.
#[derive(Debug, Clone)]
pub struct StepEntry {
    pub requires: Vec<String>,
    pub kind: Step,
}

impl<'de> Deserialize<'de> for StepEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_yaml::Mapping::deserialize(d)?;
        let requires = match map.remove("requires") {
            Some(v) => serde_yaml::from_value(v).map_err(D::Error::custom)?,
            None => Vec::new(),
        };
        if map.len() != 1 {
            return Err(D::Error::custom(format!(
                "a step must have exactly one kind key, found {:?}",
                map.keys().collect::<Vec<_>>()
            )));
        }
        let (key, value) = map.into_iter().next().ok_or_else(|| D::Error::custom("empty step"))?;
        let key = key.as_str().ok_or_else(|| D::Error::custom("step key must be a string"))?.to_string();
        let kind = Step::from_key(&key, value).map_err(D::Error::custom)?;
        Ok(StepEntry { requires, kind })
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    Accepted(AcceptedStep),
    Conditions(ConditionsStep),
    NoAcceptedParents(ObjectRef),
    AttachedRoutes(AttachedRoutesStep),
    ListenersStatus(ListenersStatusStep),
    RouteParents(RouteParentsStep),
    Requests(RequestsStep),
    Weights(WeightsStep),
    Apply(ApplyStep),
    Delete(ObjectRef),
    Tls(TlsStep),
    Tcp(TcpStep),
    Grpc(Value),
    Websocket(WebsocketStep),
    Load(LoadStep),
    AccessLog(Value),
    Sticky(StickyStep),
    BackendControl(BackendControlStep),
    Wait(String),
    External(Value),
    Custom(String),
}

impl Step {
    /// Builds a step from its kind key and body.
    pub fn from_key(key: &str, v: Value) -> Result<Step, String> {
        fn de<T: serde::de::DeserializeOwned>(key: &str, v: Value) -> Result<T, String> {
            serde_yaml::from_value(v).map_err(|e| format!("step {key}: {e}"))
        }
        Ok(match key {
            "accepted" => Step::Accepted(de(key, v)?),
            "conditions" => Step::Conditions(de(key, v)?),
            "noAcceptedParents" => Step::NoAcceptedParents(de(key, v)?),
            "attachedRoutes" => Step::AttachedRoutes(de(key, v)?),
            "listenersStatus" => Step::ListenersStatus(de(key, v)?),
            "routeParents" => Step::RouteParents(de(key, v)?),
            "requests" => Step::Requests(de(key, v)?),
            "weights" => Step::Weights(de(key, v)?),
            "apply" => {
                let m: serde_yaml::Mapping = de(key, v)?;
                let (k, body) = m.into_iter().next().ok_or("step apply: empty")?;
                Step::Apply(match k.as_str() {
                    Some("file") => ApplyStep::File(de(key, body)?),
                    Some("inline") => ApplyStep::Inline(body),
                    Some("patch") => ApplyStep::Patch(de(key, body)?),
                    other => return Err(format!("step apply: unknown form {other:?}")),
                })
            }
            "delete" => Step::Delete(de(key, v)?),
            "tls" => Step::Tls(de(key, v)?),
            "tcp" => Step::Tcp(de(key, v)?),
            "grpc" => Step::Grpc(v),
            "websocket" => Step::Websocket(de(key, v)?),
            "load" => Step::Load(de(key, v)?),
            "accessLog" => Step::AccessLog(v),
            "sticky" => Step::Sticky(de(key, v)?),
            "backendControl" => Step::BackendControl(de(key, v)?),
            "wait" => Step::Wait(de(key, v)?),
            "external" => Step::External(v),
            "custom" => Step::Custom(de(key, v)?),
            other => return Err(format!("unknown step kind {other}")),
        })
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Step::Accepted(_) => "accepted",
            Step::Conditions(_) => "conditions",
            Step::NoAcceptedParents(_) => "noAcceptedParents",
            Step::AttachedRoutes(_) => "attachedRoutes",
            Step::ListenersStatus(_) => "listenersStatus",
            Step::RouteParents(_) => "routeParents",
            Step::Requests(_) => "requests",
            Step::Weights(_) => "weights",
            Step::Apply(_) => "apply",
            Step::Delete(_) => "delete",
            Step::Tls(_) => "tls",
            Step::Tcp(_) => "tcp",
            Step::Grpc(_) => "grpc",
            Step::Websocket(_) => "websocket",
            Step::Load(_) => "load",
            Step::AccessLog(_) => "accessLog",
            Step::Sticky(_) => "sticky",
            Step::BackendControl(_) => "backendControl",
            Step::Wait(_) => "wait",
            Step::External(_) => "external",
            Step::Custom(_) => "custom",
        }
    }

    /// The Gateway a step talks to, when it names one.
    pub fn gateway(&self) -> Option<&str> {
        match self {
            Step::Accepted(s) => Some(&s.gateway),
            Step::AttachedRoutes(s) => Some(&s.gateway),
            Step::Requests(s) => Some(&s.gateway),
            Step::Weights(s) => Some(&s.gateway),
            Step::Tls(s) => Some(&s.gateway),
            Step::Tcp(s) => Some(&s.gateway),
            Step::Websocket(s) => Some(&s.gateway),
            Step::Load(s) => Some(&s.gateway),
            Step::Sticky(s) => Some(&s.gateway),
            _ => None,
        }
    }
}

/// Splits `namespace/name` (a cluster-scoped object is written `/name` or `name`).
pub fn split_ref(r: &str) -> (Option<&str>, &str) {
    match r.split_once('/') {
        Some(("", name)) => (None, name),
        Some((ns, name)) => (Some(ns), name),
        None => (None, r),
    }
}

/// Reads every `*.yaml` case in `dir` (skipping `base.yaml`), sorted by file name.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<LoadedCase>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading cases dir {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "base.yaml"))
        .collect();
    files.sort();
    let parent = dir.parent().unwrap_or(Path::new("."));
    let upstream_dir = parent.join("upstream");
    // Istio cases: manifests relative to their own folder, base in istio/base.yaml.
    let istio = dir.join("base.yaml").exists()
        || dir.file_name().is_some_and(|n| n == "istio");
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let case: Case = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing case {}", file.display()))?;
        let (manifest_root, base_manifest) = if istio {
            (dir.to_path_buf(), None)
        } else {
            let base = upstream_dir.join("base/manifests.yaml");
            (upstream_dir.clone(), base.exists().then_some(base))
        };
        out.push(LoadedCase {
            case,
            file,
            manifest_root,
            base_manifest,
            upstream_dir: upstream_dir.clone(),
            istio,
        });
    }
    if out.is_empty() {
        bail!("no case files in {}", dir.display());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_dir(dir: &Path) {
        if !dir.exists() {
            println!("cases folder {} is absent: not checked", dir.display());
            return;
        }
        let cases = load_dir(dir).unwrap_or_else(|e| panic!("{e:#}"));
        for c in &cases {
            assert!(!c.case.steps.is_empty(), "{} has no steps", c.case.name);
            for m in &c.case.manifests {
                assert!(c.manifest_root.join(m).exists(), "{}: manifest {m} missing", c.case.name);
            }
        }
        println!("{}: {} cases parsed", dir.display(), cases.len());
    }

    #[test]
    fn parses_every_gateway_api_case() {
        check_dir(Path::new("/work/shared/conformance/cases"));
    }

    #[test]
    fn parses_every_istio_case() {
        check_dir(Path::new("/work/shared/conformance/istio"));
    }

    #[test]
    fn step_with_requires_and_unknown_kind() {
        let e: StepEntry = serde_yaml::from_str("{requires: [HTTPRoute], wait: 2s}").expect("step");
        assert_eq!(e.requires, vec!["HTTPRoute".to_string()]);
        assert!(matches!(e.kind, Step::Wait(_)));
        assert!(serde_yaml::from_str::<StepEntry>("{frobnicate: {}}").is_err());
        assert!(serde_yaml::from_str::<StepEntry>("{wait: 1s, custom: x}").is_err());
    }
}
