//! Watches: resumption from a resourceVersion, bookmarks, streaming lists, selector
//! transitions, 410 Gone after compaction, and kube-runtime's watcher on top.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::Api;
use serde_json::json;
use tributary_e2e::apiserver::Config;
use tributary_e2e::FakeApiServer;

use crate::support::{wait_until, DEADLINE};

const NS: &str = "streaming";

fn server_with(config: Config) -> (FakeApiServer, Api<ConfigMap>) {
    let server = FakeApiServer::with_config(config);
    server.create_namespace(NS);
    let api = Api::namespaced(server.client(NS), NS);
    (server, api)
}

async fn put(api: &Api<ConfigMap>, name: &str, value: &str) -> String {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}});
    let applied = api
        .patch(name, &PatchParams::apply("test"), &Patch::Apply(cm))
        .await
        .expect("apply");
    applied.metadata.resource_version.unwrap_or_default()
}

fn describe(e: &WatchEvent<ConfigMap>) -> String {
    let name = |c: &ConfigMap| c.metadata.name.clone().unwrap_or_default();
    match e {
        WatchEvent::Added(c) => format!("ADDED {}", name(c)),
        WatchEvent::Modified(c) => format!("MODIFIED {}", name(c)),
        WatchEvent::Deleted(c) => format!("DELETED {}", name(c)),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(s) => format!("ERROR {}", s.code),
    }
}

async fn next(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> String {
    match tokio::time::timeout(DEADLINE, stream.try_next()).await {
        Ok(Ok(Some(e))) => describe(&e),
        other => panic!("no watch event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_resource_version_replays_only_later_changes() {
    let (_server, api) = server_with(Config::default());
    put(&api, "a", "1").await;
    let rv = put(&api, "b", "1").await;
    put(&api, "a", "2").await;
    put(&api, "c", "1").await;
    let mut events = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .expect("watch")
        .boxed();
    assert_eq!(next(&mut events).await, "MODIFIED a");
    assert_eq!(next(&mut events).await, "ADDED c");
    api.delete("b", &Default::default()).await.expect("delete");
    assert_eq!(next(&mut events).await, "DELETED b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_without_a_resource_version_start_with_the_current_state() {
    let (_server, api) = server_with(Config::default());
    put(&api, "a", "1").await;
    let mut events = api
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .expect("watch")
        .boxed();
    assert_eq!(next(&mut events).await, "ADDED a");
    put(&api, "a", "2").await;
    assert_eq!(next(&mut events).await, "MODIFIED a");
    // Streaming lists end the initial state with an annotated bookmark.
    let mut streaming = api
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .expect("watch")
        .boxed();
    assert_eq!(next(&mut streaming).await, "ADDED a");
    match tokio::time::timeout(DEADLINE, streaming.try_next()).await {
        Ok(Ok(Some(WatchEvent::Bookmark(b)))) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_that_allow_bookmarks_get_them_with_the_latest_resource_version() {
    let (_server, api) = server_with(Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    });
    let rv = put(&api, "a", "1").await;
    let mut events = api
        .watch(&WatchParams::default().labels("nothing=matches"), &rv)
        .await
        .expect("watch")
        .boxed();
    let later = put(&api, "b", "1").await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let e = next(&mut events).await;
        if e == format!("BOOKMARK {later}") {
            break;
        }
        assert!(e.starts_with("BOOKMARK"), "only bookmarks match: {e}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no bookmark at {later}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_entering_and_leaving_a_label_selector_are_added_and_deleted() {
    let (_server, api) = server_with(Config::default());
    let rv = put(&api, "a", "1").await;
    let mut events = api
        .watch(
            &WatchParams::default().labels("team=x").disable_bookmarks(),
            &rv,
        )
        .await
        .expect("watch")
        .boxed();
    let label = |v: serde_json::Value| json!({"metadata": {"labels": {"team": v}}});
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(label(json!("x"))),
    )
    .await
    .expect("label");
    assert_eq!(next(&mut events).await, "ADDED a");
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(label(json!("y"))),
    )
    .await
    .expect("relabel");
    assert_eq!(next(&mut events).await, "DELETED a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_compacted_resource_version_is_gone() {
    let (_server, api) = server_with(Config {
        watch_history: 3,
        ..Config::default()
    });
    let old = put(&api, "a", "1").await;
    for i in 0..5 {
        put(&api, "a", &format!("{i}")).await;
    }
    let mut events = api
        .watch(&WatchParams::default(), &old)
        .await
        .expect("watch")
        .boxed();
    assert_eq!(next(&mut events).await, "ERROR 410");
    // A recent resourceVersion still resumes.
    let recent = put(&api, "a", "x").await;
    let mut events = api
        .watch(&WatchParams::default().disable_bookmarks(), &recent)
        .await
        .expect("watch")
        .boxed();
    put(&api, "a", "y").await;
    assert_eq!(next(&mut events).await, "MODIFIED a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_runtime_watchers_see_every_change_across_compactions() {
    let (server, api) = server_with(Config {
        watch_history: 2,
        ..Config::default()
    });
    let cm = |n: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": n}})).expect("cm")
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let recorder = seen.clone();
    let stream = watcher(api.clone(), watcher::Config::default().timeout(1));
    let task = tokio::spawn(async move {
        let mut s = stream.boxed();
        // A watch that falls behind a compaction yields an error (410 Gone) and relists on the
        // next poll: the stream goes on, and so does the recorder.
        while let Some(event) = s.next().await {
            if let Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) = event {
                if let Ok(mut seen) = recorder.lock() {
                    seen.insert(c.metadata.name.unwrap_or_default());
                }
            }
        }
    });
    for i in 0..20 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}")))
            .await
            .expect("create");
        if i % 5 == 0 {
            server.compact_history();
        }
    }
    wait_until("the watcher to have seen all twenty", || async {
        (seen.lock().map(|s| s.len()).unwrap_or(0) == 20).then_some(())
    })
    .await;
    task.abort();
}
