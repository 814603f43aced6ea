//! The file driver: a file or standard input, read in batches, on one
//! worker or on several. With several, each worker owns a share of the
//! keys (of the key field, read from the raw JSON: see
//! [`Assigner`](super::route::Assigner)), with their clocks, windows and
//! plugin instances. A file is read by the workers together (see
//! [`SharedFile`]): each segment is split into lines and its keys read
//! once, by whichever worker gets to it first, and every worker copies only
//! its own keys' lines from it (no thread hands records over); standard
//! input can be read once only, so a router sends each record to its
//! worker. Every record of a key reaches one worker in the order it was
//! read, so the windows written are the ones one worker would write; only
//! the order of the output lines between keys differs.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use super::route::{Assigner, key_hash};
use crate::manifest::{Manifest, SourceSpec};
use crate::pipeline::{Pipeline, Stages, Stats};
use crate::plugin::PluginEngine;
use crate::sink::{self, DeadLetters};
use crate::source::{self, Delivery, SharedFile, SharedLinesReader, Source};

/// How often the router logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs the file job of `manifest` on `workers` worker threads (see the
/// module docs; [`workers_for`](super::workers_for) says when that is allowed).
pub fn run(manifest: &Manifest, engine: Arc<PluginEngine>, workers: usize) -> Result<Stats> {
    let field = manifest.events.key_field.clone().ok_or_else(|| anyhow!("several workers need `[stages.key] field`"))?;
    // Each worker loads its own plugin instances before any record is read,
    // so a plugin that does not load stops the run before it starts.
    let mut queues: Vec<SyncSender<Delivery>> = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    // A file: the workers read it together, each keeping its own keys
    // (opened here, so a missing file stops the run before any worker starts).
    let mut readers: Vec<Option<SharedLinesReader>> = match &manifest.source {
        SourceSpec::Jsonl(path) => {
            let key_field = field.clone();
            let mut assigner = Assigner::new(&field, workers);
            let file = SharedFile::open(path, workers, Arc::new(move |line: &[u8]| key_hash(line, &key_field)), Box::new(move |hash| assigner.assign(hash)))?;
            (0..workers).map(|worker| Some(file.reader(worker))).collect()
        }
        _ => (0..workers).map(|_| None).collect(),
    };
    let reads_itself = readers.iter().all(Option::is_some);
    // Opened after the input, so a missing file leaves the output alone.
    let mut sinks = sink::open_for_workers(&manifest.sink, workers)?;
    let dead = Arc::new(Mutex::new(DeadLetters::open(&manifest.dead_letter)?));
    for (worker, reader) in readers.drain(..).enumerate() {
        let (tx, rx): (SyncSender<Delivery>, Receiver<Delivery>) = sync_channel(4);
        if reader.is_none() {
            queues.push(tx);
        }
        let sink = sinks.remove(0);
        let (manifest, engine, dead, ready) = (manifest.clone(), engine.clone(), dead.clone(), ready_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("weir-worker-{worker}"))
            .spawn(move || -> Result<Stats> {
                let stages = match Stages::load(&manifest, &engine) {
                    Ok(stages) => {
                        let _ = ready.send(Ok(()));
                        stages
                    }
                    Err(err) => {
                        let _ = ready.send(Err(err.to_string()));
                        return Err(err.into());
                    }
                };
                let mut pipeline = Pipeline::new(&manifest, stages, sink, DeadLetters::shared(dead)).with_engine(engine);
                let stats = match reader {
                    Some(reader) => pipeline.run_inline(Box::new(reader) as Box<dyn Source>),
                    None => pipeline.run_deliveries(&rx, false),
                };
                stats.with_context(|| format!("worker {worker}"))
            })
            .context("cannot start a worker thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                drop(queues);
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(anyhow!(err));
            }
            Err(_) => break,
        }
    }
    if reads_itself {
        tracing::info!("{workers} workers, reading the file together, each keeping its own keys of `{field}`");
        return join(handles, None);
    }
    tracing::info!("{workers} workers, records shared out by `{field}`");

    // This thread reads and routes: no hand-over between a reader and a
    // router, and each worker's share is built once.
    let mut source = source::open(&manifest.source)?;
    let mut assigner = Assigner::new(&field, workers);
    let (started, mut last_report, mut routed) = (Instant::now(), Instant::now(), 0u64);
    let mut failed = None;
    'read: loop {
        let batch = match source.next_batch(manifest.limits.batch_size) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => batch,
            Err(err) => {
                failed = Some(err);
                break;
            }
        };
        routed += batch.len() as u64;
        let mut parts: Vec<Vec<_>> = (0..workers).map(|_| Vec::with_capacity(batch.len() / workers * 2)).collect();
        for record in batch {
            parts[assigner.worker(&record.value)].push(record);
        }
        for (queue, part) in queues.iter().zip(parts) {
            if !part.is_empty() && queue.send(Delivery::Batch(part)).is_err() {
                // That worker stopped: its error is reported below.
                break 'read;
            }
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            tracing::info!("{routed} records read ({:.0}/s) over {workers} workers", routed as f64 / started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
    }
    for queue in &queues {
        let _ = queue.send(Delivery::End);
    }
    drop(queues);
    join(handles, failed)
}

// Waits for the workers and adds up their counts; the first error wins,
// the reader's (`failed`) first of all.
fn join(handles: Vec<std::thread::JoinHandle<Result<Stats>>>, failed: Option<source::SourceError>) -> Result<Stats> {
    let mut total = Stats::default();
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(stats)) => total.add(&stats),
            Ok(Err(err)) => first_error = first_error.or(Some(err)),
            Err(_) => first_error = first_error.or(Some(anyhow!("a worker panicked"))),
        }
    }
    if let Some(err) = failed {
        return Err(err.into());
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(total),
    }
}
