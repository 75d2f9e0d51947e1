//! The bodies of the step kinds of the case format (FORMAT.md "Step kinds").
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedStep {
    pub gateway: String,
    #[serde(default)]
    pub listeners: Option<Vec<String>>,
    #[serde(default = "default_route_kind")]
    pub route_kind: String,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub resolved_refs: bool,
    #[serde(default)]
    pub parent_kind: Option<String>,
    #[serde(default)]
    pub use_port: bool,
}

fn default_route_kind() -> String {
    "HTTPRoute".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ConditionExpect {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `listeners: all` or a list of names.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ListenerSelector {
    Named(Vec<String>),
    Keyword(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionsStep {
    pub kind: String,
    pub object: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub listener: Option<String>,
    #[serde(default)]
    pub listeners: Option<ListenerSelector>,
    pub conditions: Vec<ConditionExpect>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub object: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttachedRoutesStep {
    pub gateway: String,
    /// `{name: count}` or the keyword `all` (with `count`).
    pub listeners: Value,
    #[serde(default)]
    pub count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenersStatusStep {
    pub kind: String,
    pub object: String,
    pub listeners: Vec<ListenerExpect>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerExpect {
    pub name: String,
    #[serde(default)]
    pub supported_kinds: Option<Vec<GroupKind>>,
    #[serde(default)]
    pub attached_routes: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<ConditionExpect>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupKind {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentsStep {
    pub kind: String,
    pub object: String,
    #[serde(default = "yes")]
    pub namespace_required: bool,
    pub parents: Vec<ParentExpect>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentExpect {
    pub parent_ref: ParentRefExpect,
    #[serde(default)]
    pub conditions: Vec<ConditionExpect>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ParentRefExpect {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestsStep {
    pub gateway: String,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub expect_failure: bool,
    #[serde(default)]
    pub expect_error: bool,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub server_certificate: Option<String>,
    pub cases: Vec<RequestCase>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCase {
    pub request: RequestSpec,
    #[serde(default)]
    pub expected_request: Option<ExpectedRequest>,
    #[serde(default)]
    pub redirect_request: Option<RedirectExpect>,
    #[serde(default)]
    pub backend_set_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub response: Option<ResponseExpect>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub mirrored_to: Vec<MirrorExpect>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub test_case_name: Option<String>,
}

/// Header maps: values are strings (several values comma-joined).
pub type HeaderMapSpec = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestSpec {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub headers: HeaderMapSpec,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub client_cert: Option<String>,
    #[serde(default)]
    pub unfollow_redirect: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedRequest {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub headers: HeaderMapSpec,
    #[serde(default)]
    pub absent_headers: Vec<String>,
    #[serde(default)]
    pub http_port: Option<String>,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub client_cert: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RedirectExpect {
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseExpect {
    #[serde(default)]
    pub status_codes: Vec<u16>,
    #[serde(default)]
    pub headers: HeaderMapSpec,
    #[serde(default)]
    pub valid_header_values: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub absent_headers: Vec<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub ignore_whitespace: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MirrorExpect {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightsStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub request: Value,
    pub expected: BTreeMap<String, f64>,
}

#[derive(Debug, Clone)]
pub enum ApplyStep {
    File(String),
    Inline(Value),
    Patch(PatchSpec),
}

#[derive(Debug, Clone, Deserialize)]
pub struct PatchSpec {
    pub kind: String,
    pub object: String,
    pub merge: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TlsStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub sni: String,
    pub expect: TlsExpect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsExpect {
    pub handshake: String,
    #[serde(default)]
    pub connection: Option<String>,
    #[serde(default)]
    pub certificate_for: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub ca_config_map: Option<String>,
    #[serde(default)]
    pub server_certificate: Option<String>,
    pub expect: TcpExpect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpExpect {
    #[serde(default)]
    pub backend_is_tls: Option<bool>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub tls_protocol: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebsocketStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub path: String,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    pub exchange: Vec<WsFrame>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WsFrameSpec")]
pub enum WsFrame {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, Deserialize)]
struct WsFrameSpec {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    binary: Option<Vec<u8>>,
}

impl From<WsFrameSpec> for WsFrame {
    fn from(s: WsFrameSpec) -> Self {
        match (s.text, s.binary) {
            (_, Some(b)) => WsFrame::Binary(b),
            (Some(t), None) => WsFrame::Text(t),
            (None, None) => WsFrame::Text(String::new()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub request: RequestSpec,
    pub concurrency: usize,
    pub total: usize,
    pub expect: LoadExpect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadExpect {
    #[serde(default)]
    pub status_counts: BTreeMap<u16, Value>,
    #[serde(default)]
    pub max_duration: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickyStep {
    pub gateway: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub request: RequestSpec,
    #[serde(default)]
    pub key_header: Option<String>,
    #[serde(default)]
    pub key_cookie: Option<String>,
    #[serde(default)]
    pub key_query: Option<String>,
    pub keys: usize,
    pub expect: StickyExpect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickyExpect {
    #[serde(default)]
    pub same_pod_per_key: bool,
    #[serde(default)]
    pub min_distinct_pods: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackendControlStep {
    pub deployment: String,
    #[serde(default)]
    pub pod: Option<usize>,
    pub mode: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay: Option<String>,
}
