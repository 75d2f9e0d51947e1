//! The --tls port: HTTP/1.1 and h2 by ALPN, handshake details, client certificates.

use http::StatusCode;

use crate::echo::tls::pem_certificate;
use crate::support::{config, get, get_h2, http1_on, http2_on, loopback, start, tls_connect, Pki, SERVER_NAME};

async fn tls_backend(pki: &Pki, client_ca: bool) -> crate::echo::Running {
    start(crate::echo::Config { tls: Some((loopback(), pki.files(client_ca))), ..config() }).await
}

#[tokio::test]
async fn http1_over_tls_reports_the_handshake() {
    let pki = Pki::new();
    let backend = tls_backend(&pki, false).await;
    let addr = backend.tls.unwrap();
    let stream = tls_connect(addr, pki.client_config(&[b"http/1.1"], false)).await.unwrap();
    let answer = http1_on(stream, get("/secure")).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["proto"], "HTTP/1.1");
    assert_eq!(json["httpPort"], addr.port().to_string());
    let tls = &json["tls"];
    assert_eq!(tls["version"], "TLSv1.3");
    assert_eq!(tls["serverName"], SERVER_NAME);
    assert_eq!(tls["negotiatedProtocol"], "http/1.1");
    assert!(tls["cipherSuite"].as_str().unwrap().starts_with("TLS_"), "{tls}");
    assert_eq!(tls["peerCertificates"], serde_json::json!([]));
}

#[tokio::test]
async fn h2_by_alpn() {
    let pki = Pki::new();
    let backend = tls_backend(&pki, false).await;
    let stream = tls_connect(backend.tls.unwrap(), pki.client_config(&[b"h2", b"http/1.1"], false)).await.unwrap();
    let json = http2_on(stream, get_h2("/")).await.unwrap().json();
    assert_eq!(json["proto"], "HTTP/2.0");
    assert_eq!(json["tls"]["negotiatedProtocol"], "h2");
}

#[tokio::test]
async fn client_certificate_is_verified_and_recorded_but_not_required() {
    let pki = Pki::new();
    let backend = tls_backend(&pki, true).await;
    let addr = backend.tls.unwrap();

    let stream = tls_connect(addr, pki.client_config(&[], true)).await.unwrap();
    let json = http1_on(stream, get("/")).await.unwrap().json();
    let peers = json["tls"]["peerCertificates"].as_array().unwrap().clone();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0], pem_certificate(pki.client_der.as_ref()));
    assert_eq!(peers[0].as_str().unwrap().trim(), pki.client_pem.trim(), "same PEM as rcgen writes");

    let stream = tls_connect(addr, pki.client_config(&[], false)).await.unwrap();
    let json = http1_on(stream, get("/")).await.unwrap().json();
    assert_eq!(json["tls"]["peerCertificates"], serde_json::json!([]), "a client certificate is optional");
}

#[tokio::test]
async fn untrusted_client_certificate_is_rejected() {
    let pki = Pki::new();
    let other = Pki::new();
    let backend = tls_backend(&pki, true).await;
    // A client trusting our server CA but presenting a certificate from another CA.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(other.client_key_der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![other.client_der.clone()], key)
        .unwrap();
    // TLS 1.3: the server's verdict on the client certificate arrives after
    // the client's handshake completes, so it shows up on the request.
    let result = match tls_connect(backend.tls.unwrap(), std::sync::Arc::new(config)).await {
        Err(_) => return,
        Ok(stream) => http1_on(stream, get("/")).await,
    };
    assert!(result.is_err(), "request over a rejected client certificate must fail");
}
