//! Watchers: one kube-runtime watcher per kind, feeding [`Change`]s to the
//! translator. kube-runtime resumes a dropped watch from the last
//! resourceVersion it saw and re-lists (an `Init` … `InitDone` round) when
//! the API server says that version is gone, so no event is lost.

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::sync::mpsc;
use weir_controller::ObjectKey;

use crate::convert::{convert, key_of, Converted};
use crate::kinds::{self, GATEWAY_API_KINDS, GATEWAY_GROUP};

/// One change to the index.
// Changes are moved through a channel once each; boxing the large variant
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Change {
    Apply { resource: ApiResource, key: ObjectKey, object: Converted },
    Delete { key: ObjectKey },
    /// A full list of `resource`'s kind. `unreadable` objects keep their last
    /// good version.
    Replace { resource: ApiResource, items: Vec<(ObjectKey, Converted)>, unreadable: Vec<ObjectKey> },
    /// The Secret fetcher finished a round for these (`namespace`, `name`)s.
    SecretsFetched(std::collections::BTreeSet<(String, String)>),
}

/// How long to wait before asking discovery again.
const DISCOVERY_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The resources to watch: core kinds, plus the Gateway API kinds in the
/// version the cluster prefers. Kinds whose CRD is missing are skipped;
/// without the Gateway API group at all, this waits (and says so) until it
/// appears, since translating without Gateways would serve nothing.
pub async fn resources(client: &Client) -> Vec<ApiResource> {
    let group = loop {
        match kube::discovery::group(client, GATEWAY_GROUP).await {
            Ok(group) => break group,
            Err(e) => log::error!(
                "cannot discover the {GATEWAY_GROUP} API ({e}); are the Gateway API CRDs installed \
                 (see deploy/README.md)? Retrying in {DISCOVERY_RETRY:?}"
            ),
        }
        tokio::time::sleep(DISCOVERY_RETRY).await;
    };
    let mut out = kinds::core_kinds();
    for kind in GATEWAY_API_KINDS {
        match group.recommended_kind(kind) {
            Some((resource, _caps)) => out.push(resource),
            None => log::warn!(
                "the {kind} CRD ({GATEWAY_GROUP}) is not installed; {kind} objects are ignored. \
                 Install the Gateway API CRDs (see deploy/README.md) and restart the controller"
            ),
        }
    }
    out
}

/// Watches one kind cluster-wide until `tx` closes.
pub async fn watch_kind(client: Client, resource: ApiResource, tx: mpsc::UnboundedSender<Change>) {
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut items = Vec::new();
    let mut unreadable = Vec::new();
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Init) => {
                items.clear();
                unreadable.clear();
                continue;
            }
            Ok(Event::InitApply(object)) => {
                match read(&resource, &object) {
                    Ok(item) => items.push(item),
                    Err(Some(key)) => unreadable.push(key),
                    Err(None) => {}
                }
                continue;
            }
            Ok(Event::InitDone) => Change::Replace {
                resource: resource.clone(),
                items: std::mem::take(&mut items),
                unreadable: std::mem::take(&mut unreadable),
            },
            Ok(Event::Apply(object)) => match read(&resource, &object) {
                Ok((key, object)) => Change::Apply { resource: resource.clone(), key, object },
                Err(_) => continue,
            },
            Ok(Event::Delete(object)) => match key_of(&resource, &object) {
                Some(key) => Change::Delete { key },
                None => continue,
            },
            Err(e) => {
                log::warn!(
                    "watching {} ({}): {e}; retrying with backoff. If this is a permission error, \
                     check the weir-controller ClusterRole in deploy/rbac.yaml",
                    resource.plural, resource.api_version
                );
                continue;
            }
        };
        if tx.send(change).is_err() {
            return;
        }
    }
}

/// Converts a watched object; on failure logs what to fix and returns the
/// object's key (so the last good version is kept), if it has one.
fn read(resource: &ApiResource, object: &DynamicObject) -> Result<(ObjectKey, Converted), Option<ObjectKey>> {
    let key = key_of(resource, object).ok_or(None)?;
    match convert(resource, object) {
        Ok(converted) => Ok((key, converted)),
        Err(e) => {
            log::warn!("cannot read {key}: {e}; fix the object, its last readable version stays in use");
            Err(Some(key))
        }
    }
}
