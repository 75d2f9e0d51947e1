//! One access-log line per request, at info level on target `weir::access`.

use std::time::Duration;

use crate::errors::ResponseFlag;

pub const TARGET: &str = "weir::access";

#[derive(Debug)]
pub struct AccessRecord<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub route: Option<&'a str>,
    pub upstream: Option<std::net::SocketAddr>,
    pub flag: ResponseFlag,
    pub attempts: u32,
    pub duration: Duration,
}

pub fn log(r: &AccessRecord<'_>) {
    log::info!(
        target: TARGET,
        "{} {} {} {} route={} upstream={} flags={} attempts={} duration_ms={}",
        r.method,
        if r.host.is_empty() { "-" } else { r.host },
        r.path,
        r.status,
        r.route.unwrap_or("-"),
        r.upstream.map_or_else(|| "-".to_string(), |a| a.to_string()),
        r.flag.as_str(),
        r.attempts,
        r.duration.as_millis(),
    );
}
