//! Events the controllers record, as the real ones do through their event recorders: a
//! `Warning` `FailedCreate` when the API server refuses a pod (Pod Security admission, quota).

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource};

use super::{logged, meta};

/// The API server's message of a refused request (its Status message when it sent one).
pub(crate) fn refusal(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Records a `Warning` event `reason` about `owner` from `component`; a repeat of the same
/// event bumps its count and last timestamp instead, as the event correlator does.
pub(crate) async fn warn<K>(
    client: &Client,
    owner: &K,
    component: &str,
    reason: &str,
    message: String,
) where
    K: Resource<DynamicType = ()>,
{
    let m = owner.meta();
    let ns = meta::namespace(m);
    let now = Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", meta::name(m))),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message),
        type_: Some("Warning".to_owned()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let same = |e: &Event| {
        e.involved_object.uid == event.involved_object.uid
            && e.reason == event.reason
            && e.message == event.message
    };
    let existing = logged("list events", api.list(&ListParams::default()).await)
        .and_then(|l| l.items.into_iter().find(same));
    if let Some(mut repeat) = existing {
        repeat.count = Some(repeat.count.unwrap_or(1) + 1);
        repeat.last_timestamp = Some(Time(now));
        logged(
            &format!("bump event {reason} of {}", meta::name(m)),
            api.replace(
                meta::name(&repeat.metadata),
                &PostParams::default(),
                &repeat,
            )
            .await,
        );
        return;
    }
    logged(
        &format!("record event {reason} of {}", meta::name(m)),
        api.create(&PostParams::default(), &event).await,
    );
}
