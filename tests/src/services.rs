//! The real servers the end-to-end tests use, started by `scripts/test.sh`
//! through `scripts/services.sh`, and the `weir` binary run against them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Where the services listen.
pub struct Services {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// DynamoDB Local's endpoint.
    pub dynamodb: String,
}

/// The running services, or a panic saying how to start them. A test that
/// needs them never passes without them.
pub fn services() -> Services {
    let get = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the end-to-end tests need real Kafka and DynamoDB Local. \
                 Run them with `bash scripts/test.sh`, which starts both (scripts/services.sh start) and stops them after"
            )
        })
    };
    Services { brokers: get("WEIR_KAFKA_BROKERS"), dynamodb: get("WEIR_DYNAMODB_ENDPOINT") }
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// The `weir` binary beside this test, up to date. `cargo test --workspace`
/// builds it (the host's own CLI tests need it); run alone, this crate's
/// tests build it here, since a stale binary would test old code.
pub fn weir_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            let path = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("weir");
            let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if built.is_some_and(|built| newest_source() <= built) {
                return path;
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status =
                Command::new(cargo).args(["build", "--quiet", "--workspace", "--bin", "weir"]).current_dir(crate::root()).status().expect("cargo runs");
            assert!(status.success(), "cannot build the weir binary");
            assert!(path.is_file(), "{} is missing after the build", path.display());
            path
        })
        .clone()
}

// The newest change to what the weir binary is built from.
fn newest_source() -> std::time::SystemTime {
    fn walk(dir: &std::path::Path, newest: &mut std::time::SystemTime) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(modified);
            }
        }
    }
    let root = crate::root();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    walk(&root.join("host/src"), &mut newest);
    walk(&root.join("wit"), &mut newest);
    for file in ["host/Cargo.toml", "Cargo.toml", "Cargo.lock"] {
        if let Ok(modified) = std::fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = newest.max(modified);
        }
    }
    newest
}

/// Runs `weir` with `args` to completion, within `limit`.
pub fn weir(args: &[&str], limit: Duration) -> Output {
    let child = spawn_weir(args);
    wait(child, limit)
}

/// Starts `weir` with `args`, output captured.
pub fn spawn_weir(args: &[&str]) -> Child {
    Command::new(weir_binary())
        .args(args)
        .current_dir(crate::root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts")
}

/// A `weir` whose log goes to a file that can be read while it runs.
pub struct Running {
    /// The process.
    pub child: Child,
    log: tempfile::NamedTempFile,
}

impl Running {
    /// Starts `weir` with `args`.
    pub fn start(args: &[&str]) -> Running {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(weir_binary())
            .args(args)
            .current_dir(crate::root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("weir starts");
        Running { child, log }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits until `ready` holds, at most `limit`; panics with the log if not.
    pub fn wait_until(&mut self, what: &str, limit: Duration, mut ready: impl FnMut(&str) -> bool) {
        let started = Instant::now();
        while !ready(&self.log()) {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("weir exited ({status}) before {what}:\n{}", self.log());
            }
            assert!(started.elapsed() < limit, "no {what} within {limit:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the exit, at most `limit`; returns whether it succeeded and the log.
    pub fn finish(mut self, limit: Duration) -> (bool, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status.success(), self.log());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("weir did not finish within {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits for `child` at most `limit`, killing it (and failing) past that.
/// Its output is read while it runs, so a chatty child never blocks on a
/// full pipe.
pub fn wait(mut child: Child, limit: Duration) -> Output {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!("weir did not finish within {limit:?}; stderr:\n{}", String::from_utf8_lossy(&stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Every item of a DynamoDB table, as JSON with numbers as their text.
pub fn scan(endpoint: &str, table: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint).region(aws_config::Region::new("us-east-1")).load().await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = match client.scan().table_name(table).set_exclusive_start_key(start.take()).send().await {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Vec::new(),
                Err(e) => panic!("scan {table}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)),
            };
            for item in out.items.unwrap_or_default() {
                items.push(item.iter().map(|(k, v)| (k.clone(), json(v))).collect());
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        items
    })
}

fn json(v: &AttributeValue) -> serde_json::Value {
    match v {
        AttributeValue::S(s) => serde_json::Value::String(s.clone()),
        AttributeValue::N(n) => serde_json::Value::Number(serde_json::from_str(n).expect("a DynamoDB number")),
        AttributeValue::Bool(b) => serde_json::Value::Bool(*b),
        AttributeValue::Null(_) => serde_json::Value::Null,
        AttributeValue::L(l) => serde_json::Value::Array(l.iter().map(json).collect()),
        AttributeValue::M(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        other => panic!("unexpected attribute {other:?}"),
    }
}

/// A message read back from Kafka.
#[derive(Debug, Clone)]
pub struct Received {
    /// The key.
    pub key: Option<String>,
    /// The value (lossy UTF-8).
    pub value: String,
    /// The value's bytes.
    pub payload: Vec<u8>,
    /// The headers.
    pub headers: BTreeMap<String, String>,
    /// The timestamp (milliseconds since the Unix epoch), when it has one.
    pub timestamp: Option<i64>,
}

/// Reads `topic` from the beginning with a plain consumer until `count`
/// messages arrived or `limit` passed.
pub fn consume(brokers: &str, topic: &str, count: usize, limit: Duration) -> Vec<Received> {
    use rdkafka::message::Headers;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < count && started.elapsed() < limit {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Received {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| h.iter().map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())).collect())
                    .unwrap_or_default(),
                timestamp: m.timestamp().to_millis(),
            }),
            Some(Err(e)) => eprintln!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

// Waits until a server a test started listens on `port`, at most 60 s;
// fails saying so (and `hint`) if it exits or does not listen.
fn wait_listening(port: u16, child: &mut Child, what: &str, hint: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) instead of listening on {port}{hint}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what} did not listen on {port} within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// Stops a server a test started: SIGTERM (so it keeps its data), then
// SIGKILL after 10 s.
fn stop_server(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A DynamoDB Local of a test's own that keeps its data in a folder
/// (`-sharedDb -dbPath`), so it can be stopped and started again on the
/// same port with its tables intact.
pub struct PersistentDynamo {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl PersistentDynamo {
    /// Starts one keeping its data in `dir`, on a free port.
    pub fn start(dir: &std::path::Path) -> PersistentDynamo {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut d = PersistentDynamo { dir: dir.to_owned(), port, child: None };
        d.resume();
        d
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it again after [`PersistentDynamo::stop`], waiting until it answers.
    pub fn resume(&mut self) {
        let jar_dir =
            std::env::var("WEIR_DYNAMODB_LOCAL_DIR").expect("WEIR_DYNAMODB_LOCAL_DIR is set by scripts/services.sh start (run the tests with scripts/test.sh)");
        let child = Command::new("java")
            .args(["-Djava.library.path=DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar", "-sharedDb", "-dbPath"])
            .arg(&self.dir)
            .args(["-port", &self.port.to_string()])
            .current_dir(&jar_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java starts DynamoDB Local");
        self.child = Some(child);
        wait_listening(self.port, self.child.as_mut().expect("just started"), "DynamoDB Local", "");
        // Java listens before it serves: wait for an answer to a request.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let endpoint = self.endpoint();
        let answered = runtime.block_on(async {
            let config =
                aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(&endpoint).region(aws_config::Region::new("us-east-1")).load().await;
            let client = aws_sdk_dynamodb::Client::new(&config);
            for _ in 0..120 {
                if client.list_tables().send().await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            false
        });
        assert!(answered, "DynamoDB Local on {} listens but did not answer within 60 s", self.port);
    }

    /// Stops it (its data stays in the folder).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_server(child);
        }
    }
}

impl Drop for PersistentDynamo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A tansu broker of a test's own that keeps its data in sqlite, so it can
/// be stopped and started again on the same port with its topics, messages
/// and committed offsets intact.
pub struct PersistentBroker {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl PersistentBroker {
    /// Starts one keeping its data in `dir`, on a free port.
    pub fn start(dir: &std::path::Path) -> PersistentBroker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut b = PersistentBroker { dir: dir.to_owned(), port, child: None };
        b.resume();
        b
    }

    /// Its bootstrap address.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it again after [`PersistentBroker::stop`], waiting until it listens.
    pub fn resume(&mut self) {
        let tansu = std::env::var("WEIR_TANSU_BIN").expect("WEIR_TANSU_BIN is set by scripts/services.sh start (run the tests with scripts/test.sh)");
        let url = format!("tcp://{}", self.brokers());
        let child = Command::new(tansu)
            // tansu 0.6 reads the sqlite path relative to its working folder.
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        wait_listening(self.port, self.child.as_mut().expect("just started"), "tansu", ": is it built with --features libsql? (scripts/services.sh install)");
    }

    /// Stops it (its data stays in sqlite).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_server(child);
        }
    }
}

impl Drop for PersistentBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
