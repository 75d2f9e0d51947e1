//! The `grpc` step (and gRPC `weights`): unary calls to the conformance echo
//! service over cleartext HTTP/2 through the gateway, with a hand-rolled
//! protobuf decoder for `EchoResponse` (field numbers in FORMAT.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_yaml::Value;

use crate::runner::context::CaseCtx;
use crate::runner::steps::requests::CONSECUTIVE;

const SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub expect_failure: bool,
    pub cases: Vec<GrpcCase>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcCase {
    /// The method is the key present (its empty message is not read).
    #[serde(default)]
    #[allow(dead_code)]
    pub echo_request: Option<Value>,
    #[serde(default)]
    pub echo_two_request: Option<Value>,
    #[serde(default)]
    pub echo_three_request: Option<Value>,
    #[serde(default)]
    pub request_metadata: Option<RequestMetadata>,
    #[serde(default)]
    pub response: Option<GrpcResponseExpect>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub expected_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub absent_metadata: Vec<String>,
    #[serde(default)]
    pub test_case_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestMetadata {
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GrpcResponseExpect {
    #[serde(default)]
    pub code: Option<String>,
}

impl GrpcCase {
    pub fn method(&self) -> &'static str {
        if self.echo_two_request.is_some() {
            "EchoTwo"
        } else if self.echo_three_request.is_some() {
            "EchoThree"
        } else {
            "Echo"
        }
    }
}

/// What the echo service reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assertions {
    pub fully_qualified_method: String,
    pub headers: Vec<(String, String)>,
    pub authority: String,
    pub namespace: String,
    pub pod: String,
}

pub struct CallResult {
    pub code: u32,
    pub message: String,
    pub assertions: Option<Assertions>,
}

pub const CODES: &[&str] = &[
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
    "Unauthenticated",
];

pub fn code_number(name: &str) -> Option<u32> {
    let n = if name == "Cancelled" { "Canceled" } else { name };
    CODES.iter().position(|c| c.eq_ignore_ascii_case(n)).map(|i| i as u32)
}

fn code_name(code: u32) -> &'static str {
    CODES.get(code as usize).copied().unwrap_or("?")
}

/// gRPC's mapping of an HTTP status without grpc-status.
fn code_from_http(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Length-delimited fields of a message: (field number, bytes); other wire types are skipped.
pub fn fields(buf: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                out.push((key >> 3, buf.get(pos..end)?));
                pos = end;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn decode_echo_response(msg: &[u8]) -> Option<Assertions> {
    let mut a = Assertions::default();
    for (n, body) in fields(msg)? {
        if n != 1 {
            continue;
        }
        for (f, v) in fields(body)? {
            match f {
                1 => a.fully_qualified_method = text(v),
                2 => {
                    let mut key = String::new();
                    let mut value = String::new();
                    for (hf, hv) in fields(v)? {
                        match hf {
                            1 => key = text(hv),
                            2 => value = text(hv),
                            _ => {}
                        }
                    }
                    a.headers.push((key, value));
                }
                3 => a.authority = text(v),
                4 => {
                    for (cf, cv) in fields(v)? {
                        match cf {
                            1 => a.namespace = text(cv),
                            4 => a.pod = text(cv),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Some(a)
}

pub async fn call(addr: SocketAddr, authority: &str, method: &str, metadata: &BTreeMap<String, String>) -> Result<CallResult, String> {
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::post(format!("http://{authority}/{SERVICE}/{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in metadata {
            req = req.header(k.to_ascii_lowercase().as_str(), v.as_str());
        }
        // An empty EchoRequest: uncompressed flag 0, length 0.
        let req = req.body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let status = resp.status().as_u16();
        let head_status = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
        let head_msg = resp.headers().get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let collected = resp.into_body().collect().await.map_err(|e| format!("reading response: {e}"))?;
        let trailers = collected.trailers().cloned();
        let body = collected.to_bytes();
        let trailer_status = trailers.as_ref().and_then(|t| t.get("grpc-status")).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
        let trailer_msg = trailers.as_ref().and_then(|t| t.get("grpc-message")).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if status != 200 {
            return Ok(CallResult { code: code_from_http(status), message: format!("HTTP status {status}"), assertions: None });
        }
        let code = trailer_status.or(head_status).unwrap_or(2);
        let message = if trailer_msg.is_empty() { head_msg } else { trailer_msg };
        let assertions = if code == 0 && body.len() >= 5 {
            let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
            body.get(5..5 + len).and_then(decode_echo_response)
        } else {
            None
        };
        Ok(CallResult { code, message, assertions })
    };
    tokio::time::timeout(CALL_TIMEOUT, fut).await.map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))?
}

pub fn compare(c: &GrpcCase, r: &CallResult) -> Result<(), String> {
    let want = c.response.as_ref().and_then(|x| x.code.as_deref()).unwrap_or("OK");
    let want_code = code_number(want).ok_or_else(|| format!("unknown gRPC code {want}"))?;
    if r.code != want_code {
        return Err(format!("gRPC status {} ({}), want {want}", code_name(r.code), r.message));
    }
    if r.code != 0 {
        return Ok(());
    }
    let a = r.assertions.as_ref().ok_or("OK without a decodable EchoResponse")?;
    if let Some(b) = &c.backend {
        if !a.pod.starts_with(b.as_str()) {
            return Err(format!("answered by pod {:?}, want a pod of {b}", a.pod));
        }
    }
    if let Some(ns) = &c.namespace {
        if &a.namespace != ns {
            return Err(format!("echoed namespace {:?}, want {ns:?}", a.namespace));
        }
    }
    for (k, v) in &c.expected_metadata {
        let got: Vec<&str> = a.headers.iter().filter(|(hk, _)| hk.eq_ignore_ascii_case(k)).map(|(_, hv)| hv.as_str()).collect();
        if !got.contains(&v.as_str()) {
            return Err(format!("backend metadata {k}: {got:?}, want {v:?}"));
        }
    }
    for k in &c.absent_metadata {
        if a.headers.iter().any(|(hk, _)| hk.eq_ignore_ascii_case(k)) {
            return Err(format!("backend saw metadata {k}, which must be absent"));
        }
    }
    Ok(())
}

pub async fn run(ctx: &mut CaseCtx, spec: &Value) -> Result<(), String> {
    let s: GrpcStep = serde_yaml::from_value(spec.clone()).map_err(|e| format!("grpc step: {e}"))?;
    let (ip, port) = ctx.gateway_target(&s.gateway, "http", s.port).await?;
    let addr = SocketAddr::new(ip, port);
    let default_authority = if port == 80 { ip.to_string() } else { addr.to_string() };
    let limit = ctx.shared.limits.requests;
    let mut failures = Vec::new();
    for (i, c) in s.cases.iter().enumerate() {
        let md = c.request_metadata.clone().unwrap_or_default();
        let authority = md.authority.clone().unwrap_or_else(|| default_authority.clone());
        let start = Instant::now();
        let mut streak = 0;
        let label = format!("case {i} ({}{})", c.method(), c.test_case_name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default());
        loop {
            let verdict = match call(addr, &authority, c.method(), &md.metadata).await {
                Err(e) => Err(format!("transport error: {e}")),
                Ok(r) if s.expect_failure => {
                    if r.code == 0 {
                        failures.push(format!("{label}: call succeeded, want a failure"));
                        break;
                    }
                    Ok(())
                }
                Ok(r) => compare(c, &r),
            };
            match verdict {
                Ok(()) => {
                    streak += 1;
                    if streak >= CONSECUTIVE {
                        break;
                    }
                }
                Err(e) => {
                    streak = 0;
                    if start.elapsed() >= limit {
                        failures.push(format!("{label}: not consistent within {limit:?}: {e}"));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {} gRPC cases failed: {}", failures.len(), s.cases.len(), failures.join(" | ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![((n << 3) | 2) as u8, body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn decodes_echo_response() {
        let header = [field(1, b"version"), field(2, b"one")].concat();
        let context = [field(1, b"gateway-conformance-infra"), field(4, b"grpc-infra-backend-v1-3-0")].concat();
        let assertions = [field(1, b"/svc/Echo"), field(2, &header), field(3, b"example.com"), field(4, &context)].concat();
        let msg = field(1, &assertions);
        let a = decode_echo_response(&msg).expect("decode");
        assert_eq!(a.pod, "grpc-infra-backend-v1-3-0");
        assert_eq!(a.namespace, "gateway-conformance-infra");
        assert_eq!(a.headers, vec![("version".to_string(), "one".to_string())]);
        let c: GrpcCase = serde_yaml::from_str("{echoRequest: {}, backend: grpc-infra-backend-v1, namespace: gateway-conformance-infra, expectedMetadata: {Version: one}}").expect("case");
        assert_eq!(compare(&c, &CallResult { code: 0, message: String::new(), assertions: Some(a.clone()) }), Ok(()));
        let unimpl: GrpcCase = serde_yaml::from_str("{echoRequest: {}, response: {code: Unimplemented}}").expect("case");
        assert!(compare(&unimpl, &CallResult { code: 0, message: String::new(), assertions: Some(a) }).is_err());
        assert_eq!(compare(&unimpl, &CallResult { code: code_from_http(404), message: String::new(), assertions: None }), Ok(()));
    }
}
