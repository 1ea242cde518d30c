//! Authentication as kube-apiserver does it: bearer tokens (the administrator's static token,
//! ServiceAccount tokens from TokenRequest), anonymous requests authorized like any other, 401
//! for a token the server does not accept; and TokenRequest's validation and binding.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{
    BoundObjectReference, SelfSubjectReview, TokenRequest, TokenRequestSpec,
};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::support::{api_error, raw, server};

pub(crate) const NS: &str = "auth";

/// The user `client`'s credentials authenticate as (`kubectl auth whoami`).
async fn whoami(client: &Client) -> Result<(String, Vec<String>), kube::Error> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
    Ok((
        user.username.unwrap_or_default(),
        user.groups.unwrap_or_default(),
    ))
}

pub(crate) async fn create_account(client: &Client, name: &str) -> ServiceAccount {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))
        .unwrap_or_else(|e| panic!("ServiceAccount: {e}"));
    api.create(&PostParams::default(), &sa)
        .await
        .unwrap_or_else(|e| panic!("create ServiceAccount {name}: {e}"))
}

pub(crate) async fn create_pod(client: &Client, name: &str, account: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap_or_else(|e| panic!("Pod: {e}"));
    api.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create Pod {name}: {e}"))
}

pub(crate) fn request(expiration: Option<i64>, pod: Option<&Pod>) -> TokenRequest {
    TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: expiration,
            bound_object_ref: pod.map(|p| BoundObjectReference {
                kind: Some("Pod".into()),
                api_version: Some("v1".into()),
                name: p.metadata.name.clone(),
                uid: p.metadata.uid.clone(),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    }
}

async fn token_for(
    client: &Client,
    account: &str,
    req: &TokenRequest,
) -> Result<TokenRequest, kube::Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    api.create_token_request(account, &PostParams::default(), req)
        .await
}

pub(crate) async fn token(client: &Client, account: &str, req: &TokenRequest) -> String {
    token_for(client, account, req)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {account}: {e}"))
        .status
        .and_then(|s| s.token)
        .unwrap_or_default()
}

#[tokio::test]
async fn the_admin_token_is_the_administrator_and_no_credentials_are_anonymous() {
    let (server, admin) = server(NS);
    assert_eq!(
        whoami(&admin).await.ok(),
        Some((
            "kubernetes-admin".to_owned(),
            vec!["system:masters".into(), "system:authenticated".into()]
        ))
    );
    let anonymous = server.client_with_token(NS, None);
    let pods: Api<Pod> = Api::namespaced(anonymous.clone(), NS);
    let refused = api_error(pods.list(&Default::default()).await);
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert!(
        refused.message.contains("User \"system:anonymous\""),
        "{}",
        refused.message
    );
    // public-info-viewer is bound to system:unauthenticated; discovery is not.
    assert_eq!(
        raw(&anonymous, "GET", "/version", &[], "").await.status,
        200
    );
    assert_eq!(raw(&anonymous, "GET", "/readyz", &[], "").await.status, 200);
    assert_eq!(raw(&anonymous, "GET", "/api", &[], "").await.status, 403);
}

#[tokio::test]
async fn an_unknown_token_is_401_with_kubernetes_status() {
    let (server, _) = server(NS);
    let bogus = server.client_with_token(NS, Some("not-a-token"));
    for path in ["/version", "/api/v1/namespaces/auth/pods"] {
        let answer = raw(&bogus, "GET", path, &[], "").await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(
            answer.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }
}

#[tokio::test]
async fn a_service_account_token_authenticates_as_the_account() {
    let (server, admin) = server(NS);
    create_account(&admin, "reader").await;
    let issued = token_for(&admin, "reader", &request(None, None))
        .await
        .unwrap_or_else(|e| panic!("TokenRequest: {e}"));
    let status = issued.status.clone().unwrap_or_default();
    let lifetime = issued.spec.and_then(|s| s.expiration_seconds);
    assert_eq!(lifetime, Some(3600), "the default");
    let expires = status
        .expiration_timestamp
        .map(|t| t.0.as_second())
        .unwrap_or_default();
    let now = server.clock().now();
    assert!(
        (now + 3595..=now + 3600).contains(&expires),
        "{expires} vs {now}"
    );
    let reader = server.client_with_token(NS, status.token.as_deref());
    assert_eq!(
        whoami(&reader).await.ok(),
        Some((
            "system:serviceaccount:auth:reader".to_owned(),
            vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:auth".into(),
                "system:authenticated".into()
            ]
        ))
    );
    // Authenticated, then authorized by RBAC: the account is bound to nothing.
    let pods: Api<Pod> = Api::namespaced(reader, NS);
    assert_eq!(api_error(pods.list(&Default::default()).await).code, 403);
}

#[tokio::test]
async fn a_token_is_refused_once_it_expires() {
    let (server, admin) = server(NS);
    create_account(&admin, "reader").await;
    let t = token(&admin, "reader", &request(Some(600), None)).await;
    let reader = server.client_with_token(NS, Some(&t));
    assert!(whoami(&reader).await.is_ok());
    server.clock().advance(Duration::from_secs(599));
    assert!(whoami(&reader).await.is_ok(), "valid until its expiry");
    server.clock().advance(Duration::from_secs(1));
    assert_eq!(api_error(whoami(&reader).await).code, 401);
}

#[tokio::test]
async fn a_token_is_refused_once_its_service_account_is_deleted_or_recreated() {
    let (server, admin) = server(NS);
    create_account(&admin, "reader").await;
    let t = token(&admin, "reader", &request(None, None)).await;
    let reader = server.client_with_token(NS, Some(&t));
    assert!(whoami(&reader).await.is_ok());
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NS);
    accounts
        .delete("reader", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(api_error(whoami(&reader).await).code, 401);
    create_account(&admin, "reader").await;
    assert_eq!(
        api_error(whoami(&reader).await).code,
        401,
        "a new account of the same name has a new uid"
    );
}

#[tokio::test]
async fn a_pod_bound_token_is_refused_once_its_pod_is_gone() {
    let (server, admin) = server(NS);
    create_account(&admin, "reader").await;
    let pod = create_pod(&admin, "p-0", "reader").await;
    let t = token(&admin, "reader", &request(None, Some(&pod))).await;
    let reader = server.client_with_token(NS, Some(&t));
    let reviews: Api<SelfSubjectReview> = Api::all(reader.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap_or_else(|e| panic!("SelfSubjectReview: {e}"));
    let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
    assert!(user.uid.is_some(), "the ServiceAccount's uid");
    let extra = user.extra.unwrap_or_default();
    assert_eq!(
        extra.get("authentication.kubernetes.io/pod-name"),
        Some(&vec!["p-0".to_owned()])
    );
    assert_eq!(
        extra.get("authentication.kubernetes.io/pod-uid"),
        pod.metadata.uid.map(|u| vec![u]).as_ref()
    );
    let credential = extra.get("authentication.kubernetes.io/credential-id");
    assert!(
        credential.is_some_and(|c| c.len() == 1 && c[0].starts_with("JTI=")),
        "{credential:?}"
    );
    assert_eq!(
        extra.get("authentication.kubernetes.io/node-name"),
        None,
        "the pod is on no node"
    );
    // No Node runs the pod, so deletion removes it at once.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    pods.delete("p-0", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(api_error(whoami(&reader).await).code, 401);
    create_pod(&admin, "p-0", "reader").await;
    assert_eq!(
        api_error(whoami(&reader).await).code,
        401,
        "a pod recreated under the name is another pod"
    );
}

#[tokio::test]
async fn token_requests_are_validated_as_kubernetes_validates_them() {
    let (server, admin) = server(NS);
    create_account(&admin, "reader").await;
    create_account(&admin, "other").await;
    let short = api_error(token_for(&admin, "reader", &request(Some(599), None)).await);
    assert_eq!((short.code, short.reason.as_str()), (422, "Invalid"));
    assert!(
        short.message.contains(
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
        ),
        "{}",
        short.message
    );
    let at_minimum = token_for(&admin, "reader", &request(Some(600), None)).await;
    assert_eq!(
        at_minimum.ok().and_then(|t| t.spec?.expiration_seconds),
        Some(600)
    );
    let missing = api_error(token_for(&admin, "nobody", &request(None, None)).await);
    assert_eq!(missing.code, 404);
    let pod = create_pod(&admin, "p-0", "other").await;
    let foreign = api_error(token_for(&admin, "reader", &request(None, Some(&pod))).await);
    assert_eq!(foreign.code, 400, "{}", foreign.message);
    let mut stale = request(None, Some(&pod));
    if let Some(r) = stale
        .spec
        .as_mut()
        .and_then(|s| s.bound_object_ref.as_mut())
    {
        r.uid = Some("an-old-uid".into());
    }
    assert_eq!(
        api_error(token_for(&admin, "other", &stale).await).code,
        409
    );
    // Asking for a token is itself authorized: `create` on serviceaccounts/token.
    let t = token(&admin, "reader", &request(None, None)).await;
    let reader = server.client_with_token(NS, Some(&t));
    assert_eq!(
        api_error(token_for(&reader, "other", &request(None, None)).await).code,
        403
    );
}
