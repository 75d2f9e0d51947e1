//! Who may fetch snapshots: gateway replicas present their ServiceAccount
//! token, checked with a TokenReview. The check is a trait so tests use a
//! fake.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use kube::Client;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `system:serviceaccount:<namespace>:<name>`.
    pub username: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token was not accepted: {0}")]
    Rejected(String),
    #[error("{0} may not fetch snapshots (allowed: {1})")]
    NotAllowed(String, String),
    #[error("cannot check the token: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError>;
}

/// TokenReview against the API server, then an allow-list of usernames.
pub struct TokenReviewer {
    api: Api<TokenReview>,
    /// Audiences the token must be issued for (empty: the API server's).
    audiences: Vec<String>,
    allowed: Vec<String>,
}

impl TokenReviewer {
    pub fn new(client: Client, audiences: Vec<String>, allowed: Vec<String>) -> Self {
        TokenReviewer { api: Api::all(client), audiences, allowed }
    }
}

#[async_trait::async_trait]
impl Authenticator for TokenReviewer {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..Default::default()
        };
        let answer = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("{e} (the controller needs `create` on tokenreviews)")))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(AuthError::Rejected(status.error.unwrap_or_else(|| "not authenticated".into())));
        }
        let username = status.user.and_then(|u| u.username).unwrap_or_default();
        allow(&self.allowed, username)
    }
}

/// Accepts `username` if it is on the list.
pub fn allow(allowed: &[String], username: String) -> Result<Identity, AuthError> {
    if allowed.contains(&username) {
        Ok(Identity { username })
    } else {
        Err(AuthError::NotAllowed(username, allowed.join(", ")))
    }
}

/// Tokens from a fixed table (tests, local runs).
pub struct StaticTokens(pub Vec<(String, String)>);

#[async_trait::async_trait]
impl Authenticator for StaticTokens {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.0
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, user)| Identity { username: user.clone() })
            .ok_or_else(|| AuthError::Rejected("unknown token".into()))
    }
}
