//! The endpoint's thread: accepts requests, loads new components, watches
//! plugin files, and hands work to the pipeline through its channel.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::http::{self, ReadError};
use super::{ControlError, Endpoint};
use crate::manifest::{ControlSpec, Limits, Manifest, StageKind};
use crate::pipeline::{ControlRequest, SwapError};
use crate::plugin::{PluginEngine, StagePlugin};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a status request waits for the pipeline to reach a batch end.
const STATUS_WAIT: Duration = Duration::from_secs(10);
/// How long a swap waits for the pipeline to take the new component.
const INSTALL_WAIT: Duration = Duration::from_secs(60);
/// How often watched files are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often the accept loop looks for a connection or a stop.
const IDLE_SLEEP: Duration = Duration::from_millis(10);
/// Requests served at once; more are refused with 503, so a slow or
/// hostile client cannot hold a swap up.
const MAX_IN_FLIGHT: usize = 8;

/// A stage as the manifest configured it: what a new component for it is
/// loaded with.
#[derive(Debug, Clone)]
pub struct StageSource {
    /// The stage.
    pub kind: StageKind,
    /// Its component file in the manifest (watched with `watch`).
    pub path: PathBuf,
    /// Its config (JSON).
    pub config: String,
    /// Its limits.
    pub limits: Limits,
    /// SHA-256 of the component the pipeline loaded for it, when known: a
    /// file that differs from it by the time watching starts is swapped in.
    pub loaded: Option<String>,
}

impl StageSource {
    /// The four stages of `manifest`.
    pub fn of(manifest: &Manifest) -> Vec<StageSource> {
        manifest.stages.iter().map(|s| StageSource { kind: s.kind, path: s.plugin.clone(), config: s.config.clone(), limits: manifest.limits, loaded: None }).collect()
    }

    /// Records the hash of the component each stage loaded (`hash_of`
    /// answers per stage), so watching compares against what runs.
    pub fn loaded_from(mut sources: Vec<StageSource>, hash_of: impl Fn(StageKind) -> Option<String>) -> Vec<StageSource> {
        for source in &mut sources {
            source.loaded = hash_of(source.kind);
        }
        sources
    }
}

/// The running endpoint; dropping it stops the thread and removes the
/// endpoint file.
pub struct ControlServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    endpoint: Option<(PathBuf, Endpoint)>,
}

struct Context {
    pipeline: String,
    token: String,
    engine: Arc<PluginEngine>,
    stages: Vec<StageSource>,
    requests: Sender<ControlRequest>,
    started: SystemTime,
}

impl ControlServer {
    /// Starts listening as `spec` says (when given) and watching the
    /// stages' files (when `watch`). Requests reach the pipeline through
    /// `requests`.
    pub fn start(
        pipeline: &str,
        spec: Option<&ControlSpec>,
        watch: bool,
        engine: Arc<PluginEngine>,
        stages: Vec<StageSource>,
        requests: Sender<ControlRequest>,
    ) -> Result<ControlServer, ControlError> {
        let token = spec.and_then(|s| s.token.clone()).unwrap_or_else(random_token);
        let ctx = Arc::new(Context { pipeline: pipeline.to_owned(), token, engine, stages, requests, started: SystemTime::now() });
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut endpoint = None;
        let listener = match spec {
            Some(spec) => {
                let listener = TcpListener::bind(spec.listen).map_err(|source| ControlError::Bind { addr: spec.listen, source })?;
                listener.set_nonblocking(true).map_err(|source| ControlError::Bind { addr: spec.listen, source })?;
                let address = listener.local_addr().map_err(|source| ControlError::Bind { addr: spec.listen, source })?;
                let info = Endpoint { pipeline: pipeline.to_owned(), address, token: ctx.token.clone(), pid: std::process::id() };
                info.write(&spec.endpoint_file)?;
                tracing::info!("control endpoint on http://{address} (token in {})", spec.endpoint_file.display());
                endpoint = Some((spec.endpoint_file.clone(), info));
                Some(listener)
            }
            None => None,
        };
        let mut watcher = watch.then(|| Watcher::new(&ctx.stages));
        if watcher.is_some() {
            tracing::info!("watching the plugin files: a changed file is swapped in");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-control".to_owned())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    let mut busy = false;
                    if let Some(listener) = &listener {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                busy = true;
                                // Each request on its own thread, at most
                                // MAX_IN_FLIGHT at once; each is bounded in time.
                                if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
                                    in_flight.fetch_sub(1, Ordering::SeqCst);
                                    let _ = stream.set_nonblocking(false);
                                    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
                                    let _ = http::respond(&stream, 503, &json!({ "error": format!("{MAX_IN_FLIGHT} requests in flight; try again") }));
                                    continue;
                                }
                                let (request_ctx, done) = (ctx.clone(), in_flight.clone());
                                let spawned = std::thread::Builder::new().name("weir-control-request".to_owned()).spawn(move || {
                                    serve(&request_ctx, stream);
                                    done.fetch_sub(1, Ordering::SeqCst);
                                });
                                if let Err(err) = spawned {
                                    in_flight.fetch_sub(1, Ordering::SeqCst);
                                    tracing::warn!("control endpoint: cannot start a request thread: {err}");
                                }
                            }
                            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(err) => tracing::warn!("control endpoint: {err}"),
                        }
                    }
                    if let Some(watcher) = &mut watcher {
                        watcher.poll(&ctx);
                    }
                    if !busy {
                        std::thread::sleep(IDLE_SLEEP);
                    }
                }
            })
            .map_err(|err| ControlError::Protocol(format!("cannot start the control thread: {err}")))?;
        Ok(ControlServer { stop, thread: Some(thread), endpoint })
    }

    /// Where clients find it, when it listens.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref().map(|(_, e)| e)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some((path, _)) = &self.endpoint {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

fn serve(ctx: &Context, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let (status, body) = match http::read_request(&stream) {
        // Prometheus scrapes with the token (`authorization` in its scrape config).
        Ok(request) if request.method == "GET" && request.path == "/metrics" && http::token_matches(request.bearer.as_deref(), &ctx.token) => {
            if let Err(err) = http::respond_with(&stream, 200, http::METRICS_TYPE, &crate::metrics::global().render()) {
                tracing::debug!("control endpoint: cannot answer: {err}");
            }
            return;
        }
        Ok(request) => answer(ctx, request),
        Err(ReadError::TooLarge) => (413, json!({ "error": format!("request too large (head at most 16 KiB, body at most {} bytes)", http::MAX_BODY) })),
        Err(ReadError::Bad(why)) => (400, json!({ "error": why })),
        Err(ReadError::Io(err)) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            (408, json!({ "error": format!("no complete request within {READ_TIMEOUT:?}") }))
        }
        Err(ReadError::Io(_)) => return,
    };
    if let Err(err) = http::respond(&stream, status, &body) {
        tracing::debug!("control endpoint: cannot answer: {err}");
    }
}

fn answer(ctx: &Context, request: http::Request) -> (u16, serde_json::Value) {
    // The token comes first: without it nothing else is revealed, not even
    // which paths exist.
    if !http::token_matches(request.bearer.as_deref(), &ctx.token) {
        tracing::warn!(method = %request.method, path = %request.path, "control endpoint: refused a request without the right token");
        return (401, json!({ "error": "missing or wrong token: send `Authorization: Bearer <token>` with the token from the endpoint file" }));
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v1/status") => status(ctx),
        ("POST", "/v1/swap") => match serde_json::from_slice::<SwapBody>(&request.body) {
            Ok(body) => swap(ctx, &body.stage, Path::new(&body.plugin)),
            Err(err) => (400, json!({ "error": format!("swap body must be {{\"stage\": ..., \"plugin\": ...}}: {err}") })),
        },
        (_, "/v1/status" | "/v1/swap") => (405, json!({ "error": format!("{} is not allowed on {}", request.method, request.path) })),
        _ => (404, json!({ "error": format!("no such endpoint {}; there are GET /v1/status, POST /v1/swap and GET /metrics", request.path) })),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapBody {
    stage: String,
    plugin: String,
}

fn status(ctx: &Context) -> (u16, serde_json::Value) {
    let (reply, answer) = mpsc::channel();
    if ctx.requests.send(ControlRequest::Status(reply)).is_err() {
        return (504, json!({ "error": "the pipeline has stopped" }));
    }
    match answer.recv_timeout(STATUS_WAIT) {
        Ok(status) => {
            let mut value = serde_json::to_value(&status).unwrap_or_default();
            value["pipeline"] = json!(ctx.pipeline);
            value["pid"] = json!(std::process::id());
            value["started_at"] = json!(crate::Timestamp::from(ctx.started).to_string());
            (200, value)
        }
        Err(_) => (504, json!({ "error": format!("the pipeline did not reach the end of a batch within {STATUS_WAIT:?}") })),
    }
}

/// Which stages `spec` names: one, a comma list, or `all` (every stage the
/// manifest serves from one file is swapped together).
fn stages_named(spec: &str) -> Result<Vec<StageKind>, String> {
    if spec == "all" {
        return Ok(StageKind::ALL.to_vec());
    }
    let mut kinds = Vec::new();
    for name in spec.split(',') {
        let kind: StageKind = name.trim().parse()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// Loads `plugin` for the named stages off the data path, then asks the
/// pipeline to put them in place between batches.
fn swap(ctx: &Context, spec: &str, plugin: &Path) -> (u16, serde_json::Value) {
    let kinds = match stages_named(spec) {
        Ok(kinds) => kinds,
        Err(why) => return (400, json!({ "error": why })),
    };
    if !plugin.is_absolute() {
        return (400, json!({ "error": format!("plugin path {} must be absolute (the pipeline's working folder is not yours)", plugin.display()) }));
    }
    let started = Instant::now();
    let mut loaded = Vec::new();
    for kind in kinds {
        // `all` means every stage a component serves; a stage named on its
        // own that the host does (a built-in decoder, a key field) has no
        // component to replace.
        let Some(source) = ctx.stages.iter().find(|s| s.kind == kind) else {
            if spec == "all" {
                continue;
            }
            let error = format!("the {} stage is done by the host (see the manifest's [stages.{}]), not by a component: there is nothing to swap", kind.name(), kind.name());
            return (409, json!({ "error": error, "stage": kind.name() }));
        };
        match StagePlugin::load(&ctx.engine, kind, plugin, &source.config, source.limits) {
            Ok(new) => loaded.push(new),
            Err(err) => {
                let (reply, answer) = mpsc::channel();
                let refusal = SwapError::Invalid(err);
                let message = refusal.to_string();
                if ctx.requests.send(ControlRequest::Refused(kind, refusal, reply)).is_ok() {
                    let _ = answer.recv_timeout(STATUS_WAIT);
                }
                return (409, json!({ "error": message, "stage": kind.name() }));
            }
        }
    }
    let validated = started.elapsed();
    let (reply, answer) = mpsc::channel();
    if ctx.requests.send(ControlRequest::Install(loaded, reply)).is_err() {
        return (504, json!({ "error": "the pipeline has stopped" }));
    }
    match answer.recv_timeout(INSTALL_WAIT) {
        Ok(Ok((swapped, stall))) => {
            (200, json!({ "swapped": swapped, "validated_ms": validated.as_secs_f64() * 1e3, "pipeline_paused_ms": stall.as_secs_f64() * 1e3 }))
        }
        Ok(Err(message)) => (409, json!({ "error": message })),
        Err(RecvTimeoutError::Timeout) => (
            504,
            json!({ "error": format!("the pipeline did not reach the end of a batch within {INSTALL_WAIT:?}; the swap is still queued and happens between batches (see `weir status`)") }),
        ),
        Err(RecvTimeoutError::Disconnected) => (504, json!({ "error": "the pipeline stopped before taking the swap" })),
    }
}

/// Looks at the stages' component files and swaps a stage in when its
/// file changed and has stayed the same for one more look (so a file being
/// written is not loaded half-way).
struct Watcher {
    files: HashMap<PathBuf, Seen>,
    last: Instant,
}

struct Seen {
    settled: Option<(SystemTime, u64)>,
    pending: Option<(SystemTime, u64)>,
}

fn file_hash(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    std::fs::read(path).ok().map(|bytes| hex::encode(Sha256::digest(&bytes)))
}

fn signature(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Watcher {
    fn new(stages: &[StageSource]) -> Self {
        let files = stages
            .iter()
            .map(|s| {
                // The file may have changed between loading and now (a build
                // finishing during start-up): then it counts as changed.
                let now = signature(&s.path);
                let same = s.loaded.as_ref().is_none_or(|loaded| file_hash(&s.path).as_ref() == Some(loaded));
                (s.path.clone(), Seen { settled: if same { now } else { None }, pending: None })
            })
            .collect();
        Watcher { files, last: Instant::now() }
    }

    fn poll(&mut self, ctx: &Context) {
        if self.last.elapsed() < WATCH_EVERY {
            return;
        }
        self.last = Instant::now();
        for (path, seen) in &mut self.files {
            let now = signature(path);
            if now == seen.settled {
                seen.pending = None;
                continue;
            }
            if now.is_none() || seen.pending != now {
                // Changed since the last look (or gone): look again later.
                seen.pending = now;
                continue;
            }
            seen.settled = now;
            seen.pending = None;
            let kinds: Vec<&str> = ctx.stages.iter().filter(|s| &s.path == path).map(|s| s.kind.name()).collect();
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            tracing::info!(plugin = %path.display(), "plugin file changed: swapping {}", kinds.join(", "));
            match swap(ctx, &kinds.join(","), &absolute) {
                (200, _) => {}
                (_, body) => tracing::warn!(plugin = %path.display(), "watched swap refused: {}", body["error"].as_str().unwrap_or("unknown")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &Path, loaded: Option<String>) -> StageSource {
        StageSource { kind: StageKind::Fold, path: path.to_owned(), config: "{}".to_owned(), limits: Limits::default(), loaded }
    }

    #[test]
    fn a_file_replaced_before_watching_starts_counts_as_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fold.wasm");
        std::fs::write(&path, b"version one").unwrap();
        let loaded = file_hash(&path);
        // Unchanged since loading: nothing to swap.
        let watcher = Watcher::new(&[source(&path, loaded.clone())]);
        assert_eq!(watcher.files[&path].settled, signature(&path));
        // Replaced between loading and the watcher's first look.
        std::fs::write(&path, b"version two").unwrap();
        let watcher = Watcher::new(&[source(&path, loaded)]);
        assert_eq!(watcher.files[&path].settled, None, "the replaced file must be seen as a change");
    }
}
