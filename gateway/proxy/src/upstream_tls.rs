//! TLS origination material per cluster (BackendTLSPolicy / DestinationRule):
//! CA bundle and client certificate, parsed once per snapshot and validated so
//! that Pingora's connector (which `expect`s valid DER) can never panic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pingora_core::protocols::tls::CaType;
use pingora_core::utils::tls::{parse_x509, CertKey, WrappedX509};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use weir_model::{Certificate, Cluster};

/// What a TLS peer of one cluster needs.
#[derive(Debug)]
pub struct PeerTls {
    /// `None`: the system roots.
    pub ca: Option<Arc<CaType>>,
    pub client_cert: Option<Arc<CertKey>>,
}

/// Parses every TLS cluster's material. A cluster whose material is invalid
/// is left out and reported; its requests then fail to connect (503) instead
/// of trusting something unintended.
pub fn compile(
    clusters: &BTreeMap<String, Cluster>,
    certificates: &BTreeMap<String, Certificate>,
    problems: &mut Vec<String>,
) -> HashMap<String, Arc<PeerTls>> {
    let mut out = HashMap::new();
    for (name, cluster) in clusters {
        let Some(tls) = &cluster.tls else { continue };
        let ca = match tls.ca_pem.as_deref().map(parse_ca) {
            None => None,
            Some(Ok(ca)) => Some(ca),
            Some(Err(e)) => {
                problems.push(format!(
                    "cluster {name}: CA bundle unusable ({e}); TLS to it will fail"
                ));
                continue;
            }
        };
        let client_cert = match tls.client_certificate.as_ref() {
            None => None,
            Some(key) => match certificates
                .get(key)
                .ok_or_else(|| "not in the snapshot".to_string())
                .and_then(parse_cert_key)
            {
                Ok(ck) => Some(Arc::new(ck)),
                Err(e) => {
                    problems.push(format!(
                        "cluster {name}: client certificate {key} unusable ({e})"
                    ));
                    continue;
                }
            },
        };
        out.insert(name.clone(), Arc::new(PeerTls { ca, client_cert }));
    }
    out
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in PEM".into());
    }
    // rustls/webpki must accept each one: Pingora re-parses them and panics otherwise.
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| format!("invalid certificate: {e}"))?;
    }
    Ok(certs)
}

fn parse_ca(pem: &str) -> Result<Arc<CaType>, String> {
    let certs = pem_certs(pem)?;
    let wrapped: Vec<WrappedX509> = certs
        .iter()
        .map(|c| WrappedX509::new(c.to_vec(), parse_x509))
        .collect();
    Ok(Arc::from(wrapped.into_boxed_slice()))
}

fn parse_cert_key(cert: &Certificate) -> Result<CertKey, String> {
    let chain = pem_certs(&cert.cert_pem)?;
    let key = rustls_pemfile::private_key(&mut cert.key_pem.as_bytes())
        .map_err(|e| format!("bad key PEM: {e}"))?
        .ok_or("no private key in PEM")?;
    let key_der = key.secret_der().to_vec();
    // Pingora converts these bytes back with `try_into().unwrap()`.
    PrivateKeyDer::try_from(key_der.clone()).map_err(|e| format!("unsupported key: {e}"))?;
    Ok(CertKey::new(
        chain.iter().map(|c| c.to_vec()).collect(),
        key_der,
    ))
}
