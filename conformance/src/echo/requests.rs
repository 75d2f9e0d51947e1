//! Every data-plane request the backend saw, for `GET /requests` on the
//! control port (mirroring and retry checks count them).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// At most this many requests are kept; `count` keeps counting past it.
const KEPT_REQUESTS: usize = 10_000;

#[derive(Clone, Debug, Serialize)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Serialize)]
pub struct RequestsSnapshot {
    pub count: u64,
    pub requests: Vec<SeenRequest>,
}

#[derive(Debug, Default)]
struct Log {
    count: u64,
    requests: VecDeque<SeenRequest>,
}

#[derive(Debug, Default)]
pub struct RequestLog(Mutex<Log>);

impl RequestLog {
    pub fn record(&self, request: SeenRequest) {
        let mut log = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.count += 1;
        if log.requests.len() == KEPT_REQUESTS {
            log.requests.pop_front();
        }
        log.requests.push_back(request);
    }

    pub fn snapshot(&self) -> RequestsSnapshot {
        let log = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        RequestsSnapshot { count: log.count, requests: log.requests.iter().cloned().collect() }
    }

    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Log::default();
    }
}
