//! Gateway tokens are checked with a TokenReview (audience included), then
//! against the allow-list of ServiceAccounts.

mod support;

use support::FakeApi;
use weir_kube::auth::{AuthError, Authenticator, TokenReviewer};

const GATEWAY: &str = "system:serviceaccount:weir-system:weir-gateway";

#[tokio::test]
async fn token_reviews_decide_who_gets_snapshots() {
    let api = FakeApi::start().await;
    api.add_token("gateway", GATEWAY, "weir-controller");
    api.add_token("other-audience", GATEWAY, "https://kubernetes.default.svc");
    api.add_token("intruder", "system:serviceaccount:default:app", "weir-controller");
    let reviewer = TokenReviewer::new(api.client(), vec!["weir-controller".into()], vec![GATEWAY.into()]);

    let identity = reviewer.authenticate("gateway").await.unwrap();
    assert_eq!(identity.username, GATEWAY);
    assert!(matches!(reviewer.authenticate("other-audience").await, Err(AuthError::Rejected(_))));
    assert!(matches!(reviewer.authenticate("unknown").await, Err(AuthError::Rejected(_))));
    assert!(matches!(reviewer.authenticate("intruder").await, Err(AuthError::NotAllowed(..))));
}
