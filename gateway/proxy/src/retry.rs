//! Retry and timeout budget of one request: pure decisions, evaluated by the
//! Pingora hooks.

use std::time::{Duration, Instant};

use weir_model::{RetryPolicy, Timeouts};

use crate::errors::ProxyError;

/// Per-request state shared by all attempts.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Overall deadline (`Timeouts::request`), across retries.
    pub deadline: Option<Instant>,
    /// Per-attempt limit (`per_try_timeout`, else `Timeouts::backend_request`).
    pub per_try: Option<Duration>,
    pub policy: Option<RetryPolicy>,
    /// Attempts started so far.
    pub attempts: u32,
}

impl Budget {
    pub fn new(start: Instant, timeouts: &Timeouts, policy: Option<&RetryPolicy>) -> Self {
        Budget {
            deadline: timeouts.request.map(|d| start + d),
            per_try: policy
                .and_then(|p| p.per_try_timeout)
                .or(timeouts.backend_request),
            policy: policy.cloned(),
            attempts: 0,
        }
    }

    /// Time left before the overall deadline (`None`: no deadline).
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.remaining(now).is_some_and(|r| r.is_zero())
    }

    /// The read timeout of the next attempt, and whether it is the overall
    /// deadline (not the per-try limit) that bounds it.
    pub fn attempt_timeout(&self, now: Instant) -> (Option<Duration>, bool) {
        match (self.per_try, self.remaining(now)) {
            (Some(per_try), Some(left)) if left < per_try => (Some(left), true),
            (Some(per_try), _) => (Some(per_try), false),
            (None, Some(left)) => (Some(left), true),
            (None, None) => (None, false),
        }
    }

    /// Whether another attempt follows a failure of `kind`: the route has a
    /// policy allowing it, attempts remain (`attempts` counts retries after
    /// the first try) and the overall deadline has not passed.
    pub fn may_retry(&self, kind: ProxyError, now: Instant) -> bool {
        let Some(policy) = &self.policy else {
            return false;
        };
        if self.attempts > policy.attempts || self.expired(now) {
            return false;
        }
        match kind {
            ProxyError::RetryStatus(code) => policy.codes.contains(&code),
            ProxyError::ConnectFailure | ProxyError::UpstreamReset => policy.on_connect_failure,
            // A per-try timeout is retried like a failed attempt (Gateway API
            // HTTPRouteRetryBackendTimeout); the overall deadline is final.
            ProxyError::UpstreamTimeout => true,
            ProxyError::NoRoute
            | ProxyError::Misdirected
            | ProxyError::InvalidBackend
            | ProxyError::NoHealthyUpstream
            | ProxyError::RequestTimeout
            | ProxyError::UpstreamProtocol
            | ProxyError::BadRequest
            | ProxyError::DownstreamClosed
            | ProxyError::Internal => false,
        }
    }

    /// Wait before attempt number `self.attempts + 1`, cut to the deadline.
    pub fn backoff(&self, now: Instant) -> Option<Duration> {
        if self.attempts == 0 {
            return None;
        }
        let wait = self.policy.as_ref()?.backoff?;
        Some(self.remaining(now).map_or(wait, |left| wait.min(left)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32, codes: &[u16], on_connect_failure: bool) -> RetryPolicy {
        RetryPolicy {
            attempts,
            codes: codes.to_vec(),
            on_connect_failure,
            backoff: None,
            per_try_timeout: None,
        }
    }

    #[test]
    fn retry_on_listed_codes_until_attempts_run_out() {
        let now = Instant::now();
        let mut b = Budget::new(now, &Timeouts::default(), Some(&policy(2, &[503], false)));
        b.attempts = 1;
        assert!(b.may_retry(ProxyError::RetryStatus(503), now));
        assert!(!b.may_retry(ProxyError::RetryStatus(500), now));
        assert!(!b.may_retry(ProxyError::ConnectFailure, now));
        b.attempts = 3; // first try + 2 retries done
        assert!(!b.may_retry(ProxyError::RetryStatus(503), now));
    }

    #[test]
    fn no_policy_no_retry() {
        let now = Instant::now();
        let b = Budget::new(now, &Timeouts::default(), None);
        assert!(!b.may_retry(ProxyError::UpstreamTimeout, now));
    }

    #[test]
    fn overall_deadline_bounds_attempts() {
        let now = Instant::now();
        let timeouts = Timeouts {
            request: Some(Duration::from_millis(400)),
            backend_request: Some(Duration::from_millis(200)),
        };
        let mut b = Budget::new(now, &timeouts, Some(&policy(5, &[500], true)));
        assert_eq!(
            b.attempt_timeout(now),
            (Some(Duration::from_millis(200)), false)
        );
        let later = now + Duration::from_millis(300);
        assert_eq!(
            b.attempt_timeout(later),
            (Some(Duration::from_millis(100)), true)
        );
        b.attempts = 1;
        assert!(!b.may_retry(
            ProxyError::RetryStatus(500),
            now + Duration::from_millis(400)
        ));
        assert!(!b.may_retry(ProxyError::RequestTimeout, now));
    }

    #[test]
    fn backoff_is_cut_to_the_deadline() {
        let now = Instant::now();
        let mut p = policy(3, &[503], false);
        p.backoff = Some(Duration::from_millis(100));
        let timeouts = Timeouts {
            request: Some(Duration::from_millis(50)),
            backend_request: None,
        };
        let mut b = Budget::new(now, &timeouts, Some(&p));
        assert_eq!(b.backoff(now), None);
        b.attempts = 1;
        assert_eq!(b.backoff(now), Some(Duration::from_millis(50)));
    }
}
