//! Tributary's end-to-end test support: a local Kubernetes control plane that the real
//! `helm`, `kubectl`, `tributary-operator` and `tributary-broker` binaries use through a
//! kubeconfig, and that the operator's and brokers' in-process tests use through a
//! `kube::Client`. Test support only: no shipped binary depends on this crate.
//!
//! # The API server ([`apiserver::FakeApiServer`])
//!
//! One in-memory store behind one lock, served in-process ([`FakeApiServer::client`]) or over
//! HTTPS on 127.0.0.1 ([`FakeApiServer::serve`], [`kubeconfig::write`]). Modelled, with the real
//! server's status codes, reasons and message shapes:
//!
//! - **Discovery**: `/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`, and aggregated
//!   discovery (`apidiscovery.k8s.io/v2` and `v2beta1`); `/version`, `/healthz`, `/readyz`.
//! - **OpenAPI v3**: the index and per group-version documents with each resource's
//!   operations, the `fieldValidation` parameter and patch media types (so clients validate
//!   server-side), and custom resources' schemas as components.
//! - **OpenAPI v2** (`/openapi/v2`, JSON or protobuf): custom resources' schemas as
//!   kube-apiserver publishes them in v2, which kubectl validates `kind: List` items against.
//! - **Resources**: the built-in kinds the chart, operator, brokers, kubectl and helm use
//!   (namespaces, pods, services, configmaps, secrets, serviceaccounts, core and
//!   `events.k8s.io` events sharing one storage, endpoints, endpointslices, PVCs, PVs, nodes,
//!   deployments, replicasets, statefulsets, daemonsets, controllerrevisions, jobs, cronjobs,
//!   PDBs, RBAC roles and bindings, leases, storageclasses, networkpolicies (stored and
//!   validated, not enforced), CRDs), each decoded through its
//!   k8s-openapi type; custom resources registered by creating CustomResourceDefinitions
//!   (served under their group, scope, versions, subresources, short names, categories and
//!   printer columns once established); the prometheus-operator CRDs pre-installed.
//! - **Structural schemas** of custom resources: pruning of unknown fields, defaulting,
//!   OpenAPI value validation and `x-kubernetes-validations` CEL rules (kube-cel, transition
//!   rules on update), with CRD validation ratcheting; 422 Invalid listing every cause.
//! - **`fieldValidation`** Strict (400), Warn (Warning headers, the default) and Ignore, for
//!   custom resources and built-ins alike.
//! - **Verbs**: get, list (label selectors with `in`/`notin`/exists, field selectors per kind,
//!   `limit`/`continue` pagination consistent at the first page's resourceVersion,
//!   `resourceVersionMatch=Exact`), create (`generateName`), update, patch (JSON merge, JSON
//!   patch, strategic merge with the built-ins' merge keys and directives), server-side apply
//!   (managedFields, field ownership per manager and subresource, 409 conflicts unless forced,
//!   removal of fields a manager stops applying), delete (preconditions, propagation policy),
//!   deletecollection, `dryRun`.
//! - **Subresources**: status (only it writes `status`), scale (`autoscaling/v1` Scale),
//!   `pods/binding` (assigns a pod to a node once) and `pods/log` (read from the kubelet
//!   stand-in, as the real server proxies the kubelet; `tailLines`, `previous`, no `follow`).
//! - **Concurrency and change**: resourceVersion preconditions (409 Conflict),
//!   `metadata.generation` bumped on spec changes (observedGeneration is left to controllers),
//!   managedFields timestamps, watches from a resourceVersion with bookmarks,
//!   `sendInitialEvents`, selector transitions, and 410 Gone once the bounded history
//!   ([`apiserver::Config::watch_history`]) is compacted.
//! - **Lifecycle**: finalizers and `deletionTimestamp` (no new finalizers while deleting);
//!   the garbage collector (background, foreground with `blockOwnerDeletion`, orphan,
//!   dangling references); namespace deletion removing its contents; NamespaceLifecycle
//!   admission; a `default` ServiceAccount per namespace and ServiceAccount admission (a pod
//!   naming no account runs as `default`; one whose account is missing is refused, 403);
//!   ClusterRole aggregation (the aggregated rules stored, as the controller keeps them);
//!   CRD establishment and cleanup;
//!   graceful deletion of pods bound to an existing Node (the kubelet finishes it).
//! - **RBAC, enforced for whom a request acts as** ([`apiserver::rbac`]): the built-in
//!   ClusterRoles and bindings of a fresh cluster (cluster-admin for `system:masters`, admin,
//!   edit and view with their `aggregate-to-*` aggregation, discovery, basic-user,
//!   auth-delegator, public-info-viewer) are installed at start; every request is authorized from the stored
//!   objects as Kubernetes' RBAC authorizer decides (ClusterRole aggregation, subresources,
//!   `resourceNames`, non-resource URLs, User, Group and ServiceAccount subjects) and refused
//!   with its 403; Role, ClusterRole and binding writes are checked for escalation (`escalate`,
//!   `bind`); the access reviews (`kubectl auth can-i`, `auth whoami`) are served.
//! - **Authentication** ([`apiserver::identity`]): bearer tokens, the administrator's (random
//!   per server, [`FakeApiServer::admin_token`]: `system:masters`) or ServiceAccount tokens
//!   from TokenRequest (`kubectl create token`; bound to the ServiceAccount and optionally a
//!   pod, refused once either is gone or the token expired); `system:anonymous` without
//!   credentials, 401 for a token the server does not accept; TokenReview answers whom a
//!   token is for (and for which audiences); impersonation authorized by the
//!   `impersonate` verb. Served over HTTPS with a CA of its own (client-go sends credentials
//!   only over TLS). The kubelet projects each pod's token and rotates it.
//! - **Pod Security admission** ([`apiserver::podsecurity`]): namespaces labelled
//!   `pod-security.kubernetes.io/enforce|warn|audit` (and `-version`: `latest` or `v1.x`) at
//!   `privileged`, `baseline` or `restricted` are judged as Kubernetes' PodSecurity plugin
//!   judges them, each control of the Pod Security Standards worded as Kubernetes words it
//!   (containers, initContainers and ephemeralContainers alike; every control at `latest`
//!   whatever the version label says). Unlabelled namespaces are privileged; an invalid
//!   `enforce` level fails closed (restricted), invalid `warn`/`audit` levels fail open. Pods
//!   created directly that violate `enforce` are refused (403 `violates PodSecurity ...`);
//!   `warn` violations, and those of a Deployment's, ReplicaSet's, StatefulSet's, DaemonSet's,
//!   Job's or CronJob's pod template (checked at the `warn` level, which defaults to the
//!   `enforce` one; workloads are never refused), come back as `Warning` headers; labelling a
//!   namespace with a new `enforce` level warns about its existing violating pods. `audit`
//!   violations are logged (tracing, with the `pod-security.kubernetes.io/audit-violations`
//!   key) since the server keeps no audit log. Pod updates and exemptions are not evaluated.
//!   The ReplicaSet and StatefulSet controllers record a `FailedCreate` Warning Event when a
//!   pod is refused, and the ReplicaSet its `ReplicaFailure` condition.
//! - **Output**: Tables for `kubectl get` (CRD printer columns, common built-in columns,
//!   watch rows), PartialObjectMetadata; protobuf request bodies for the kinds client-go's
//!   typed clients send that way here (Secret, ConfigMap, Namespace, DeleteOptions, the RBAC
//!   kinds and reviews, TokenRequest, and the Deployments, Jobs, CronJobs, Services and
//!   PodDisruptionBudgets of `kubectl create`).
//!
//! # The rest of a cluster
//!
//! - [`controllers`]: the workload controllers of kube-controller-manager as API clients
//!   (Deployments through ReplicaSets, ReplicaSets, StatefulSets with ControllerRevisions and
//!   claims, EndpointSlices), a host-path volume provisioner with a default StorageClass, a
//!   scheduler binding pods to the node, and the node's Service networking
//!   ([`controllers::network`]: kube-proxy's node ports on the node IP and a bare-metal load
//!   balancer's ingress IPs from a loopback pool, forwarding to ready endpoints).
//! - [`kubelet`]: a stand-in for one node's kubelet that runs pods as local processes of the
//!   binaries their images map to, each on its own loopback IP, with volumes as host
//!   directories (see its documentation for what it rewrites and what it does not model).
//! - [`local::LocalCluster`]: all of it together, served with a kubeconfig; [`up`] adds the
//!   chart and a KafkaCluster (`tributary-e2e up`).
//! - [`prometheus`]: targets and scrape jobs as Prometheus' Kubernetes discovery and
//!   prometheus-operator make them, for the real Prometheus.
//!
//! # Client histories
//!
//! [`history`]: a Jepsen-style checker over what clients saw (every send attempt's outcome
//! and a read-back of the topic: lost writes, duplicates, non-monotonic offsets, reads of
//! values never acknowledged), and a Java-client driver that records such histories while a
//! test kills brokers; [`probe`], a raw acks=all Produce to a chosen broker, for the error
//! codes real clients retry without saying.
//!
//! # Not modelled
//!
//! Requests relying on these behave differently from a real cluster: authenticators other
//! than bearer tokens (client certificates, OIDC, webhooks), signed JWT ServiceAccount tokens
//! (tokens are opaque, and valid only at this server) and TokenReview;
//! admission webhooks, ValidatingAdmissionPolicies and admission plugins other than
//! NamespaceLifecycle and PodSecurity (no ServiceAccount, LimitRange or quota admission; the
//! pvc-protection finalizer is added by the volume controller instead);
//! built-in kinds' defaulting and field validation beyond types and unknown fields (a
//! Deployment without containers is accepted); immutable built-in fields; conversion webhooks
//! and any CRD version conversion beyond `apiVersion`; CRD name conflicts, `selectableFields`
//! and the CEL cost budget; strategic merge patch's `retainKeys` strategy semantics beyond the
//! directive and `$setElementOrder` interleaving; server-side apply across versions and for
//! `events.k8s.io` field renames, and maps recorded as members (`.`) in managedFields;
//! duplicate JSON keys; built-in kinds' OpenAPI
//! schemas (kubectl falls back to its compiled-in types; `kubectl explain` works for custom
//! resources only); protobuf and CBOR responses (answers are JSON); the controllers not listed
//! above (DaemonSets, Jobs, CronJobs, HorizontalPodAutoscalers, PodDisruptionBudget status and
//! the eviction API, node lifecycle and taints, service accounts' tokens, core v1 Endpoints,
//! ReplicaSet adoption of orphaned pods, the Deployment collision count); the scheduler's
//! predicates and priorities (affinity, topology spread, taints, resources: one node takes
//! every pod whose nodeSelector it matches); Service networking beyond node ports and load
//! balancers (cluster IPs are allocated but nothing routes them, `externalIPs`, UDP and SCTP
//! ports, session affinity and traffic policies are ignored; there is no cluster DNS: clients
//! use pod IPs); Event TTLs; API priority and fairness; `exec`, `attach`, `port-forward`,
//! `proxy`; TLS client certificates and HTTP/2 (the server is HTTPS/1.1 on 127.0.0.1).

pub mod apiserver;
pub mod clients;
pub mod clock;
pub mod controllers;
pub mod history;
pub mod kubeconfig;
pub mod kubelet;
pub mod local;
pub mod poll;
pub mod probe;
pub mod prometheus;
pub mod tools;
pub mod up;

use std::path::PathBuf;

pub use apiserver::FakeApiServer;
pub use poll::wait_until;

/// Failures of the control plane's own plumbing (the API's answers are [`apiserver::ApiError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}; pick another --port")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The kubelet stand-in could not start.
    #[error(transparent)]
    Kubelet(#[from] kubelet::KubeletError),
    /// A tool (helm, kubectl, cargo) could not be started.
    #[error("cannot run {program}: {source}; run `make tools` (.ci/install-tools.sh) first")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// A tool failed.
    #[error("`{command}` failed:\n{output}")]
    Tool { command: String, output: String },
    /// Something did not happen in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another `up` runs on the state directory (its lock is held).
    #[error(
        "another `tributary-e2e up` ({holder}) is running on {}; stop it with \
         `cargo run -p tributary-e2e -- down --state-dir {}`, pass --replace to stop it first, \
         or give this one another --state-dir",
        state_dir.display(),
        state_dir.display()
    )]
    StateDirBusy { state_dir: PathBuf, holder: String },
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result of this crate's fallible plumbing.
pub type Result<T, E = Error> = std::result::Result<T, E>;
