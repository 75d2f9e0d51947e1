//! The flaky `/retry/` backend: attempts are counted per `uuid`; the first
//! `succeedAfter` attempts fail, with `responseCode` or by resetting the
//! connection, each after `delayRetry`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;

use super::answer::query_param;
use super::duration::parse_go_duration;

#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    Fail { delay: Duration, status: Option<StatusCode> },
    Succeed,
}

#[derive(Debug, Default)]
pub struct RetryCounter(Mutex<HashMap<String, u32>>);

impl RetryCounter {
    /// Counts one attempt for the query's `uuid` and says how to answer it.
    /// `Err` is a message for a 400: the query is not a valid retry request.
    pub fn attempt(&self, query: Option<&str>) -> Result<Attempt, String> {
        let uuid = query_param(query, "uuid").filter(|u| !u.is_empty()).ok_or("missing uuid")?;
        let succeed_after: u32 = query_param(query, "succeedAfter")
            .ok_or("missing succeedAfter")?
            .parse()
            .map_err(|_| "succeedAfter must be a non-negative integer")?;
        let status = match query_param(query, "responseCode") {
            None => None,
            Some(code) => Some(
                code.parse::<u16>()
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .ok_or("responseCode must be an HTTP status")?,
            ),
        };
        let delay = match query_param(query, "delayRetry") {
            None => Duration::ZERO,
            Some(text) => parse_go_duration(&text).map_err(|e| e.to_string())?,
        };
        let attempts = {
            let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = counts.entry(uuid).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        Ok(if attempts <= succeed_after { Attempt::Fail { delay, status } } else { Attempt::Succeed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_uuid() {
        let counter = RetryCounter::default();
        let a = Some("uuid=a&succeedAfter=2&responseCode=500&delayRetry=10ms");
        let fail = Attempt::Fail {
            delay: Duration::from_millis(10),
            status: Some(StatusCode::INTERNAL_SERVER_ERROR),
        };
        assert_eq!(counter.attempt(a), Ok(fail));
        assert_eq!(counter.attempt(Some("uuid=b&succeedAfter=0")), Ok(Attempt::Succeed));
        assert!(matches!(counter.attempt(a), Ok(Attempt::Fail { .. })));
        assert_eq!(counter.attempt(a), Ok(Attempt::Succeed));
        assert_eq!(
            counter.attempt(Some("uuid=c&succeedAfter=1")),
            Ok(Attempt::Fail { delay: Duration::ZERO, status: None })
        );
    }

    #[test]
    fn rejects_incomplete_queries() {
        let counter = RetryCounter::default();
        assert!(counter.attempt(None).is_err());
        assert!(counter.attempt(Some("succeedAfter=1")).is_err());
        assert!(counter.attempt(Some("uuid=x")).is_err());
        assert!(counter.attempt(Some("uuid=x&succeedAfter=1&responseCode=abc")).is_err());
        assert!(counter.attempt(Some("uuid=x&succeedAfter=1&delayRetry=soon")).is_err());
    }
}
