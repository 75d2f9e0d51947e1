//! TLS termination on the wire: SNI certificate choice, default certificate,
//! bad PEM, hot rotation, ALPN, misdirected requests (421).

mod common;

use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_model::*;

struct TestCert {
    pem: String,
    key: String,
    der: CertificateDer<'static>,
}

fn cert(names: &[&str]) -> TestCert {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
    TestCert {
        pem: ck.cert.pem(),
        key: ck.key_pair.serialize_pem(),
        der: ck.cert.der().clone(),
    }
}

/// Accepts any server certificate: the tests compare the certificate itself.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// HTTP/2 over TLS (ALPN h2): returns the status for `:authority` = `host`.
async fn tls_h2_get(port: u16, sni: &str, host: &str) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let tls = connector
        .connect(ServerName::try_from(sni.to_string()).expect("name"), tcp)
        .await
        .expect("handshake");
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "server selects h2"
    );
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri(format!("https://{host}/"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    sender
        .send_request(req)
        .await
        .expect("response")
        .status()
        .as_u16()
}

/// Connects with `sni` (an IP when `None`, so no SNI is sent), sends a GET
/// with `host`, returns (server cert, ALPN, status line).
async fn tls_get(
    port: u16,
    sni: Option<&str>,
    host: &str,
) -> (CertificateDer<'static>, Option<Vec<u8>>, String) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).expect("name"),
        None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    };
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let (_, conn) = tls.get_ref();
    let der = conn.peer_certificates().expect("certs")[0]
        .clone()
        .into_owned();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    (
        der,
        alpn,
        text.lines().next().unwrap_or_default().to_string(),
    )
}

fn https_listener(
    port: u16,
    certs: Vec<SniCertificate>,
    virtual_hosts: Vec<VirtualHost>,
) -> Listener {
    Listener {
        name: format!("127.0.0.1:{port}"),
        address: LOCALHOST,
        port,
        protocol: ListenerProtocol::Https,
        tls: Some(ListenerTls {
            certificates: certs,
        }),
        virtual_hosts,
    }
}

fn sni(host: Option<&str>, certificate: &str, gateway_listener: &str) -> SniCertificate {
    SniCertificate {
        hostname: host.map(Into::into),
        certificate: certificate.into(),
        gateway_listener: gateway_listener.into(),
    }
}

fn vh(host: &str, gateway_listener: &str) -> VirtualHost {
    VirtualHost {
        hostname: host.into(),
        gateway_listener: gateway_listener.into(),
        routes: vec![route(
            host,
            prefix("/"),
            RouteAction::DirectResponse {
                status: 200,
                body: Some(host.into()),
            },
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_certificate_rotates_and_detects_misdirected_requests() {
    let exact = cert(&["a.example.com"]);
    let wild = cert(&["*.example.com"]);
    let default = cert(&["default"]);
    let rotated = cert(&["a.example.com"]);
    let port = free_port();
    let certs_for = |a: &TestCert| {
        [
            (
                "ns/a".to_string(),
                Certificate {
                    cert_pem: a.pem.clone(),
                    key_pem: a.key.clone(),
                },
            ),
            (
                "ns/wild".to_string(),
                Certificate {
                    cert_pem: wild.pem.clone(),
                    key_pem: wild.key.clone(),
                },
            ),
            (
                "ns/default".to_string(),
                Certificate {
                    cert_pem: default.pem.clone(),
                    key_pem: default.key.clone(),
                },
            ),
            (
                "ns/broken".to_string(),
                Certificate {
                    cert_pem: "not a pem".into(),
                    key_pem: "nope".into(),
                },
            ),
        ]
        .into_iter()
        .collect()
    };
    let listener = https_listener(
        port,
        vec![
            sni(Some("a.example.com"), "ns/a", "gw/a"),
            sni(Some("*.example.com"), "ns/wild", "gw/wild"),
            sni(Some("broken.example.org"), "ns/broken", "gw/broken"),
            sni(None, "ns/default", "gw/default"),
        ],
        vec![
            vh("a.example.com", "gw/a"),
            vh("*.example.com", "gw/wild"),
            vh("*", "gw/default"),
        ],
    );
    let gw = Gateway::start();
    let mut snap = snapshot(1, vec![listener.clone()], vec![]);
    snap.certificates = certs_for(&exact);
    gw.apply(snap).await;

    let (der, alpn, status) = tls_get(port, Some("a.example.com"), "a.example.com").await;
    assert_eq!(der, exact.der);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        tls_get(port, Some("x.example.com"), "x.example.com")
            .await
            .0,
        wild.der
    );
    assert_eq!(
        tls_get(port, Some("other.org"), "other.org").await.0,
        default.der
    );
    assert_eq!(
        tls_get(port, None, "other.org").await.0,
        default.der,
        "no SNI: default certificate"
    );
    // A certificate with bad PEM is skipped, never a panic: the default serves.
    assert_eq!(
        tls_get(port, Some("broken.example.org"), "broken.example.org")
            .await
            .0,
        default.der
    );

    // Misdirected: SNI chose the wildcard listener, Host names the exact one.
    let (_, _, status) = tls_get(port, Some("x.example.com"), "a.example.com").await;
    assert!(status.starts_with("HTTP/1.1 421"), "{status}");

    // The same over HTTP/2 (ALPN h2), where the host is the :authority.
    assert_eq!(
        tls_h2_get(port, "a.example.com", "a.example.com").await,
        200
    );
    assert_eq!(
        tls_h2_get(port, "x.example.com", "a.example.com").await,
        421
    );
    assert_eq!(
        tls_h2_get(port, "x.example.com", "y.example.com").await,
        200
    );

    // Rotation without restart.
    let mut snap = snapshot(2, vec![listener], vec![]);
    snap.certificates = certs_for(&rotated);
    gw.apply(snap).await;
    assert_eq!(
        tls_get(port, Some("a.example.com"), "a.example.com")
            .await
            .0,
        rotated.der
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_origination_verifies_the_backend() {
    let backend_cert = cert(&["backend.example"]);
    let other_ca = cert(&["someone-else"]);
    let backend = Backend::start_tls("tls-backend", &backend_cert.pem, &backend_cert.key).await;
    let port = free_port();
    let tls_cluster = |name: &str, ca: &str| {
        let (_, mut c) = cluster(name, &[&backend]);
        c.tls = Some(UpstreamTls {
            sni: "backend.example".into(),
            ca_pem: Some(ca.to_string()),
            subject_alt_names: vec![],
            client_certificate: None,
        });
        (name.to_string(), c)
    };
    let gw = Gateway::start();
    gw.apply(snapshot(
        1,
        vec![http_listener(
            port,
            vec![vhost(
                "*",
                vec![
                    route("good", prefix("/good"), forward("good")),
                    route("bad", prefix("/wrong-ca"), forward("wrong-ca")),
                    route("broken", prefix("/broken"), forward("broken")),
                ],
            )],
        )],
        vec![
            tls_cluster("good", &backend_cert.pem),
            tls_cluster("wrong-ca", &other_ca.pem),
            tls_cluster(
                "broken",
                "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
            ),
        ],
    ))
    .await;
    let ok = get(port, "h", "/good").await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "tls-backend"));
    assert_eq!(get(port, "h", "/wrong-ca").await.status, 503);
    assert_eq!(
        get(port, "h", "/broken").await.status,
        503,
        "unparseable CA: no panic, no trust"
    );
    assert_eq!(backend.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_switches_between_http_and_https_in_place() {
    let c = cert(&["a.example.com"]);
    let port = free_port();
    let gw = Gateway::start();
    let routes = || vec![vh("a.example.com", "gw/a")];
    gw.apply(snapshot(1, vec![http_listener(port, routes())], vec![]))
        .await;
    assert_eq!(get(port, "a.example.com", "/").await.status, 200);
    let mut snap = snapshot(
        2,
        vec![https_listener(
            port,
            vec![sni(None, "ns/a", "gw/a")],
            routes(),
        )],
        vec![],
    );
    snap.certificates = [(
        "ns/a".to_string(),
        Certificate {
            cert_pem: c.pem.clone(),
            key_pem: c.key.clone(),
        },
    )]
    .into_iter()
    .collect();
    gw.apply(snap).await;
    let (der, _, status) = tls_get(port, Some("a.example.com"), "a.example.com").await;
    assert_eq!((der, status.as_str()), (c.der.clone(), "HTTP/1.1 200 OK"));
}
