//! Certificates that upstream creates at run time (upstream/SECRETS.yaml and a
//! case's `secrets:`), generated with rcgen, fresh keys each run.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, Ia5String, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use serde::Deserialize;
use serde_yaml::Value;

use super::base64;
use super::case::split_ref;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    pub kind: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub config_map: Option<String>,
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub with_ca: bool,
}

/// A generated certificate and key, PEM encoded.
#[derive(Debug, Clone)]
pub struct CertPem {
    pub cert: String,
    pub key: String,
    /// The issuing CA's certificate (None for self-signed).
    pub ca: Option<String>,
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// All generated material of a run: the objects to write, and the PEMs by reference.
#[derive(Default)]
pub struct Generated {
    pub objects: Vec<Value>,
    /// Secret `ns/name` -> certificate.
    pub secrets: HashMap<String, CertPem>,
    /// ConfigMap `ns/name` -> CA certificate (key ca.crt).
    pub ca_config_maps: HashMap<String, String>,
    cas: HashMap<String, std::sync::Arc<Ca>>,
}

impl Generated {
    /// Generates `specs` on top of what is already here (CAs can be shared).
    pub fn generate(&mut self, specs: &[SecretSpec]) -> anyhow::Result<()> {
        for spec in specs {
            self.generate_one(spec)
                .with_context(|| format!("generating {spec:?}"))?;
        }
        Ok(())
    }

    /// A copy holding the CAs (so case secrets can be signed by run CAs) but no objects.
    pub fn child(&self) -> Generated {
        Generated { cas: self.cas.clone(), ..Default::default() }
    }

    fn generate_one(&mut self, spec: &SecretSpec) -> anyhow::Result<()> {
        match spec.kind.as_str() {
            "ca" => {
                let name = spec.config_map.as_deref().ok_or_else(|| anyhow!("ca needs configMap"))?;
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params.distinguished_name.push(DnType::CommonName, format!("weir conformance CA {name}"));
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                let cert = params.self_signed(&key)?;
                let pem = cert.pem();
                self.objects.push(config_map(name, &[("ca.crt", pem.clone())]));
                self.ca_config_maps.insert(name.to_string(), pem);
                self.cas.insert(name.to_string(), std::sync::Arc::new(Ca { cert, key }));
            }
            "selfSigned" | "caSigned" | "clientCert" => {
                let name = spec.secret.as_deref().ok_or_else(|| anyhow!("needs secret"))?;
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                let cn = spec.names.first().cloned().unwrap_or_else(|| name.to_string());
                params.distinguished_name.push(DnType::CommonName, cn);
                params.subject_alt_names = sans(&spec.names)?;
                let (cert, ca_pem) = if spec.kind == "selfSigned" {
                    (params.self_signed(&key)?, None)
                } else {
                    let ca_name = spec.ca.as_deref().ok_or_else(|| anyhow!("needs ca"))?;
                    let ca = self
                        .cas
                        .get(ca_name)
                        .ok_or_else(|| anyhow!("unknown ca {ca_name} (must be listed before)"))?;
                    (params.signed_by(&key, &ca.cert, &ca.key)?, Some(ca.cert.pem()))
                };
                let pem = CertPem { cert: cert.pem(), key: key.serialize_pem(), ca: ca_pem };
                let mut data = vec![("tls.crt", pem.cert.clone()), ("tls.key", pem.key.clone())];
                if spec.with_ca {
                    if let Some(ca) = &pem.ca {
                        data.push(("ca.crt", ca.clone()));
                    }
                }
                self.objects.push(tls_secret(name, &data));
                self.secrets.insert(name.to_string(), pem);
            }
            other => bail!("unknown secret kind {other}"),
        }
        Ok(())
    }
}

fn sans(names: &[String]) -> anyhow::Result<Vec<SanType>> {
    names
        .iter()
        .map(|n| {
            let ia5 = Ia5String::try_from(n.as_str()).map_err(|e| anyhow!("SAN {n}: {e}"))?;
            Ok(if n.contains("://") { SanType::URI(ia5) } else { SanType::DnsName(ia5) })
        })
        .collect()
}

fn meta(reference: &str) -> Value {
    let (ns, name) = split_ref(reference);
    let mut m = serde_yaml::Mapping::new();
    m.insert("name".into(), name.into());
    if let Some(ns) = ns {
        m.insert("namespace".into(), ns.into());
    }
    Value::Mapping(m)
}

fn config_map(reference: &str, data: &[(&str, String)]) -> Value {
    let mut d = serde_yaml::Mapping::new();
    for (k, v) in data {
        d.insert((*k).into(), v.clone().into());
    }
    let mut m = serde_yaml::Mapping::new();
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "ConfigMap".into());
    m.insert("metadata".into(), meta(reference));
    m.insert("data".into(), Value::Mapping(d));
    Value::Mapping(m)
}

fn tls_secret(reference: &str, data: &[(&str, String)]) -> Value {
    let mut d = serde_yaml::Mapping::new();
    for (k, v) in data {
        d.insert((*k).into(), base64::encode(v.as_bytes()).into());
    }
    let mut m = serde_yaml::Mapping::new();
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "Secret".into());
    m.insert("metadata".into(), meta(reference));
    m.insert("type".into(), "kubernetes.io/tls".into());
    m.insert("data".into(), Value::Mapping(d));
    Value::Mapping(m)
}

/// Reads upstream/SECRETS.yaml.
pub fn load_specs(path: &std::path::Path) -> anyhow::Result<Vec<SecretSpec>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_upstream_secrets() {
        let path = std::path::Path::new("/work/shared/conformance/upstream/SECRETS.yaml");
        if !path.exists() {
            eprintln!("upstream SECRETS.yaml absent; skipping");
            return;
        }
        let specs = load_specs(path).expect("parse");
        let mut g = Generated::default();
        g.generate(&specs).expect("generate");
        assert_eq!(g.objects.len(), specs.len());
        let c = &g.secrets["gateway-conformance-infra/tls-checks-certificate"];
        assert!(c.cert.starts_with("-----BEGIN CERTIFICATE"));
        assert!(c.ca.is_some());
    }
}
