//! What the data plane does with every request, as set through the control
//! API's `POST /mode` (the `backendControl` step).

use std::sync::RwLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::parse_go_duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answer as the echo contract says.
    Normal,
    /// Answer every data-plane request with this status and an empty body.
    Status(http::StatusCode),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Reset new connections, and the connection of any request that still arrives.
    Refuse,
}

/// The wire form of a mode: `{"mode":"normal"}`, `{"mode":"status","status":503}`,
/// `{"mode":"delay","delay":"500ms"}`, `{"mode":"refuse"}`.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ModeRequest {
    Normal,
    Status { status: u16 },
    Delay { delay: String },
    Refuse,
}

#[derive(Debug, thiserror::Error)]
pub enum InvalidMode {
    #[error("status {0} is not an HTTP status code")]
    Status(u16),
    #[error(transparent)]
    Delay(#[from] super::duration::InvalidDuration),
}

impl TryFrom<ModeRequest> for Mode {
    type Error = InvalidMode;

    fn try_from(request: ModeRequest) -> Result<Self, Self::Error> {
        Ok(match request {
            ModeRequest::Normal => Mode::Normal,
            ModeRequest::Status { status } => Mode::Status(
                http::StatusCode::from_u16(status).map_err(|_| InvalidMode::Status(status))?,
            ),
            ModeRequest::Delay { delay } => Mode::Delay(parse_go_duration(&delay)?),
            ModeRequest::Refuse => Mode::Refuse,
        })
    }
}

impl From<Mode> for ModeRequest {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Normal => ModeRequest::Normal,
            Mode::Status(status) => ModeRequest::Status { status: status.as_u16() },
            Mode::Delay(delay) => ModeRequest::Delay { delay: format!("{}ms", delay.as_millis()) },
            Mode::Refuse => ModeRequest::Refuse,
        }
    }
}

/// The current mode, shared by every listener.
#[derive(Debug)]
pub struct ModeCell(RwLock<Mode>);

impl Default for ModeCell {
    fn default() -> Self {
        ModeCell(RwLock::new(Mode::Normal))
    }
}

impl ModeCell {
    pub fn get(&self) -> Mode {
        *self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set(&self, mode: Mode) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = mode;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Mode, String> {
        let request: ModeRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Mode::try_from(request).map_err(|e| e.to_string())
    }

    #[test]
    fn contract_forms() {
        assert_eq!(parse(r#"{"mode":"normal"}"#), Ok(Mode::Normal));
        assert_eq!(
            parse(r#"{"mode":"status","status":503}"#),
            Ok(Mode::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        );
        assert_eq!(
            parse(r#"{"mode":"delay","delay":"500ms"}"#),
            Ok(Mode::Delay(Duration::from_millis(500)))
        );
        assert_eq!(parse(r#"{"mode":"refuse"}"#), Ok(Mode::Refuse));
    }

    #[test]
    fn rejects_bad_modes() {
        assert!(parse(r#"{"mode":"status"}"#).is_err());
        assert!(parse(r#"{"mode":"status","status":1000}"#).is_err());
        assert!(parse(r#"{"mode":"delay","delay":"soon"}"#).is_err());
        assert!(parse(r#"{"mode":"sleep"}"#).is_err());
    }
}
