//! TokenReview as kube-apiserver answers it: whom a token authenticates as (username, uid,
//! groups, extra) and for which audiences; nothing but an `error` for a token that is
//! expired, invalidated or for other audiences, not even that for a string that is no token;
//! creating one is authorized by RBAC (`system:auth-delegator` grants it).

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::authentication::{create_account, create_pod, request, token, NS};
use crate::support::{api_error, server};

/// This server's audience, a TokenRequest's default.
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

async fn review_for(
    client: &Client,
    token: &str,
    audiences: &[&str],
) -> Result<TokenReviewStatus, kube::Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            audiences: (!audiences.is_empty())
                .then(|| audiences.iter().map(|a| (*a).to_owned()).collect()),
        },
        ..TokenReview::default()
    };
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.unwrap_or_default())
}

async fn review(client: &Client, token: &str, audiences: &[&str]) -> TokenReviewStatus {
    review_for(client, token, audiences)
        .await
        .unwrap_or_else(|e| panic!("TokenReview: {e}"))
}

#[tokio::test]
async fn a_token_review_answers_whom_a_pod_bound_token_is_for() {
    let (_server, admin) = server(NS);
    let account = create_account(&admin, "reader").await;
    let pod = create_pod(&admin, "p-0", "reader").await;
    let t = token(&admin, "reader", &request(None, Some(&pod))).await;
    let status = review(&admin, &t, &[]).await;
    assert_eq!(status.authenticated, Some(true));
    assert_eq!(status.error, None);
    assert_eq!(status.audiences, Some(vec![API_AUDIENCE.to_owned()]));
    let user = status.user.unwrap_or_default();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:auth:reader")
    );
    assert_eq!(user.uid, account.metadata.uid);
    assert_eq!(
        user.groups.unwrap_or_default(),
        [
            "system:serviceaccounts",
            "system:serviceaccounts:auth",
            "system:authenticated"
        ]
    );
    let extra = user.extra.unwrap_or_default();
    assert_eq!(
        extra.get("authentication.kubernetes.io/pod-name"),
        Some(&vec!["p-0".to_owned()])
    );
}

#[tokio::test]
async fn a_token_for_other_audiences_is_reviewed_for_the_audiences_asked() {
    let (_server, admin) = server(NS);
    create_account(&admin, "reader").await;
    let mut for_vault = request(None, None);
    if let Some(spec) = for_vault.spec.as_mut() {
        spec.audiences = Some(vec!["vault".to_owned()]);
    }
    let t = token(&admin, "reader", &for_vault).await;
    let here = review(&admin, &t, &[]).await;
    assert_eq!(here.authenticated, None, "{here:?}");
    assert_eq!(
        here.error.as_deref(),
        Some(
            r#"token audiences ["vault"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]"#
        )
    );
    assert_eq!(here.user.and_then(|u| u.username), None);
    let vault = review(&admin, &t, &["vault", "other"]).await;
    assert_eq!(vault.authenticated, Some(true));
    assert_eq!(vault.audiences, Some(vec!["vault".to_owned()]));
}

#[tokio::test]
async fn expired_invalidated_and_bogus_tokens_do_not_authenticate() {
    let (server, admin) = server(NS);
    create_account(&admin, "reader").await;
    let short = token(&admin, "reader", &request(Some(600), None)).await;
    let long = token(&admin, "reader", &request(None, None)).await;
    server.clock().advance(Duration::from_secs(600));
    let expired = review(&admin, &short, &[]).await;
    assert_eq!(
        (expired.authenticated, expired.error.as_deref()),
        (None, Some("service account token has expired"))
    );
    assert_eq!(review(&admin, &long, &[]).await.authenticated, Some(true));

    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NS);
    accounts
        .delete("reader", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    let deleted = review(&admin, &long, &[]).await;
    assert_eq!(
        (deleted.authenticated, deleted.error.as_deref()),
        (None, Some("service account token has been invalidated"))
    );

    let bogus = review(&admin, "not-a-token", &[]).await;
    assert_eq!((bogus.authenticated, bogus.error), (None, None));
    assert_eq!(api_error(review_for(&admin, "", &[]).await).code, 400);
}

#[tokio::test]
async fn creating_a_token_review_needs_what_system_auth_delegator_grants() {
    let (server, admin) = server(NS);
    create_account(&admin, "proxy").await;
    let t = token(&admin, "proxy", &request(None, None)).await;
    let proxy = server.client_with_token(NS, Some(&t));
    let refused = api_error(review_for(&proxy, &t, &[]).await);
    assert_eq!(refused.code, 403, "{refused:?}");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "proxy-delegates"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "proxy", "namespace": NS}],
    }))
    .unwrap_or_else(|e| panic!("binding: {e}"));
    Api::<ClusterRoleBinding>::all(admin)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    assert_eq!(review(&proxy, &t, &[]).await.authenticated, Some(true));
}
