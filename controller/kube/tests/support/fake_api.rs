//! An in-process fake Kubernetes API server on loopback: list, watch (with
//! resourceVersion resume), get, create, replace, merge-patch of status, and
//! Gateway API discovery. Enough for kube-rs clients; nothing more.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::broadcast;

mod routes;

type Body = UnsyncBoxBody<Bytes, Infallible>;
/// (path prefix such as `/apis/g/v`, plural) → (namespace or "", name) → object.
type Store = BTreeMap<(String, String), BTreeMap<(String, String), Value>>;

#[derive(Clone, Debug)]
struct Event {
    rv: u64,
    collection: (String, String),
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    store: Store,
    events: Vec<Event>,
    /// (path, body) of every status patch.
    patches: Vec<(String, Value)>,
    lists: BTreeMap<String, usize>,
    refuse_watches: bool,
    /// TokenReview answers: token → (username, audience).
    tokens: BTreeMap<String, (String, String)>,
}

#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
    drops: broadcast::Sender<()>,
    pub url: String,
}

const GATEWAY_KINDS: &[(&str, &str, &str)] = &[
    ("v1", "GatewayClass", "gatewayclasses"),
    ("v1", "Gateway", "gateways"),
    ("v1", "HTTPRoute", "httproutes"),
    ("v1", "GRPCRoute", "grpcroutes"),
    ("v1", "BackendTLSPolicy", "backendtlspolicies"),
    ("v1beta1", "ReferenceGrant", "referencegrants"),
    ("v1alpha2", "TLSRoute", "tlsroutes"),
];

fn plural(kind: &str) -> String {
    if let Some((_, _, p)) = GATEWAY_KINDS.iter().find(|(_, k, _)| *k == kind) {
        return p.to_string();
    }
    format!("{}s", kind.to_ascii_lowercase())
}

fn prefix(api_version: &str) -> String {
    match api_version.split_once('/') {
        Some((group, version)) => format!("/apis/{group}/{version}"),
        None => format!("/api/{api_version}"),
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    json_response(StatusCode::from_u16(code).unwrap(), &body)
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .unwrap()
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let api = FakeApi {
            state: Arc::default(),
            events: broadcast::channel(4096).0,
            drops: broadcast::channel(16).0,
            url,
        };
        let server = api.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        api
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Creates or updates an object (generation +1 when its spec changes).
    pub fn apply(&self, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        let api_version = object["apiVersion"].as_str().unwrap().to_string();
        let kind = object["kind"].as_str().unwrap().to_string();
        let collection = (prefix(&api_version), plural(&kind));
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let old = state.store.get(&collection).and_then(|c| c.get(&(ns.clone(), name.clone()))).cloned();
        let generation = match &old {
            Some(old) if old["spec"] == object["spec"] => old["metadata"]["generation"].as_i64().unwrap_or(1),
            Some(old) => old["metadata"]["generation"].as_i64().unwrap_or(1) + 1,
            None => 1,
        };
        object["metadata"]["generation"] = json!(generation);
        if let Some(old) = &old {
            if object.get("status").is_none() && old.get("status").is_some() {
                object["status"] = old["status"].clone();
            }
        }
        let kind_word = if old.is_some() { "MODIFIED" } else { "ADDED" };
        Self::store(&mut state, &self.events, collection, ns, name, object, kind_word);
    }

    pub fn delete(&self, api_version: &str, kind: &str, ns: &str, name: &str) {
        let mut state = self.state.lock().unwrap();
        let collection = (prefix(api_version), plural(kind));
        let Some(object) = state.store.get_mut(&collection).and_then(|c| c.remove(&(ns.into(), name.into()))) else {
            return;
        };
        state.rv += 1;
        let rv = state.rv;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = Event { rv, collection, namespace: ns.into(), kind: "DELETED", object };
        state.events.push(event.clone());
        let _ = self.events.send(event);
    }

    fn store(state: &mut State, events: &broadcast::Sender<Event>, collection: (String, String), ns: String, name: String, mut object: Value, kind: &'static str) {
        state.rv += 1;
        let rv = state.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        state.store.entry(collection.clone()).or_default().insert((ns.clone(), name), object.clone());
        let event = Event { rv, collection, namespace: ns, kind, object };
        state.events.push(event.clone());
        let _ = events.send(event);
    }

    pub fn get(&self, api_version: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state.store.get(&(prefix(api_version), plural(kind)))?.get(&(ns.into(), name.into())).cloned()
    }

    pub fn patches(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().patches.clone()
    }

    /// How many times a collection (path) was listed.
    pub fn lists(&self, path: &str) -> usize {
        self.state.lock().unwrap().lists.get(path).copied().unwrap_or(0)
    }

    /// Makes TokenReviews accept `token` as `username`, issued for `audience`.
    pub fn add_token(&self, token: &str, username: &str, audience: &str) {
        self.state.lock().unwrap().tokens.insert(token.into(), (username.into(), audience.into()));
    }

    /// Every collection path that was listed.
    pub fn listed_paths(&self) -> Vec<String> {
        self.state.lock().unwrap().lists.keys().cloned().collect()
    }

    /// Ends every open watch stream (as an API server restart would).
    pub fn drop_watches(&self) {
        let _ = self.drops.send(());
    }

    /// While set, new watch requests fail with 503.
    pub fn refuse_watches(&self, refuse: bool) {
        self.state.lock().unwrap().refuse_watches = refuse;
    }
}
