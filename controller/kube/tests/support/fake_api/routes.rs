//! Request handling of the fake API server.

use super::*;

/// A parsed resource path.
struct Target {
    collection: (String, String),
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (format!("/api/{version}"), rest),
        ["apis", group, version, rest @ ..] => (format!("/apis/{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Target { collection: (prefix, plural.to_string()), namespace, name, subresource })
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl FakeApi {
    pub(super) async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        if path == "/apis" {
            return json_response(StatusCode::OK, &discovery_groups());
        }
        if let Some(version) = path.strip_prefix("/apis/gateway.networking.k8s.io/") {
            if !version.contains('/') {
                return json_response(StatusCode::OK, &discovery_resources(version));
            }
        }
        let Some(target) = parse_path(&path) else { return status(404, "NotFound", "unknown path") };
        let method = req.method().clone();
        match (method, &target.name) {
            (Method::GET, None) if query(&req, "watch").as_deref() == Some("true") => self.watch(&req, target),
            (Method::GET, None) => self.list(&path, target),
            (Method::GET, Some(name)) => match self.lookup(&target, name) {
                Some(object) => json_response(StatusCode::OK, &object),
                None => status(404, "NotFound", &format!("{} {name} not found", target.collection.1)),
            },
            (Method::POST, None) if target.collection.1 == "tokenreviews" => {
                let mut review = body_json(req).await;
                let token = review["spec"]["token"].as_str().unwrap_or_default().to_string();
                let audiences = review["spec"]["audiences"].clone();
                let tokens = self.state.lock().unwrap().tokens.clone();
                review["status"] = match tokens.get(&token) {
                    Some((user, audience)) if audiences.as_array().is_none_or(|a| a.iter().any(|x| x == audience)) => {
                        json!({"authenticated": true, "user": {"username": user}, "audiences": [audience]})
                    }
                    _ => json!({"authenticated": false, "error": "invalid bearer token"}),
                };
                json_response(StatusCode::CREATED, &review)
            }
            (Method::POST, None) => {
                let body = body_json(req).await;
                let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if self.lookup(&target, &name).is_some() {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                self.write(target, name, body, "ADDED")
            }
            (Method::PUT, Some(name)) => {
                let name = name.clone();
                let body = body_json(req).await;
                let Some(current) = self.lookup(&target, &name) else { return status(404, "NotFound", "not found") };
                if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return status(409, "Conflict", "the object has been modified; please apply your changes to the latest version");
                }
                self.write(target, name, body, "MODIFIED")
            }
            (Method::PATCH, Some(name)) if target.subresource.as_deref() == Some("status") => {
                let name = name.clone();
                let patch = body_json(req).await;
                let Some(mut object) = self.lookup(&target, &name) else { return status(404, "NotFound", "not found") };
                self.state.lock().unwrap().patches.push((path.clone(), patch.clone()));
                let before = object.clone();
                merge(&mut object, &json!({"status": patch["status"]}));
                if object == before {
                    return json_response(StatusCode::OK, &object);
                }
                self.write(target, name, object, "MODIFIED")
            }
            _ => status(405, "MethodNotAllowed", "not supported by the fake API server"),
        }
    }

    fn lookup(&self, target: &Target, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        let ns = target.namespace.clone().unwrap_or_default();
        state.store.get(&target.collection)?.get(&(ns, name.to_string())).cloned()
    }

    fn write(&self, target: Target, name: String, object: Value, kind: &'static str) -> Response<Body> {
        let mut state = self.state.lock().unwrap();
        let ns = target.namespace.unwrap_or_default();
        FakeApi::store(&mut state, &self.events, target.collection.clone(), ns.clone(), name.clone(), object, kind);
        let stored = state.store[&target.collection][&(ns, name)].clone();
        json_response(if kind == "ADDED" { StatusCode::CREATED } else { StatusCode::OK }, &stored)
    }

    fn list(&self, path: &str, target: Target) -> Response<Body> {
        let mut state = self.state.lock().unwrap();
        *state.lists.entry(path.to_string()).or_default() += 1;
        let items: Vec<Value> = state
            .store
            .get(&target.collection)
            .into_iter()
            .flatten()
            .filter(|((ns, _), _)| target.namespace.as_ref().is_none_or(|want| want == ns))
            .map(|(_, object)| object.clone())
            .collect();
        json_response(StatusCode::OK, &json!({"apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": state.rv.to_string()}, "items": items}))
    }

    fn watch(&self, req: &Request<Incoming>, target: Target) -> Response<Body> {
        let since: u64 = query(req, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        let (backlog, refuse, mut live) = {
            let state = self.state.lock().unwrap();
            // Subscribed under the lock: no event falls between backlog and live.
            let live = self.events.subscribe();
            let backlog: Vec<Event> = state.events.iter().filter(|e| e.rv > since).cloned().collect();
            (backlog, state.refuse_watches, live)
        };
        if refuse {
            return status(503, "ServiceUnavailable", "watches are refused for this test");
        }
        let mut drops = self.drops.subscribe();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let wanted = move |e: &Event| {
            e.collection == target.collection && target.namespace.as_ref().is_none_or(|ns| *ns == e.namespace)
        };
        tokio::spawn(async move {
            let line = |e: &Event| Bytes::from(format!("{}\n", json!({"type": e.kind, "object": e.object})));
            let mut last = since;
            for event in backlog.iter().filter(|e| wanted(e)) {
                last = event.rv;
                if tx.send(line(event)).is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    event = live.recv() => match event {
                        Ok(e) if e.rv > last && wanted(&e) => {
                            last = e.rv;
                            if tx.send(line(&e)).is_err() { return }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    },
                    _ = drops.recv() => return,
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())))
            .unwrap()
    }
}

async fn body_json(req: Request<Incoming>) -> Value {
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn discovery_groups() -> Value {
    let versions: Vec<Value> = ["v1", "v1beta1", "v1alpha2"]
        .iter()
        .map(|v| json!({"groupVersion": format!("gateway.networking.k8s.io/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
        "name": "gateway.networking.k8s.io", "versions": versions,
        "preferredVersion": {"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"}}]})
}

fn discovery_resources(version: &str) -> Value {
    let mut resources = Vec::new();
    for (v, kind, plural) in GATEWAY_KINDS.iter().filter(|(v, _, _)| *v == version) {
        let _ = v;
        let namespaced = *kind != "GatewayClass";
        resources.push(json!({"name": plural, "singularName": kind.to_ascii_lowercase(), "namespaced": namespaced,
            "kind": kind, "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}));
        resources.push(json!({"name": format!("{plural}/status"), "singularName": "", "namespaced": namespaced,
            "kind": kind, "verbs": ["get", "patch", "update"]}));
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1",
           "groupVersion": format!("gateway.networking.k8s.io/{version}"), "resources": resources})
}
