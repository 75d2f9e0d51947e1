//! Leader election on a coordination.k8s.io Lease, the way client-go does
//! it: the holder renews the Lease every `renew_every`; another replica takes
//! it over once it has seen no renewal for `duration` (measured on its own
//! clock, so clock skew between nodes does not matter). Writes use the
//! Lease's resourceVersion, so two replicas can never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub duration: Duration,
    /// How often the holder renews (and others check).
    pub renew_every: Duration,
}

/// What identifies one renewal of the Lease: (holder, renewTime).
type LeaseRecord = (Option<String>, Option<MicroTime>);

pub struct LeaderElector {
    api: Api<Lease>,
    opts: LeaseOptions,
    /// The last (holder, renewTime) seen, and when it was first seen.
    observed: Option<(LeaseRecord, Instant)>,
    last_renewed: Option<Instant>,
}

impl LeaderElector {
    pub fn new(client: Client, opts: LeaseOptions) -> Self {
        LeaderElector { api: Api::namespaced(client, &opts.namespace), opts, observed: None, last_renewed: None }
    }

    /// Runs forever, publishing whether this replica leads.
    pub async fn run(mut self, leader: watch::Sender<bool>) {
        loop {
            let leading = match self.try_acquire_or_renew().await {
                Ok(leading) => leading,
                Err(e) => {
                    log::warn!(
                        "leader election on Lease {}/{} failed: {e}. The controller needs get/create/update on \
                         leases in {}",
                        self.opts.namespace, self.opts.name, self.opts.namespace
                    );
                    // Keep leading only while our last renewal is still valid.
                    self.last_renewed.is_some_and(|t| t.elapsed() < self.opts.duration)
                }
            };
            leader.send_if_modified(|was| {
                if *was != leading {
                    log::info!("{} {} the status writer", self.opts.identity, if leading { "is now" } else { "is no longer" });
                    *was = leading;
                    return true;
                }
                false
            });
            if leader.is_closed() {
                return;
            }
            tokio::time::sleep(self.opts.renew_every).await;
        }
    }

    /// Gives the Lease up if this replica holds it, so another replica
    /// takes over at its next check instead of waiting for expiry.
    pub async fn release(client: Client, opts: &LeaseOptions) {
        let api: Api<Lease> = Api::namespaced(client, &opts.namespace);
        let Ok(Some(mut lease)) = api.get_opt(&opts.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(opts.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        match api.replace(&opts.name, &PostParams::default(), &lease).await {
            Ok(_) => log::info!("released Lease {}/{}", opts.namespace, opts.name),
            Err(e) => log::warn!("cannot release Lease {}/{} ({e}); it expires on its own", opts.namespace, opts.name),
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let seconds = self.opts.duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.opts.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.opts.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.opts.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return self.write(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let record = (spec.holder_identity.clone(), spec.renew_time.clone());
        match &self.observed {
            Some((seen, _)) if *seen == record => {}
            _ => self.observed = Some((record.clone(), Instant::now())),
        }
        let ours = spec.holder_identity.as_deref() == Some(self.opts.identity.as_str());
        let held_for = spec.lease_duration_seconds.map_or(self.opts.duration, |s| Duration::from_secs(s.max(1) as u64));
        let expired = record.0.is_none() || self.observed.as_ref().is_some_and(|(_, at)| at.elapsed() > held_for);
        if !ours && !expired {
            return Ok(false);
        }
        if !ours {
            spec.holder_identity = Some(self.opts.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            log::info!("taking over Lease {}/{} from {:?}", self.opts.namespace, self.opts.name, record.0);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        let replaced = self.api.replace(&self.opts.name, &PostParams::default(), &lease).await;
        self.write(replaced)
    }

    /// A conflict means another replica wrote first: not leading.
    fn write(&mut self, result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
        match result {
            Ok(_) => {
                self.last_renewed = Some(Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                self.last_renewed = None;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
