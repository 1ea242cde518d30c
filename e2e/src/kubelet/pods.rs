//! One pod on the node: its volumes and environment prepared (retried until the objects it
//! needs exist), each container run as a process (restarted as `restartPolicy` says, with
//! back-off), probed, and reported in the pod's status; on deletion, SIGTERM to each process
//! group, SIGKILL after the grace period, the pod's directory removed, and the Pod object
//! deleted (grace period 0, uid precondition), as the kubelet finishes a graceful deletion.

use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use rustix::process::Signal;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::env::{self, Sources};
use super::images::ImageTable;
use super::network::PodNetwork;
use super::probes::Prober;
use super::process::{self, Groups, ProcessSpec};
use super::status::{now, ContainerView, State, View};
use super::token::{self, Lifetime, Projection};
use super::volumes::{self, Objects};
use crate::kubeconfig::Credentials;

/// Everything the pods of one kubelet share.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) node_ip: Ipv4Addr,
    /// The API server, for the kubeconfig every pod gets.
    pub(crate) api: crate::kubeconfig::Endpoint,
    /// The clock pods' tokens are rotated by (the API server's).
    pub(crate) clock: crate::clock::Clock,
    pub(crate) images: ImageTable,
    pub(crate) pods_dir: PathBuf,
    pub(crate) logs_dir: PathBuf,
    pub(crate) network: Mutex<PodNetwork>,
    pub(crate) groups: Groups,
    /// PATH of the processes (the host's).
    pub(crate) path: String,
    /// Restart back-off cap.
    pub(crate) max_restart_period: Duration,
}

/// What a pod worker is told.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Command {
    Run,
    /// Stop every container (SIGTERM, SIGKILL after `grace`), then delete the Pod object if
    /// `delete` (a graceful deletion) or leave it (the node shuts down, or it is gone).
    Terminate {
        grace: Duration,
        delete: bool,
    },
}

/// The kubelet's default restart back-off cap (`crashLoopBackOff.maxContainerRestartPeriod`).
pub const MAX_CONTAINER_RESTART_PERIOD: Duration = Duration::from_secs(300);
/// How long a container must run for its back-off to reset.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// First back-off after the immediate first restart (the cap, when that is lower).
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// Where in the pod's directory its ServiceAccount token is projected (as the kubelet's
/// `volumes/kubernetes.io~projected/kube-api-access-*`).
const TOKEN_VOLUME: &str = "volumes/kubernetes.io~projected/kube-api-access";
/// How often a pod whose volumes or image are not ready is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// How often a running pod's configMap and secret volumes are brought up to date (kubelet's
/// sync period is about a minute; the local node is quicker so scenarios stay short).
const VOLUME_SYNC: Duration = Duration::from_secs(2);

/// A pod's identity and shared state.
pub(crate) struct PodShared {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) dir: PathBuf,
    pub(crate) logs: PathBuf,
    view: Mutex<View>,
    /// Serializes status writes and remembers the last one.
    written: tokio::sync::Mutex<Option<k8s_openapi::api::core::v1::PodStatus>>,
    /// The pod as it was when the kubelet took it (pods' specs do not change).
    pub(crate) pod: Pod,
}

impl PodShared {
    fn with<T>(&self, f: impl FnOnce(&mut View) -> T) -> T {
        f(&mut self.view.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn container<T>(&self, name: &str, f: impl FnOnce(&mut ContainerView) -> T) -> Option<T> {
        self.with(|v| v.containers.iter_mut().find(|c| c.name == name).map(f))
    }

    /// The process of container `name`, while it runs.
    pub(crate) fn pid(&self, container: &str) -> Option<u32> {
        self.container(container, |c| c.pid).flatten()
    }

    /// Writes the pod's status if it changed.
    async fn publish(&self, ctx: &Ctx) {
        let mut written = self.written.lock().await;
        let status = self.with(|v| v.status(&self.pod, &ctx.node_ip.to_string()));
        if written.as_ref() == Some(&status) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &self.namespace);
        let patch = json!({"status": status});
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => *written = Some(status),
            Err(e) => tracing::debug!(pod = %self.name, "status: {e}"),
        }
    }
}

/// A running pod worker.
pub(crate) struct Worker {
    pub(crate) shared: Arc<PodShared>,
    command: watch::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Starts running `pod`.
    pub(crate) fn start(ctx: Arc<Ctx>, pod: Pod) -> Worker {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let uid = meta.uid.clone().unwrap_or_default();
        let slug = format!("{namespace}_{name}_{uid}");
        let containers = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| ContainerView::new(&c.name, c.image.as_deref().unwrap_or_default()))
            .collect();
        let shared = Arc::new(PodShared {
            dir: ctx.pods_dir.join(&slug),
            logs: ctx.logs_dir.join(&slug),
            namespace,
            name,
            uid,
            view: Mutex::new(View {
                containers,
                start_time: Some(now()),
                ..View::default()
            }),
            written: tokio::sync::Mutex::new(None),
            pod,
        });
        let (command, rx) = watch::channel(Command::Run);
        let task = tokio::spawn(run(ctx, shared.clone(), rx));
        Worker {
            shared,
            command,
            task,
        }
    }

    /// Asks the pod to stop (a shorter grace period than one already asked for wins).
    pub(crate) fn terminate(&self, grace: Duration, delete: bool) {
        self.command.send_if_modified(|c| match *c {
            Command::Terminate {
                grace: old,
                delete: was,
            } if old <= grace && (was || !delete) => false,
            _ => {
                *c = Command::Terminate { grace, delete };
                true
            }
        });
    }

    /// Whether the worker is done (its pod stopped and cleaned up).
    pub(crate) fn finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the worker is done.
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// What a container needs to start, resolved once per pod.
#[derive(Clone)]
struct Prepared {
    container: Container,
    spec: ProcessSpec,
    restart: String,
    grace: Duration,
    startup: Option<Prober>,
    liveness: Option<Prober>,
    readiness: Option<Prober>,
}

/// Why containers cannot start yet: (waiting reason, message).
type NotReady = (&'static str, String);

async fn fetch(ctx: &Ctx, pod: &Pod, ns: &str) -> Objects {
    let mut objects = Objects::default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    let mut claims = Vec::new();
    for v in spec.volumes.iter().flatten() {
        config_maps.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        claims.extend(
            v.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.clone()),
        );
        for s in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            config_maps.extend(s.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(s.secret.as_ref().map(|c| c.name.clone()));
        }
    }
    for c in &spec.containers {
        for e in c.env.iter().flatten() {
            let from = e.value_from.as_ref();
            config_maps.extend(
                from.and_then(|f| f.config_map_key_ref.as_ref())
                    .map(|r| r.name.clone()),
            );
            secrets.extend(
                from.and_then(|f| f.secret_key_ref.as_ref())
                    .map(|r| r.name.clone()),
            );
        }
        for f in c.env_from.iter().flatten() {
            config_maps.extend(f.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(f.secret_ref.as_ref().map(|r| r.name.clone()));
        }
    }
    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    for name in config_maps {
        if let Ok(Some(cm)) = cm_api.get_opt(&name).await {
            objects.config_maps.insert(name, cm);
        }
    }
    let secret_api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    for name in secrets {
        if let Ok(Some(s)) = secret_api.get_opt(&name).await {
            objects.secrets.insert(name, s);
        }
    }
    let claim_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let pv_api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    for name in claims {
        if let Ok(Some(claim)) = claim_api.get_opt(&name).await {
            if let Some(pv_name) = claim.spec.as_ref().and_then(|s| s.volume_name.clone()) {
                if let Ok(Some(pv)) = pv_api.get_opt(&pv_name).await {
                    objects.volumes.insert(pv_name, pv);
                }
            }
            objects.claims.insert(name, claim);
        }
    }
    objects
}

/// What a pod needs before its containers start: each container's process, and the token
/// projected for it (None when it does not automount one).
struct Ready {
    containers: Vec<Prepared>,
    token: Option<(Projection, Lifetime)>,
}

/// Projects the pod's ServiceAccount token into `dir` if it automounts one (the pod's, else
/// its ServiceAccount's `automountServiceAccountToken`).
async fn project_token(
    ctx: &Ctx,
    shared: &PodShared,
    dir: PathBuf,
) -> Result<Option<(Projection, Lifetime)>, NotReady> {
    let account = token::account_name(&shared.pod).to_owned();
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &shared.namespace);
    let stored = accounts.get_opt(&account).await.ok().flatten();
    if !token::automount(&shared.pod, stored.as_ref()) {
        return Ok(None);
    }
    let projection = Projection {
        client: ctx.client.clone(),
        namespace: shared.namespace.clone(),
        pod: shared.name.clone(),
        pod_uid: shared.uid.clone(),
        account,
        dir,
        ca_pem: ctx.api.ca_pem.clone(),
    };
    match projection.project().await {
        Ok(lifetime) => Ok(Some((projection, lifetime))),
        Err(e) => Err(("ContainerCreating", e.to_string())),
    }
}

/// Sets up volumes and resolves every container's process.
async fn prepare(ctx: &Ctx, shared: &PodShared, pod_ip: &str) -> Result<Ready, NotReady> {
    let pod = &shared.pod;
    let objects = fetch(ctx, pod, &shared.namespace).await;
    let creating = |e: volumes::VolumeError| ("ContainerCreating", e.to_string());
    let dirs = volumes::host_dirs(pod, &shared.dir.join("volumes"), &objects).map_err(creating)?;
    let token_dir = shared.dir.join(TOKEN_VOLUME);
    let token = project_token(ctx, shared, token_dir.clone()).await?;
    let mut mounts = volumes::mounts(pod, &dirs);
    if token.is_some() {
        mounts = mounts.with(token::MOUNT_PATH, token_dir);
    }
    let host_ip = ctx.node_ip.to_string();
    let src = Sources {
        pod,
        pod_ip,
        host_ip: &host_ip,
        config_maps: &objects.config_maps,
        secrets: &objects.secrets,
    };
    volumes::materialize(pod, &dirs, &mounts, &objects, &src).map_err(creating)?;
    let io = |e: std::io::Error| ("ContainerCreating", e.to_string());
    let home = shared.dir.join("home");
    std::fs::create_dir_all(&home).map_err(io)?;
    let kubeconfig = shared.dir.join("kubeconfig");
    let credentials = match &token {
        Some((projection, _)) => Credentials::TokenFile(projection.token_file()),
        None => Credentials::Anonymous,
    };
    crate::kubeconfig::write(&kubeconfig, &ctx.api, &shared.namespace, &credentials)
        .map_err(|e| ("ContainerCreating", e.to_string()))?;
    let spec = pod.spec.clone().unwrap_or_default();
    let restart = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".to_owned());
    let grace = Duration::from_secs(
        spec.termination_grace_period_seconds
            .and_then(|g| u64::try_from(g).ok())
            .unwrap_or(30),
    );
    let hostname = spec.hostname.clone().unwrap_or_else(|| shared.name.clone());
    let mut prepared = Vec::new();
    for c in &spec.containers {
        let image_ref = c.image.clone().unwrap_or_default();
        let image = ctx
            .images
            .resolve(&image_ref)
            .map_err(|e| ("ErrImagePull", e.to_string()))?;
        let defined = env::container_env(&src, c)
            .map_err(|e| ("CreateContainerConfigError", e.to_string()))?;
        let lookup = |name: &str| {
            defined
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let expand_all = |list: &Option<Vec<String>>| -> Option<Vec<String>> {
            list.as_ref().map(|l| {
                l.iter()
                    .map(|s| mounts.rewrite(&env::expand(s, lookup)))
                    .collect()
            })
        };
        let (program, args) = image
            .argv(
                expand_all(&c.command).as_deref(),
                expand_all(&c.args).as_deref(),
            )
            .map_err(|e| ("RunContainerError", e.to_string()))?;
        let mut process_env = vec![
            ("PATH".to_owned(), ctx.path.clone()),
            ("HOSTNAME".to_owned(), hostname.clone()),
            ("HOME".to_owned(), home.to_string_lossy().into_owned()),
            (
                "KUBECONFIG".to_owned(),
                kubeconfig.to_string_lossy().into_owned(),
            ),
        ];
        if let Some(tmp) = mounts.tmp() {
            process_env.push(("TMPDIR".to_owned(), tmp.to_string_lossy().into_owned()));
        }
        process_env.extend(passed_through(std::env::vars()));
        process_env.extend(defined.iter().map(|(k, v)| (k.clone(), mounts.rewrite(v))));
        let cwd = match c.working_dir.as_deref() {
            Some(w) => PathBuf::from(mounts.rewrite(w)),
            None => shared.dir.clone(),
        };
        std::fs::create_dir_all(&cwd).map_err(io)?;
        prepared.push(Prepared {
            container: c.clone(),
            spec: ProcessSpec {
                program,
                args,
                env: process_env,
                cwd,
                log: shared.logs.join(format!("{}.log", c.name)),
            },
            restart: restart.clone(),
            grace,
            startup: c.startup_probe.as_ref().map(|p| Prober::new(p, c, pod_ip)),
            liveness: c.liveness_probe.as_ref().map(|p| Prober::new(p, c, pod_ip)),
            readiness: c
                .readiness_probe
                .as_ref()
                .map(|p| Prober::new(p, c, pod_ip)),
        });
    }
    Ok(Ready {
        containers: prepared,
        token,
    })
}

/// The pod's life.
async fn run(ctx: Arc<Ctx>, shared: Arc<PodShared>, mut command: watch::Receiver<Command>) {
    let ip = ctx
        .network
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allocate();
    let Some(ip) = ip else {
        shared.with(|v| {
            for c in &mut v.containers {
                c.state = State::Waiting {
                    reason: "ContainerCreating".to_owned(),
                    message: "no pod IP left on the node".to_owned(),
                };
            }
        });
        shared.publish(&ctx).await;
        finish(&ctx, &shared, &mut command, None).await;
        return;
    };
    let pod_ip = ip.to_string();
    shared.with(|v| v.pod_ip = Some(pod_ip.clone()));
    shared.publish(&ctx).await;
    let prepared = loop {
        if *command.borrow() != Command::Run {
            break None;
        }
        match prepare(&ctx, &shared, &pod_ip).await {
            Ok(p) => break Some(p),
            Err((reason, message)) => {
                shared.with(|v| {
                    for c in &mut v.containers {
                        c.state = State::Waiting {
                            reason: reason.to_owned(),
                            message: message.clone(),
                        };
                    }
                });
                shared.publish(&ctx).await;
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    _ = command.changed() => {}
                }
            }
        }
    };
    if let Some(ready) = prepared {
        shared.with(|v| v.prepared = true);
        let rotation = ready.token.map(|(projection, lifetime)| {
            tokio::spawn(projection.keep_fresh(ctx.clock.clone(), lifetime))
        });
        let mut containers = JoinSet::new();
        for p in ready.containers {
            containers.spawn(run_container(
                ctx.clone(),
                shared.clone(),
                p,
                command.clone(),
            ));
        }
        let refresher = tokio::spawn(refresh_volumes(ctx.clone(), shared.clone(), pod_ip));
        while containers.join_next().await.is_some() {}
        refresher.abort();
        if let Some(rotation) = rotation {
            rotation.abort();
        }
        shared.publish(&ctx).await;
    }
    finish(&ctx, &shared, &mut command, Some(ip)).await;
}

/// Keeps a running pod's configMap and secret volumes up to date, as kubelet does
/// ([`volumes::refresh`]), until aborted.
async fn refresh_volumes(ctx: Arc<Ctx>, shared: Arc<PodShared>, pod_ip: String) {
    let host_ip = ctx.node_ip.to_string();
    loop {
        tokio::time::sleep(VOLUME_SYNC).await;
        let pod = &shared.pod;
        let objects = fetch(&ctx, pod, &shared.namespace).await;
        let Ok(dirs) = volumes::host_dirs(pod, &shared.dir.join("volumes"), &objects) else {
            continue;
        };
        let mounts = volumes::mounts(pod, &dirs);
        let src = Sources {
            pod,
            pod_ip: &pod_ip,
            host_ip: &host_ip,
            config_maps: &objects.config_maps,
            secrets: &objects.secrets,
        };
        match volumes::refresh(pod, &dirs, &mounts, &objects, &src) {
            Ok(0) => {}
            Ok(files) => {
                tracing::debug!(pod = %shared.name, files, "volume files brought up to date")
            }
            Err(e) => {
                tracing::warn!(pod = %shared.name, "cannot bring volume files up to date: {e}")
            }
        }
    }
}

/// Waits for the pod to be terminated (a finished pod stays until deleted), then cleans up.
async fn finish(
    ctx: &Ctx,
    shared: &PodShared,
    command: &mut watch::Receiver<Command>,
    ip: Option<Ipv4Addr>,
) {
    let delete = loop {
        if let Command::Terminate { delete, .. } = *command.borrow() {
            break delete;
        }
        if command.changed().await.is_err() {
            break false;
        }
    };
    if let Some(ip) = ip {
        ctx.network
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(ip);
    }
    if let Err(e) = std::fs::remove_dir_all(&shared.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", shared.dir.display());
        }
    }
    if delete {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &shared.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(shared.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&shared.name, &params).await {
            tracing::debug!(pod = %shared.name, "final delete: {e}");
        }
    }
}

/// What ended a container's run.
enum Ended {
    Exited(std::process::ExitStatus),
    /// Stopped by the kubelet (deletion or liveness); no restart when `stop`.
    Killed {
        status: Option<std::process::ExitStatus>,
        stop: bool,
    },
}

/// Probe outcomes a container's run reacts to.
enum ProbeEvent {
    Started,
    Ready(bool),
    Unhealthy(String),
}

/// Runs `p` every period after its initial delay until it fails `failureThreshold` times in a
/// row (`Some(why)`) or, when `until_success`, until it succeeds (`None`).
async fn until_failed(p: &Prober, until_success: bool) -> Option<String> {
    tokio::time::sleep(p.initial_delay).await;
    let mut failures = 0;
    loop {
        match p.check().await {
            Ok(()) if until_success => return None,
            Ok(()) => failures = 0,
            Err(why) => {
                failures += 1;
                if failures >= p.failure_threshold {
                    return Some(why);
                }
            }
        }
        tokio::time::sleep(p.period).await;
    }
}

/// Runs the probes of one container instance, reporting transitions.
async fn probe(p: Prepared, tx: tokio::sync::mpsc::Sender<ProbeEvent>) {
    let mut started = p.startup.is_none();
    if started {
        let _ = tx.send(ProbeEvent::Started).await;
    }
    if let Some(startup) = &p.startup {
        if let Some(why) = until_failed(startup, true).await {
            let _ = tx
                .send(ProbeEvent::Unhealthy(format!(
                    "Startup probe failed: {why}"
                )))
                .await;
            return;
        }
        started = true;
        let _ = tx.send(ProbeEvent::Started).await;
    }
    debug_assert!(started);
    let readiness = async {
        let Some(r) = &p.readiness else {
            let _ = tx.send(ProbeEvent::Ready(true)).await;
            return;
        };
        tokio::time::sleep(r.initial_delay).await;
        let (mut ok, mut bad, mut ready) = (0, 0, false);
        loop {
            match r.check().await {
                Ok(()) => {
                    ok += 1;
                    bad = 0;
                }
                Err(_) => {
                    bad += 1;
                    ok = 0;
                }
            }
            if !ready && ok >= r.success_threshold {
                ready = true;
                let _ = tx.send(ProbeEvent::Ready(true)).await;
            } else if ready && bad >= r.failure_threshold {
                ready = false;
                let _ = tx.send(ProbeEvent::Ready(false)).await;
            }
            tokio::time::sleep(r.period).await;
        }
    };
    let liveness = async {
        let Some(l) = &p.liveness else {
            return std::future::pending::<()>().await;
        };
        if let Some(why) = until_failed(l, false).await {
            let _ = tx
                .send(ProbeEvent::Unhealthy(format!(
                    "Liveness probe failed: {why}"
                )))
                .await;
        }
    };
    tokio::join!(readiness, liveness);
}

/// SIGTERM to the group, SIGKILL after `grace`; then SIGKILL whatever is left of the group.
async fn stop_process(
    child: &mut tokio::process::Child,
    pid: u32,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    process::signal_group(pid, Signal::TERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            process::signal_group(pid, Signal::KILL);
            child.wait().await.ok()
        }
    };
    process::signal_group(pid, Signal::KILL);
    status
}

/// The wait before a container's next start: none for the first restart, then 10 s doubling
/// up to `max`, as the kubelet's CrashLoopBackOff (KEP-4603: a cap below 10 s is also the
/// first wait).
fn backoff(restarts_in_a_row: u32, max: Duration) -> Duration {
    match restarts_in_a_row {
        0 => Duration::ZERO,
        n => FIRST_BACKOFF
            .min(max)
            .saturating_mul(1 << (n - 1).min(8))
            .min(max),
    }
}

/// Whether to start the container again after a run, as `restartPolicy` says; one the
/// kubelet stopped for good never is.
fn should_restart(policy: &str, end: RunEnd) -> bool {
    !end.stop
        && match policy {
            "Never" => false,
            "OnFailure" => end.failed,
            _ => true,
        }
}

/// The exit code and signal Kubernetes reports for a process: 128 + the signal when one
/// killed it (as a shell reports it), -1 when nothing is known.
fn exit_code_and_signal(status: Option<std::process::ExitStatus>) -> (i32, Option<i32>) {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => (c, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            (None, None) => (-1, None),
        },
        None => (-1, None),
    }
}

/// How long a running container gets to stop after its pod's command changed: the
/// termination's grace period, none when the pod worker is gone (`worker_gone`), and no
/// stop at all while the pod is to run.
fn stop_grace(command: Command, worker_gone: bool) -> Option<Duration> {
    let grace = match command {
        Command::Terminate { grace, .. } => Some(grace),
        Command::Run => None,
    };
    grace.or(worker_gone.then_some(Duration::ZERO))
}

/// Keeps the last run's log as `<container>.previous.log`, which `kubectl logs --previous`
/// reads.
fn keep_previous_log(log: &Path) {
    if log.exists() {
        let _ = std::fs::rename(log, log.with_extension("previous.log"));
    }
}

/// How one run of a container ended, as far as restarting it goes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RunEnd {
    /// The kubelet stopped it for good (its pod is terminating).
    stop: bool,
    /// It exited non-zero, was killed, or never started: what `OnFailure` restarts.
    failed: bool,
}

impl Ended {
    /// The process's exit status (if it was reaped) and whether it was stopped for good.
    fn status_and_stop(&self) -> (Option<std::process::ExitStatus>, bool) {
        match self {
            Ended::Exited(s) => (Some(*s), false),
            Ended::Killed { status, stop } => (*status, *stop),
        }
    }
}

/// One container of a pod: what the steps of its run loop share.
struct ContainerRun<'a> {
    ctx: &'a Ctx,
    shared: &'a PodShared,
    p: &'a Prepared,
}

impl ContainerRun<'_> {
    /// The container's name, which keys its view in the pod's status.
    fn name(&self) -> &str {
        &self.p.container.name
    }

    /// Changes this container's view (not yet published).
    fn update<T>(&self, f: impl FnOnce(&mut ContainerView) -> T) -> Option<T> {
        self.shared.container(self.name(), f)
    }

    /// Writes the pod's status if it changed (every container's view goes into it).
    async fn publish(&self) {
        self.shared.publish(self.ctx).await;
    }

    /// Starts the process once and follows it to its end, recording how it ended; a
    /// process that cannot start is reported as RunContainerError and counts as failed.
    async fn run_once(&self, command: &mut watch::Receiver<Command>) -> RunEnd {
        let started_at = now();
        keep_previous_log(&self.p.spec.log);
        let child = match process::spawn(&self.p.spec) {
            Ok(child) => child,
            Err(e) => {
                let message = format!("cannot start {}: {e}", self.p.spec.program.display());
                self.update(|c| {
                    c.state = State::Waiting {
                        reason: "RunContainerError".to_owned(),
                        message,
                    };
                });
                return RunEnd {
                    stop: false,
                    failed: true,
                };
            }
        };
        let (ended, pid) = self.supervise(command, child, started_at).await;
        self.record_exit(&ended, pid, started_at)
    }

    /// Follows a started process to its end: its group registered so that a node shutdown
    /// kills it too, reported running, probed, and no process of its group left afterwards.
    async fn supervise(
        &self,
        command: &mut watch::Receiver<Command>,
        mut child: tokio::process::Child,
        started_at: Timestamp,
    ) -> (Ended, u32) {
        let pid = child.id().unwrap_or_default();
        self.ctx.groups.add(pid);
        self.update(|c| {
            c.state = State::Running { started_at };
            c.pid = Some(pid);
            c.started = false;
            c.ready = false;
        });
        self.publish().await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let probes = tokio::spawn(probe(self.p.clone(), tx));
        let ended = self.wait_for_end(command, &mut child, pid, &mut rx).await;
        probes.abort();
        process::signal_group(pid, Signal::KILL);
        self.ctx.groups.remove(pid);
        (ended, pid)
    }

    /// Waits until the process exits, a probe finds it unhealthy (stopped, to be restarted)
    /// or its pod is terminated (stopped for good), publishing probe transitions meanwhile.
    async fn wait_for_end(
        &self,
        command: &mut watch::Receiver<Command>,
        child: &mut tokio::process::Child,
        pid: u32,
        rx: &mut tokio::sync::mpsc::Receiver<ProbeEvent>,
    ) -> Ended {
        loop {
            tokio::select! {
                status = child.wait() => return Ended::Exited(status.unwrap_or_default()),
                Some(event) = rx.recv() => {
                    if let Some(why) = self.note_probe_event(event).await {
                        tracing::info!(pod = %self.shared.name, container = %self.name(), "{why}; restarting");
                        let status = stop_process(child, pid, self.p.grace).await;
                        return Ended::Killed { status, stop: false };
                    }
                }
                changed = command.changed() => {
                    // A `let` drops the watch's read guard before the await below.
                    let grace = stop_grace(*command.borrow(), changed.is_err());
                    if let Some(grace) = grace {
                        let status = stop_process(child, pid, grace).await;
                        return Ended::Killed { status, stop: true };
                    }
                }
            }
        }
    }

    /// Publishes a startup or readiness transition; an unhealthy verdict is handed back
    /// instead (`Some(why)`), since stopping the process is the caller's job.
    async fn note_probe_event(&self, event: ProbeEvent) -> Option<String> {
        match event {
            ProbeEvent::Started => self.update(|c| c.started = true),
            ProbeEvent::Ready(ready) => self.update(|c| c.ready = ready && c.started),
            ProbeEvent::Unhealthy(why) => return Some(why),
        };
        self.publish().await;
        None
    }

    /// Records the Terminated state of a run whose process is gone (the state
    /// `kubectl describe` and restart decisions read).
    fn record_exit(&self, ended: &Ended, pid: u32, started_at: Timestamp) -> RunEnd {
        let finished_at = now();
        let (status, stop) = ended.status_and_stop();
        let (exit_code, signal) = exit_code_and_signal(status);
        let failed = exit_code != 0;
        let state = State::Terminated {
            exit_code,
            signal,
            reason: if failed { "Error" } else { "Completed" }.to_owned(),
            started_at,
            finished_at,
            id: format!("tributary-e2e://{pid}"),
        };
        self.update(|c| {
            c.state = state;
            c.pid = None;
            c.ready = false;
            c.started = false;
        });
        RunEnd { stop, failed }
    }

    /// Counts a restart, keeping the termination as the last state and, when the restart
    /// waits, reporting CrashLoopBackOff with the kubelet's message.
    async fn note_restart(&self, delay: Duration) {
        let s = self.shared;
        let message = format!(
            "back-off {}s restarting failed container={} pod={}_{}({})",
            delay.as_secs(),
            self.name(),
            s.name,
            s.namespace,
            s.uid
        );
        self.update(|c| {
            if matches!(c.state, State::Terminated { .. }) {
                c.last = Some(c.state.clone());
            }
            c.restart_count += 1;
            if !delay.is_zero() {
                c.state = State::Waiting {
                    reason: "CrashLoopBackOff".to_owned(),
                    message,
                };
            }
        });
        self.publish().await;
    }
}

/// One container: start, watch, restart.
async fn run_container(
    ctx: Arc<Ctx>,
    shared: Arc<PodShared>,
    p: Prepared,
    mut command: watch::Receiver<Command>,
) {
    let run = ContainerRun {
        ctx: &ctx,
        shared: &shared,
        p: &p,
    };
    let mut in_a_row = 0_u32;
    loop {
        if *command.borrow() != Command::Run {
            run.update(|c| c.finished = true);
            return;
        }
        let began = Instant::now();
        let end = run.run_once(&mut command).await;
        if !should_restart(&p.restart, end) {
            run.update(|c| c.finished = true);
            run.publish().await;
            return;
        }
        if began.elapsed() >= BACKOFF_RESET {
            in_a_row = 0;
        }
        let delay = backoff(in_a_row, ctx.max_restart_period);
        in_a_row += 1;
        run.note_restart(delay).await;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = command.changed() => {}
        }
    }
}

/// The log file of a container of the pod whose directory slug starts with `prefix` (the
/// most recent such pod), current or previous.
pub(crate) fn log_file(
    logs_dir: &Path,
    prefix: &str,
    container: &str,
    previous: bool,
) -> Option<PathBuf> {
    let newest = std::fs::read_dir(logs_dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())?;
    let file = if previous {
        format!("{container}.previous.log")
    } else {
        format!("{container}.log")
    };
    Some(newest.path().join(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(stop: bool, failed: bool) -> RunEnd {
        RunEnd { stop, failed }
    }

    #[test]
    fn restart_back_off_doubles_from_10_s_to_its_cap_and_a_cap_below_10_s_is_also_the_first_wait() {
        let waits = |max| {
            (0..7)
                .map(|n| backoff(n, max).as_secs())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            waits(MAX_CONTAINER_RESTART_PERIOD),
            [0, 10, 20, 40, 80, 160, 300]
        );
        assert_eq!(waits(Duration::from_secs(30)), [0, 10, 20, 30, 30, 30, 30]);
        assert_eq!(waits(Duration::from_secs(1)), [0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(backoff(40, MAX_CONTAINER_RESTART_PERIOD).as_secs(), 300);
    }

    #[test]
    fn restart_policy_decides_unless_the_pod_is_stopping() {
        assert!(should_restart("Always", end(false, false)));
        assert!(should_restart("OnFailure", end(false, true)));
        assert!(!should_restart("OnFailure", end(false, false)));
        assert!(!should_restart("Never", end(false, true)));
        assert!(!should_restart("Always", end(true, true)));
    }

    #[test]
    fn a_death_by_signal_reports_128_plus_the_signal() {
        use std::process::ExitStatus;
        let exit = |raw| exit_code_and_signal(Some(ExitStatus::from_raw(raw)));
        assert_eq!(exit(0), (0, None));
        assert_eq!(exit(3 << 8), (3, None));
        assert_eq!(exit(9), (137, Some(9)));
        assert_eq!(exit_code_and_signal(None), (-1, None));
    }

    #[test]
    fn only_a_termination_or_a_gone_worker_stops_a_container() {
        let grace = Duration::from_secs(5);
        let terminate = Command::Terminate {
            grace,
            delete: true,
        };
        assert_eq!(stop_grace(terminate, false), Some(grace));
        assert_eq!(stop_grace(Command::Run, false), None);
        assert_eq!(stop_grace(Command::Run, true), Some(Duration::ZERO));
    }
}

/// Prefix of the kubelet's own environment variables it gives every container without it
/// (`TRIBUTARY_E2E_POD_ENV_TRIBUTARY_REMOTE_STORAGE_URL=...` becomes
/// `TRIBUTARY_REMOTE_STORAGE_URL=...`): settings a KafkaCluster cannot express yet reach the
/// brokers of a development cluster. The pod's own `env` wins over them.
pub(crate) const POD_ENV_PREFIX: &str = "TRIBUTARY_E2E_POD_ENV_";

/// The variables of `vars` passed through to containers, prefix removed.
fn passed_through(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter_map(|(k, v)| {
        let name = k.strip_prefix(POD_ENV_PREFIX)?;
        (!name.is_empty()).then(|| (name.to_owned(), v))
    })
    .collect()
}

#[cfg(test)]
mod pass_through_tests {
    #[test]
    fn only_prefixed_variables_pass_without_their_prefix() {
        let vars = [
            (
                "TRIBUTARY_E2E_POD_ENV_TRIBUTARY_REMOTE_STORAGE_URL",
                "s3://b/p",
            ),
            ("TRIBUTARY_E2E_POD_ENV_", "nameless"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            super::passed_through(vars.into_iter()),
            vec![(
                "TRIBUTARY_REMOTE_STORAGE_URL".to_owned(),
                "s3://b/p".to_owned()
            )]
        );
    }
}
