//! TLS termination: a per-socket certificate resolver choosing by SNI from a
//! map swapped on every snapshot (rotation without restart), and the acceptor
//! that stashes the SNI for misdirected-request checks.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::listeners::tls::{Acceptor, TlsSettings};
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use weir_model::{Certificate, ListenerTls};

use crate::table::{normalize_host, HostIndex};

/// Certificates of one HTTPS socket, indexed by SNI pattern.
#[derive(Debug, Default)]
pub struct SniCertResolver {
    certs: ArcSwap<HostIndex<Arc<CertifiedKey>>>,
}

impl SniCertResolver {
    /// Replaces the certificate set. Certificates that fail to parse are
    /// skipped (and logged); handshakes for their names fall back to the next
    /// matching entry.
    pub fn update(
        &self,
        listener: &str,
        tls: Option<&ListenerTls>,
        certificates: &BTreeMap<String, Certificate>,
    ) {
        let mut index = HostIndex::default();
        for entry in tls.iter().flat_map(|t| t.certificates.iter()) {
            let Some(cert) = certificates.get(&entry.certificate) else {
                log::warn!(
                    "listener {listener}: certificate {} is not in the snapshot; SNI {:?} skipped",
                    entry.certificate,
                    entry.hostname
                );
                continue;
            };
            match certified_key(cert) {
                Ok(key) => index.insert(entry.hostname.as_deref().unwrap_or("*"), Arc::new(key)),
                Err(e) => log::warn!(
                    "listener {listener}: certificate {} is unusable ({e}); SNI {:?} skipped. Fix the Secret's tls.crt/tls.key",
                    entry.certificate,
                    entry.hostname
                ),
            }
        }
        self.certs.store(Arc::new(index));
    }
}

impl ResolvesServerCert for SniCertResolver {
    /// Exact SNI, longest wildcard, then the default entry. Without SNI the
    /// default entry (or a `*` pattern) is served.
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.load();
        let name = hello.server_name().map(normalize_host).unwrap_or_default();
        certs.lookup(&name).cloned()
    }
}

/// Parses a PEM chain and key. Never panics on bad input.
pub fn certified_key(cert: &Certificate) -> Result<CertifiedKey, String> {
    let chain = rustls_pemfile::certs(&mut cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in PEM".into());
    }
    let key = rustls_pemfile::private_key(&mut cert.key_pem.as_bytes())
        .map_err(|e| format!("bad key PEM: {e}"))?
        .ok_or("no private key in PEM")?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key: {e}"))?;
    let key = CertifiedKey::new(chain, signing_key);
    key.keys_match()
        .map_err(|e| format!("key does not match certificate: {e}"))?;
    Ok(key)
}

/// The SNI the client sent, lower-cased; stored in the connection's
/// `SslDigest` extension.
#[derive(Debug, Clone)]
pub struct ClientSni(pub Option<String>);

struct StashSni;

#[async_trait]
impl TlsAccept for StashSni {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        Some(Arc::new(ClientSni(tls.server_name().map(normalize_host))))
    }
}

/// Builds the acceptor of one HTTPS socket: TLS 1.2 and 1.3 (Pingora's rustls
/// defaults), ALPN h2 then http/1.1, certificates from `resolver`.
pub fn acceptor(resolver: Arc<SniCertResolver>) -> Result<Acceptor, String> {
    let mut settings = TlsSettings::with_callbacks(Box::new(StashSni))
        .map_err(|e| format!("TLS settings: {e}"))?;
    settings.set_cert_resolver(resolver);
    settings.enable_h2();
    // With a resolver set, build() reads no files and so cannot panic.
    Ok(settings.build())
}
