//! rustls client pieces: trust exactly the certificates a step names (pinned,
//! or chained to a named CA), present an optional client certificate, and
//! record whether the server asked for one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::secrets::CertPem;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes()).filter_map(Result::ok).collect()
}

fn pem_key(pem: &str) -> Option<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut pem.as_bytes()).ok().flatten()
}

/// What the client trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Certificates accepted as they are (the listener's own certificate).
    pub pinned: Vec<CertificateDer<'static>>,
    /// CA certificates whose chains are accepted (with name checks).
    pub roots: Vec<CertificateDer<'static>>,
    /// Accept anything (used where only the handshake outcome matters).
    pub any: bool,
}

impl Trust {
    pub fn from_cert(c: &CertPem) -> Trust {
        let mut t = Trust::default();
        t.add_cert(c);
        t
    }
    pub fn add_cert(&mut self, c: &CertPem) {
        self.pinned.extend(pem_certs(&c.cert));
        if let Some(ca) = &c.ca {
            self.roots.extend(pem_certs(ca));
        }
    }
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.trust.any || self.trust.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        }
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Presents an optional certificate and notes that the server asked.
#[derive(Debug)]
pub struct ClientCertResolver {
    key: Option<Arc<CertifiedKey>>,
    pub requested: Arc<AtomicBool>,
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::SeqCst);
        self.key.clone()
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config; `requested` flips to true when the server sends a CertificateRequest.
pub fn client_config(trust: &Trust, client_cert: Option<&CertPem>, alpn: &[&[u8]], requested: Arc<AtomicBool>) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let webpki = if trust.roots.is_empty() {
        None
    } else {
        let mut store = rustls::RootCertStore::empty();
        for r in &trust.roots {
            let _ = store.add(r.clone());
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build().ok()
    };
    let verifier = Arc::new(Verifier { trust: trust.clone(), webpki, provider: provider.clone() });
    let key = match client_cert {
        Some(c) => {
            let certs = pem_certs(&c.cert);
            let der = pem_key(&c.key).ok_or("client certificate: no private key")?;
            let signer = provider.key_provider.load_private_key(der).map_err(|e| format!("client key: {e}"))?;
            Some(Arc::new(CertifiedKey::new(certs, signer)))
        }
        None => None,
    };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(ClientCertResolver { key, requested }));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Does the certificate chain verify for `name` against `roots` (or is it one of `pinned` and valid for `name`)?
pub fn cert_valid_for(chain: &[CertificateDer<'static>], name: &str, trust: &Trust) -> Result<(), String> {
    let provider = provider();
    let mut store = rustls::RootCertStore::empty();
    for r in trust.roots.iter().chain(trust.pinned.iter()) {
        let _ = store.add(r.clone());
    }
    let v = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let (ee, rest) = chain.split_first().ok_or("no certificate served")?;
    let sn = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    v.verify_server_cert(ee, rest, &sn, &[], UnixTime::now()).map(|_| ()).map_err(|e| e.to_string())
}

/// Server name for the handshake (IP addresses allowed).
pub fn server_name(sni: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(sni.to_string()).map_err(|e| format!("server name {sni}: {e}"))
}
