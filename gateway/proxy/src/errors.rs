//! Proxy errors and their one mapping to (HTTP status, Envoy response flag,
//! retryable).

use pingora_error::{Error, ErrorSource, ErrorType};

/// Why a request did not get a backend's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no route matched")]
    NoRoute,
    #[error("request host does not belong to the TLS server name's listener")]
    Misdirected,
    #[error("backend reference is invalid or names an unknown cluster")]
    InvalidBackend,
    #[error("no ready endpoint in the cluster")]
    NoHealthyUpstream,
    #[error("connecting to the backend failed")]
    ConnectFailure,
    #[error("the backend did not answer in time")]
    UpstreamTimeout,
    #[error("the route's request timeout expired")]
    RequestTimeout,
    #[error("the backend reset or closed the connection")]
    UpstreamReset,
    #[error("the backend sent an invalid response")]
    UpstreamProtocol,
    #[error("retry for response status {0}")]
    RetryStatus(u16),
    #[error("malformed or ambiguous request")]
    BadRequest,
    #[error("the client went away")]
    DownstreamClosed,
    #[error("internal error")]
    Internal,
}

/// Envoy's response flags, as Istio operators read them in access logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFlag {
    /// `-`: no flag.
    None,
    NoRouteFound,
    NoClusterFound,
    NoHealthyUpstream,
    UpstreamConnectionFailure,
    UpstreamRequestTimeout,
    UpstreamRetryLimitExceeded,
    UpstreamConnectionTermination,
    UpstreamProtocolError,
    DownstreamProtocolError,
    DownstreamConnectionTermination,
}

impl ResponseFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseFlag::None => "-",
            ResponseFlag::NoRouteFound => "NR",
            ResponseFlag::NoClusterFound => "NC",
            ResponseFlag::NoHealthyUpstream => "UH",
            ResponseFlag::UpstreamConnectionFailure => "UF",
            ResponseFlag::UpstreamRequestTimeout => "UT",
            ResponseFlag::UpstreamRetryLimitExceeded => "URX",
            ResponseFlag::UpstreamConnectionTermination => "UC",
            ResponseFlag::UpstreamProtocolError => "UPE",
            ResponseFlag::DownstreamProtocolError => "DPE",
            ResponseFlag::DownstreamConnectionTermination => "DC",
        }
    }
}

/// How an error is answered. `status` 0 means nothing can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    pub flag: ResponseFlag,
    /// Whether another attempt may help (subject to the route's policy).
    pub retryable: bool,
}

impl ProxyError {
    /// The one place errors become statuses and flags.
    pub fn outcome(self) -> Outcome {
        use ResponseFlag as F;
        let (status, flag, retryable) = match self {
            ProxyError::NoRoute => (404, F::NoRouteFound, false),
            // RFC 9110 §15.5.20: the connection's TLS server name is not for this host.
            ProxyError::Misdirected => (421, F::None, false),
            // Gateway API: requests to an invalid backendRef get 500.
            ProxyError::InvalidBackend => (500, F::NoClusterFound, false),
            ProxyError::NoHealthyUpstream => (503, F::NoHealthyUpstream, false),
            ProxyError::ConnectFailure => (503, F::UpstreamConnectionFailure, true),
            // Gateway API timeouts answer 504 (Pingora's default would be 502).
            ProxyError::UpstreamTimeout => (504, F::UpstreamRequestTimeout, true),
            ProxyError::RequestTimeout => (504, F::UpstreamRequestTimeout, false),
            ProxyError::UpstreamReset => (503, F::UpstreamConnectionTermination, true),
            ProxyError::UpstreamProtocol => (502, F::UpstreamProtocolError, false),
            ProxyError::RetryStatus(code) => (code, F::UpstreamRetryLimitExceeded, true),
            ProxyError::BadRequest => (400, F::DownstreamProtocolError, false),
            ProxyError::DownstreamClosed => (0, F::DownstreamConnectionTermination, false),
            ProxyError::Internal => (500, F::None, false),
        };
        Outcome {
            status,
            flag,
            retryable,
        }
    }

    /// Classifies an error raised by Pingora (connect, read, write...).
    pub fn from_pingora(e: &Error) -> ProxyError {
        use ErrorType as T;
        if *e.esource() == ErrorSource::Downstream {
            return match e.etype() {
                T::InvalidHTTPHeader | T::H2Error | T::InvalidH2 => ProxyError::BadRequest,
                _ => ProxyError::DownstreamClosed,
            };
        }
        match e.etype() {
            T::HTTPStatus(code) => ProxyError::RetryStatus(*code),
            T::ConnectTimedout
            | T::ConnectRefused
            | T::ConnectNoRoute
            | T::ConnectError
            | T::BindError
            | T::ConnectProxyFailure
            | T::TLSHandshakeFailure
            | T::TLSHandshakeTimedout
            | T::InvalidCert => ProxyError::ConnectFailure,
            T::ReadTimedout | T::WriteTimedout => ProxyError::UpstreamTimeout,
            T::ConnectionClosed | T::ReadError | T::WriteError | T::H2Downgrade => {
                ProxyError::UpstreamReset
            }
            T::InvalidHTTPHeader | T::H1Error | T::H2Error | T::InvalidH2 => {
                ProxyError::UpstreamProtocol
            }
            _ => ProxyError::Internal,
        }
    }

    /// Whether a Pingora error is a failure to reach the backend at all
    /// (retried under `on_connect_failure`), including resets before a response.
    pub fn is_connect_or_reset(self) -> bool {
        matches!(self, ProxyError::ConnectFailure | ProxyError::UpstreamReset)
    }
}

/// Wraps one of our errors for Pingora's hooks.
pub fn to_pingora(e: ProxyError) -> Box<Error> {
    let status = e.outcome().status;
    Error::explain(ErrorType::HTTPStatus(status.max(500)), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_504_not_502() {
        let e = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(ProxyError::from_pingora(&e).outcome().status, 504);
        let e = Error::new(ErrorType::ConnectRefused).into_up();
        assert_eq!(ProxyError::from_pingora(&e), ProxyError::ConnectFailure);
    }

    #[test]
    fn flags() {
        assert_eq!(ProxyError::NoRoute.outcome().flag.as_str(), "NR");
        assert_eq!(ProxyError::InvalidBackend.outcome().status, 500);
        assert_eq!(ProxyError::RetryStatus(503).outcome().status, 503);
    }
}
