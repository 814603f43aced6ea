//! The `weir` command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::manifest::{Manifest, StageKind};
use crate::pipeline::{Pipeline, Stages};
use crate::plugin::PluginEngine;

/// weir: stream processing with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `weir=debug` (also RUST_LOG).
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    /// Where compiled plugins are cached (default ~/.cache/weir/compiled;
    /// also WEIR_CACHE_DIR).
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Compile plugins every time instead of using the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline until its input ends (Ctrl-C stops a stream).
    Run {
        /// The pipeline manifest (TOML).
        manifest: PathBuf,
        /// Swap a stage in when its component file changes (also
        /// `[control] watch = true`).
        #[arg(long)]
        watch: bool,
        /// Worker threads for a file job keyed by a field (default: the
        /// machine's cores); each owns the keys that hash to it.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: Option<u16>,
        /// Serve Prometheus metrics at http://ADDR/metrics (no token; only
        /// GET /metrics). ADDR defaults to 127.0.0.1:9464. The control
        /// endpoint also serves GET /metrics, with its token.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::control::DEFAULT_METRICS_ADDR)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Make a ready plugin project: a Rust crate (Cargo.toml) or, with
    /// `--lang python`, an app.py with the SDK beside it; a working example
    /// with unit tests, `weir test` cases and a README.
    New {
        /// What it serves: pipeline (a whole pipeline), deserialize, key,
        /// fold or format.
        #[arg(value_enum)]
        kind: crate::scaffold::Kind,
        /// The plugin's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::scaffold::Lang,
        /// The crate's name (also its folder).
        name: String,
        /// Where to put the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A guest-sdk folder for the crate to depend on by path (default:
        /// the SDK this binary carries, written into the crate's vendor/).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin into a WebAssembly component: a Python file whose
    /// functions use the `weir` decorators (componentize-py from PyPI), or a
    /// JavaScript module exporting the WIT interfaces (componentize-js from
    /// npm); the tool is installed once under ~/.cache/weir/tools.
    Build {
        /// The Python (.py) or JavaScript (.js, .mjs) file.
        app: PathBuf,
        /// The component to write (default: the file's name with .wasm).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Run a compiled component in the real host against a file of cases
    /// (input records, config, expected windows, dead letters or error);
    /// prints a diff on a mismatch and fails if any case fails.
    Test {
        /// The component (.wasm).
        plugin: PathBuf,
        /// The cases file (TOML; see `weir::cases`).
        #[arg(long)]
        cases: PathBuf,
    },
    /// Show a running pipeline's counts and each stage's component, hash,
    /// load time, records, errors and swaps.
    Status {
        /// Which pipeline.
        #[command(flatten)]
        target: Target,
        /// Print the endpoint's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace a running pipeline's stage component. The new component is
    /// compiled, checked and configured first; the switch happens between
    /// batches, or the swap is refused and the old component keeps running.
    Swap {
        /// The stage: deserialize, key, fold, format, a comma list, or
        /// `all` (swapped together, between the same two batches).
        stage: String,
        /// The new component (.wasm).
        plugin: PathBuf,
        /// Which pipeline.
        #[command(flatten)]
        target: Target,
    },
    /// Check a manifest and its plugins without running anything: fields,
    /// files, each component's exports, limits and config.
    Check {
        /// The pipeline manifest (TOML).
        manifest: PathBuf,
    },
    /// Send test data into a Kafka topic (random-walk sensors, or a file),
    /// or random-walk sensor readings straight into a DynamoDB table
    /// (`--dynamodb-table`, seed 003's mock sensors).
    Produce {
        /// Bootstrap servers (default: $WEIR_KAFKA_BROKERS).
        #[arg(long, env = "WEIR_KAFKA_BROKERS")]
        brokers: Option<String>,
        /// The topic; created if missing.
        #[arg(long, required_unless_present = "dynamodb_table", conflicts_with = "dynamodb_table")]
        topic: Option<String>,
        /// Write the readings into this DynamoDB table instead of a topic.
        #[arg(long)]
        dynamodb_table: Option<String>,
        /// DynamoDB endpoint override, e.g. DynamoDB Local (default: $WEIR_DYNAMODB_ENDPOINT).
        #[arg(long, env = "WEIR_DYNAMODB_ENDPOINT", requires = "dynamodb_table")]
        endpoint: Option<String>,
        /// DynamoDB region.
        #[arg(long, requires = "dynamodb_table")]
        region: Option<String>,
        /// With --dynamodb-table: the sensor id attribute (partition key).
        #[arg(long, default_value = "SensorId", requires = "dynamodb_table")]
        partition_key: String,
        /// With --dynamodb-table: the time attribute (sort key, epoch ms).
        #[arg(long, default_value = "CurrentTime", requires = "dynamodb_table")]
        sort_key: String,
        /// With --dynamodb-table: the reading attribute.
        #[arg(long, default_value = "Temperature", requires = "dynamodb_table")]
        value_field: String,
        /// With --dynamodb-table: create the table when it is missing.
        #[arg(long, requires = "dynamodb_table")]
        create_table: bool,
        /// Partitions for a topic that does not exist yet.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Replay this CSV or JSON-lines file instead of generating (Kafka only).
        #[arg(long, conflicts_with = "dynamodb_table")]
        replay: Option<PathBuf>,
        /// Send the records of this dead-letter file (`[dead_letter] kind =
        /// "file"`) again, each as it was read: value, key, timestamp and
        /// headers (Kafka only; windows in it are skipped).
        #[arg(long, conflicts_with_all = ["dynamodb_table", "replay", "key_field"])]
        dead_letters: Option<PathBuf>,
        /// Send the records of this Kafka dead-letter topic (`[dead_letter]
        /// kind = "kafka"`, on the same brokers) again, each partition read
        /// to its end, each record as it was read: value, key, timestamp
        /// and headers, without the `weir.*` ones (windows are skipped;
        /// the topic is not changed).
        #[arg(long, conflicts_with_all = ["dynamodb_table", "replay", "key_field", "dead_letters"])]
        dead_letter_topic: Option<String>,
        /// With --replay: the field whose value becomes the message key.
        #[arg(long)]
        key_field: Option<String>,
        /// Generated sensors (`sensor-1` ...), the message key.
        #[arg(long, default_value_t = 5)]
        sensors: usize,
        /// Generated readings in all.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Messages per second, generated or replayed (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Random seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Turn the profile plugin's window objects (JSON lines) into one
    /// self-contained HTML page: per key and window, a table and a chart
    /// per column.
    Report {
        /// The JSON lines (`-`: stdin).
        input: PathBuf,
        /// The page to write.
        #[arg(long, short)]
        out: PathBuf,
        /// The page's title.
        #[arg(long, default_value = "weir profile report")]
        title: String,
    },
    /// Read items back from DynamoDB by key and time range, or (`--stats`)
    /// summarise a reading per key: count, mean, min, max (seed 003).
    Query {
        /// The table.
        #[arg(long)]
        table: String,
        /// The key to read (with --stats: repeat it for several; each is a
        /// DynamoDB Query).
        #[arg(long, required_unless_present = "scan")]
        key: Vec<String>,
        /// Per key: count, mean, min and max of --value-field in the range.
        #[arg(long)]
        stats: bool,
        /// With --stats: every key, reading the whole table (a Scan, with
        /// progress) instead of a Query per --key.
        #[arg(long, requires = "stats", conflicts_with = "key")]
        scan: bool,
        /// With --stats: the numeric attribute summarised.
        #[arg(long, default_value = "Temperature")]
        value_field: String,
        /// From this sort-key time (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// To this sort-key time (RFC 3339), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// The table's partition key attribute.
        #[arg(long, default_value = "key")]
        partition_key: String,
        /// The table's sort key attribute (window start, epoch ms).
        #[arg(long, default_value = "window_start")]
        sort_key: String,
        /// Endpoint override, e.g. DynamoDB Local (default: $WEIR_DYNAMODB_ENDPOINT).
        #[arg(long, env = "WEIR_DYNAMODB_ENDPOINT")]
        endpoint: Option<String>,
        /// Region.
        #[arg(long)]
        region: Option<String>,
        /// Print an aligned table instead of JSON lines.
        #[arg(long)]
        table_output: bool,
    },
}

/// Which running pipeline `weir status` and `weir swap` talk to.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The running pipeline's manifest (its `[control]` table says where
    /// the endpoint file is).
    #[arg(short, long, conflicts_with = "endpoint")]
    pub manifest: Option<PathBuf>,
    /// The endpoint file the running pipeline wrote (also WEIR_CONTROL_ENDPOINT).
    #[arg(long, env = "WEIR_CONTROL_ENDPOINT")]
    pub endpoint: Option<PathBuf>,
}

impl Target {
    fn client(&self) -> Result<crate::control::Client> {
        let file = match (&self.endpoint, &self.manifest) {
            (Some(file), _) => file.clone(),
            (None, Some(manifest)) => {
                let m = Manifest::load(manifest)?;
                let Some(control) = m.control else {
                    anyhow::bail!("{} has no [control] table, so its pipeline has no control endpoint", manifest.display());
                };
                control.endpoint_file
            }
            (None, None) => anyhow::bail!("say which pipeline: --manifest <pipeline.toml> or --endpoint <file>"),
        };
        Ok(crate::control::Client::new(crate::control::Endpoint::read(&file)?))
    }
}

/// Runs the command line; the process exit code follows the result.
pub fn main(cli: Cli) -> Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).with_context(|| format!("bad log filter `{filter}`"))?)
        // Log lines clear the progress line (when there is one) first.
        .with_writer(crate::progress::LogWriter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cache = if cli.no_cache { None } else { cli.cache_dir.clone().or_else(PluginEngine::default_cache_dir) };
    match cli.command {
        Command::Check { manifest } => check(&manifest, cache),
        Command::Run { manifest, watch, workers, metrics } => run(&manifest, cache, watch, workers.map(usize::from), metrics),
        Command::New { kind, lang, name, dir, sdk } => {
            let root = crate::scaffold::create(lang, kind, &name, &dir, sdk.as_deref())?;
            let module = name.replace('-', "_");
            println!("created {}", root.display());
            let whole = kind == crate::scaffold::Kind::Pipeline;
            match lang {
                crate::scaffold::Lang::Rust => {
                    println!("  cd {} && cargo test && cargo build --release --target wasm32-wasip2", root.display());
                    if whole {
                        println!("  weir test target/wasm32-wasip2/release/{module}.wasm --cases cases.toml");
                    }
                }
                crate::scaffold::Lang::Python => {
                    println!("  cd {} && python3 -m pytest && weir build app.py", root.display());
                    if whole {
                        println!("  weir test app.wasm --cases cases.toml");
                    }
                }
            }
            Ok(())
        }
        Command::Build { app, out } => {
            let out = out.unwrap_or_else(|| app.with_extension("wasm"));
            let started = std::time::Instant::now();
            let built = crate::build::build(&app, &out)?;
            let size = std::fs::metadata(&built).map(|m| m.len()).unwrap_or(0);
            println!("built {} ({:.1} MB) in {:.1?}", built.display(), size as f64 / 1e6, started.elapsed());
            Ok(())
        }
        Command::Test { plugin, cases } => {
            let engine = PluginEngine::new(cache)?;
            let results = crate::cases::run(&plugin, &cases, &engine)?;
            println!("{} against {}:", plugin.display(), cases.display());
            let failed = results.iter().filter(|r| r.failure.is_some()).count();
            for r in &results {
                match &r.failure {
                    None => println!("  ok    {}", r.name),
                    Some(why) => {
                        println!("  FAIL  {}", r.name);
                        for line in why.lines() {
                            println!("        {line}");
                        }
                    }
                }
            }
            println!("{} cases passed, {failed} failed", results.len() - failed);
            if failed > 0 {
                anyhow::bail!("{failed} of {} cases failed", results.len());
            }
            Ok(())
        }
        Command::Status { target, json } => {
            let status = target.client()?.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status_table(&status));
            }
            Ok(())
        }
        Command::Swap { stage, plugin, target } => {
            let answer = target.client()?.swap(&stage, &plugin)?;
            for s in answer["swapped"].as_array().into_iter().flatten() {
                let short = |k: &str| s[k].as_str().unwrap_or_default().chars().take(12).collect::<String>();
                println!("{}: {} -> {}", s["stage"].as_str().unwrap_or("?"), short("old_hash"), short("new_hash"));
            }
            println!(
                "validated in {:.1} ms, pipeline paused {:.3} ms",
                answer["validated_ms"].as_f64().unwrap_or(0.0),
                answer["pipeline_paused_ms"].as_f64().unwrap_or(0.0)
            );
            Ok(())
        }
        Command::Produce {
            brokers, topic, dynamodb_table, endpoint, region, partition_key, sort_key, value_field, create_table, partitions, replay, dead_letters, dead_letter_topic, key_field, sensors, count, rate, seed,
        } => {
            if let Some(table) = dynamodb_table {
                let target = crate::produce::dynamodb::Target { table, partition_key, sort_key, value_field, create_table, endpoint, region };
                crate::produce::dynamodb::produce(&target, sensors.max(1), count, rate, seed)?;
                return Ok(());
            }
            let topic = topic.context("--topic or --dynamodb-table is required")?;
            let brokers = brokers.context("--brokers (or $WEIR_KAFKA_BROKERS) is required to write to a topic")?;
            let payload = match (replay, dead_letters, dead_letter_topic) {
                (Some(path), _, _) => crate::produce::Payload::Replay { path, key_field, rate },
                (None, Some(path), _) => crate::produce::Payload::DeadLetters { path, rate },
                (None, None, Some(from)) => crate::produce::Payload::DeadLetterTopic { topic: from, rate },
                (None, None, None) => crate::produce::Payload::Generate { sensors: sensors.max(1), count, rate, seed },
            };
            crate::produce::produce(&brokers, &topic, partitions, &payload)?;
            Ok(())
        }
        Command::Report { input, out, title } => {
            let windows = crate::report::read(&input)?;
            std::fs::write(&out, crate::report::html(&title, &windows)).with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("report: {} windows written to {}", windows.len(), out.display());
            Ok(())
        }
        Command::Query { table, key, stats, scan, value_field, from, to, partition_key, sort_key, endpoint, region, table_output } => {
            let time = |t: Option<String>, flag: &str| -> Result<Option<crate::Timestamp>> {
                t.map(|t| crate::Timestamp::parse_rfc3339(&t).with_context(|| format!("--{flag} `{t}` is not an RFC 3339 time"))).transpose()
            };
            let (from, to) = (time(from, "from")?, time(to, "to")?);
            if stats {
                let q = crate::query::stats::StatsQuery { table, partition_key, sort_key, value_field, keys: key, scan, from, to, endpoint, region };
                let summary = crate::query::stats::run(&q)?;
                let rows: Vec<BTreeMap<String, serde_json::Value>> = summary
                    .iter()
                    .map(|s| serde_json::to_value(s).ok().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
                    .collect();
                if table_output {
                    print!("{}", crate::query::table(&rows));
                } else {
                    for s in &summary {
                        println!("{}", serde_json::to_string(s)?);
                    }
                }
                return Ok(());
            }
            let [key] = <[String; 1]>::try_from(key).map_err(|keys| anyhow::anyhow!("name one --key to read its items ({} given); --stats summarises several", keys.len()))?;
            let q = crate::query::Query { table, partition_key, key, sort_key, from, to, endpoint, region };
            let items = crate::query::run(&q)?;
            if table_output {
                print!("{}", crate::query::table(&items));
            } else {
                for item in &items {
                    println!("{}", serde_json::to_string(item)?);
                }
            }
            eprintln!("{} items", items.len());
            Ok(())
        }
    }
}

fn check(path: &Path, cache: Option<PathBuf>) -> Result<()> {
    let manifest = Manifest::load(path)?;
    let engine = PluginEngine::new(cache)?;
    let stages = Stages::load(&manifest, &engine)?;
    println!("{}: ok ({})", path.display(), manifest.name);
    for kind in StageKind::ALL {
        let fields = |s: &crate::event::Schema| s.fields.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let Some(stage) = stages.get(kind) else {
            println!("  {:<11} {}", kind.name(), stages.describe(kind));
            continue;
        };
        let mut what = Vec::new();
        if let Some(s) = stage.writes() {
            what.push(format!("writes {}", fields(s)));
        }
        if let Some(s) = stage.reads() {
            what.push(format!("reads {}", fields(s)));
        }
        if let Some(acc) = stage.accumulator() {
            what.push(format!("accumulator {acc}"));
        }
        println!("  {:<11} {} (sha256 {}; {})", kind.name(), stage.path().display(), &stage.hash()[..12], what.join("; "));
    }
    Ok(())
}

fn status_table(status: &serde_json::Value) -> String {
    use std::fmt::Write;
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let stats = &status["stats"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {} (pid {}), started {}: {} records, {} events, {} windows written, {} open, {} late, {} failed",
        status["pipeline"].as_str().unwrap_or("?"),
        n(&status["pid"]),
        status["started_at"].as_str().unwrap_or("?"),
        n(&stats["records"]),
        n(&stats["events"]),
        n(&stats["windows"]),
        n(&status["open_windows"]),
        n(&stats["late"]),
        n(&stats["failed"]),
    );
    let _ = writeln!(out, "{:<12} {:>10} {:>7} {:>6} {:>8}  {:<13} {:<27} component", "stage", "records", "errors", "swaps", "refused", "sha256", "loaded");
    for s in status["stages"].as_array().into_iter().flatten() {
        let version = s["accumulator"]["name"].as_str().map(|n| format!(" ({n} v{})", s["accumulator"]["version"])).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>7} {:>6} {:>8}  {:<13} {:<27} {}{version}",
            s["stage"].as_str().unwrap_or("?"),
            n(&s["records"]),
            n(&s["errors"]),
            n(&s["swaps"]),
            n(&s["refused_swaps"]),
            s["sha256"].as_str().unwrap_or("").chars().take(12).collect::<String>(),
            s["loaded_at"].as_str().unwrap_or("?"),
            s["plugin"].as_str().unwrap_or("?"),
        );
        if let Some(why) = s["last_refusal"].as_str() {
            let _ = writeln!(out, "{:<12} last refusal: {why}", "");
        }
    }
    out
}

fn run(path: &Path, cache: Option<PathBuf>, watch: bool, workers: Option<usize>, metrics: Option<std::net::SocketAddr>) -> Result<()> {
    let manifest = Manifest::load(path)?;
    let engine = std::sync::Arc::new(PluginEngine::new(cache)?);
    let _metrics = metrics.map(crate::control::MetricsServer::start).transpose()?;
    // Cleared before the summary below is logged.
    let progress = crate::progress::Progress::start();
    let started = std::time::Instant::now();
    let watch = watch || manifest.control.as_ref().is_some_and(|c| c.watch);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers_asked = workers;
    let asked = workers.unwrap_or(cores);
    let (workers, why) = crate::driver::workers_for(&manifest, asked, manifest.control.is_some() || watch);
    if let Some(why) = why {
        // Said plainly when the user asked for workers; otherwise only in
        // the debug log (every CSV or Kafka run would say it).
        if workers_asked.is_some() {
            tracing::info!("one worker: {why}");
        } else {
            tracing::debug!("one worker: {why}");
        }
    }
    // The input first: a missing file stops the run before the sink is
    // opened (a file sink would be emptied for nothing).
    let source = match &manifest.source {
        crate::manifest::SourceSpec::Kafka(_) => None,
        _ if workers > 1 => None,
        other => Some(crate::source::open(other)?),
    };
    let kafka = matches!(manifest.source, crate::manifest::SourceSpec::Kafka(_));
    if workers > 1 && !kafka {
        let stats = crate::driver::files::run(&manifest, engine, workers)?;
        drop(progress);
        report(&manifest, &stats, started.elapsed());
        return Ok(());
    }
    // Several Kafka workers share one sink and one dead-letter output.
    let shared = if workers > 1 {
        let sinks = crate::sink::open_for_workers(&manifest.sink, workers)?;
        let dead = std::sync::Arc::new(std::sync::Mutex::new(crate::sink::DeadLetters::open(&manifest.dead_letter)?));
        Some((std::cell::RefCell::new(sinks), dead))
    } else {
        None
    };
    let homes = crate::pipeline::KeyHomes::default();
    let load = || -> Result<Pipeline> {
        let pipeline = match &shared {
            Some((sinks, dead)) => {
                let sink = sinks.borrow_mut().pop().context("more pipelines than workers")?;
                Pipeline::load_onto(&manifest, &engine, sink, crate::sink::DeadLetters::shared(dead.clone()))?.with_key_homes(homes.clone())
            }
            None => Pipeline::load(&manifest, &engine)?,
        };
        Ok(pipeline.with_engine(engine.clone()))
    };
    let mut pipeline = load()?;
    // Kept alive for the run; dropping it removes the endpoint file.
    let _control = if manifest.control.is_some() || watch {
        let (requests, taken) = std::sync::mpsc::channel();
        pipeline = pipeline.with_control(taken);
        let stages = pipeline.stages();
        let sources = crate::control::StageSource::loaded_from(crate::control::StageSource::of(&manifest), |kind| stages.get(kind).map(|p| p.hash().to_owned()));
        Some(crate::control::ControlServer::start(&manifest.name, manifest.control.as_ref(), watch, engine.clone(), sources, requests)?)
    } else {
        None
    };
    let stats = match &manifest.source {
        crate::manifest::SourceSpec::Kafka(spec) => {
            // A stream has no end: SIGTERM or Ctrl-C stops it after a last
            // checkpoint (open windows wait in it for the next run).
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed)).context("cannot install the signal handler")?;
            if let Some(c) = &manifest.checkpoint {
                match &c.store {
                    crate::manifest::CheckpointStoreSpec::Folder(dir) => tracing::info!("checkpoints every {:?} in {}", c.interval, dir.display()),
                    crate::manifest::CheckpointStoreSpec::Dynamodb(t) => tracing::info!("checkpoints every {:?} in DynamoDB table {}", c.interval, t.table),
                }
            }
            let every = manifest.checkpoint.as_ref().map_or(std::time::Duration::from_secs(5), |c| c.interval);
            let mut pipelines = vec![pipeline];
            for _ in 1..workers {
                pipelines.push(load()?);
            }
            crate::driver::kafka::run(pipelines, spec, manifest.limits.batch_size, every, stop)?
        }
        _ => pipeline.run_source(source.expect("opened above for every source but Kafka"))?,
    };
    drop(progress);
    report(&manifest, &stats, started.elapsed());
    Ok(())
}

// The end-of-run summary.
fn report(manifest: &Manifest, stats: &crate::pipeline::Stats, elapsed: std::time::Duration) {
    tracing::info!(
        "{}: {} records, {} events, {} windows written (at most {} open at once), {} late, {} failed, in {:.2?}",
        manifest.name,
        stats.records,
        stats.events,
        stats.windows,
        stats.open_windows_peak,
        stats.late,
        stats.failed,
        elapsed
    );
    if let Some(latency) = crate::metrics::global().close_to_item_samples.summary() {
        tracing::info!("window close → item written: {latency}");
    }
    if stats.sessions_merged > 0 {
        tracing::info!("{} session windows merged into an earlier one (an event closed the gap)", stats.sessions_merged);
    }
    if stats.skipped > 0 {
        tracing::info!("{} records skipped: a checkpoint had already absorbed them", stats.skipped);
    }
    if stats.key_partition_conflicts > 0 {
        tracing::warn!(
            "{} times a key turned up in a partition after another: windows must follow the Kafka partitioning (see the README)",
            stats.key_partition_conflicts
        );
    }
    if stats.late + stats.failed > 0 {
        let target = match &manifest.dead_letter {
            crate::manifest::DeadLetterSpec::Log => "the log above".to_owned(),
            crate::manifest::DeadLetterSpec::File(p) => p.display().to_string(),
            crate::manifest::DeadLetterSpec::Kafka { topic, .. } => format!("Kafka topic {topic}"),
        };
        tracing::warn!("{} dead letters: see {target}", stats.late + stats.failed);
    }
}
