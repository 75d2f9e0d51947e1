//! TLS for the data plane: the server config (certificate, optional client CA
//! that is asked for but not required) and what the backend reports about a
//! handshake, with Go's names for versions and cipher suites.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{ProtocolVersion, RootCertStore, ServerConfig};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Upstream's `TLSAssertions`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct TlsAssertions {
    pub version: String,
    #[serde(rename = "serverName")]
    pub server_name: String,
    #[serde(rename = "negotiatedProtocol")]
    pub negotiated_protocol: String,
    #[serde(rename = "cipherSuite")]
    pub cipher_suite: String,
    #[serde(rename = "peerCertificates")]
    pub peer_certificates: Vec<String>,
    /// The key exchange group (Go's `CurveID`), reported by the TCP backend only.
    #[serde(skip)]
    pub curve: String,
}

impl TlsAssertions {
    pub fn of(connection: &ServerConnection) -> Self {
        TlsAssertions {
            version: connection.protocol_version().map(version_name).unwrap_or_default(),
            server_name: connection.server_name().unwrap_or_default().to_string(),
            negotiated_protocol: connection
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            cipher_suite: connection
                .negotiated_cipher_suite()
                .map(|suite| cipher_suite_name(suite.suite()))
                .unwrap_or_default(),
            peer_certificates: connection
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|cert| pem_certificate(cert.as_ref()))
                .collect(),
            curve: connection
                .negotiated_key_exchange_group()
                .map(|group| format!("{:?}", group.name()))
                .unwrap_or_default(),
        }
    }
}

/// Go echo-basic's version strings.
fn version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        ProtocolVersion::TLSv1_1 => "TLSv1.1".into(),
        ProtocolVersion::TLSv1_0 => "TLSv1.0".into(),
        other => format!("{other:?}"),
    }
}

/// Go's `tls.CipherSuiteName`: rustls says `TLS13_AES_128_GCM_SHA256` where Go
/// says `TLS_AES_128_GCM_SHA256`; TLS 1.2 names are the same.
fn cipher_suite_name(suite: rustls::CipherSuite) -> String {
    let name = suite.as_str().map(str::to_string).unwrap_or_else(|| format!("{suite:?}"));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// A certificate as a PEM block, byte for byte what Go's `pem.Encode` writes.
pub fn pem_certificate(der: &[u8]) -> String {
    let encoded = base64(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn base64(bytes: &[u8]) -> String {
    // `::base64` is the crate; plain `base64` here would name this function.
    use ::base64::Engine as _;
    ::base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The server config for a data-plane TLS port, offering `alpn` protocols.
pub fn server_config(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(path)? {
                roots.add(cert).with_context(|| format!("client CA in {}", path.display()))?;
            }
            // Ask for a client certificate and verify one when sent, but do
            // not require it (upstream's TLS_CLIENT_CACERTS behaviour).
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).context("server certificate and key")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn read_certs(path: &PathBuf) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn read_key(path: &PathBuf) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("parsing private key in {}", path.display()))?
        .with_context(|| format!("no private key in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn pem_round_trips_through_rustls_pemfile() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let pem = pem_certificate(&der);
        assert!(pem.lines().all(|line| line.len() <= 64));
        let parsed: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].as_ref(), der.as_slice());
    }

    #[test]
    fn go_cipher_suite_names() {
        assert_eq!(cipher_suite_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256), "TLS_AES_128_GCM_SHA256");
        assert_eq!(
            cipher_suite_name(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }
}
