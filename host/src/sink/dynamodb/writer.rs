//! The DynamoDB sink's writer: a thread of its own that keeps up to
//! `max_in_flight` BatchWriteItem calls going while the pipeline goes on.
//!
//! The pipeline hands it chunks of up to 25 items through a queue of
//! `max_in_flight` places: when DynamoDB falls behind, the queue fills and
//! the pipeline waits (back-pressure), so the items handed off and not yet
//! written never exceed 2 × `max_in_flight` × 25. An item whose key is
//! still being written waits for that write, so the later window lands
//! last. What DynamoDB refuses comes back at the next hand-off to be
//! dead-lettered; an error no retry helps is returned there too, and the
//! pipeline stops. [`Writer::flush`] waits until everything handed off is
//! written: a checkpoint follows only then.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::batch::{Pending, write_batch};
use crate::sink::{Rejection, SinkError};

enum Order {
    Write(Vec<Pending>),
    Flush(std::sync::mpsc::Sender<()>),
}

// What came back from DynamoDB since the pipeline last looked.
#[derive(Default)]
struct Outcome {
    rejected: Vec<Rejection>,
    failed: Option<String>,
}

type Written = (Vec<Pending>, Result<Vec<Rejection>, SinkError>);

/// The background writer of one DynamoDB sink.
pub struct Writer {
    table: String,
    orders: Option<mpsc::Sender<Order>>,
    outcome: Arc<Mutex<Outcome>>,
    /// Chunks handed off and not yet written (queued or in flight).
    outstanding: Arc<AtomicUsize>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread, which runs `runtime` and writes to
    /// `table` with `client`, `in_flight` calls at a time.
    pub fn start(runtime: tokio::runtime::Runtime, client: Client, table: String, in_flight: usize) -> Result<Self, SinkError> {
        let in_flight = in_flight.max(1);
        let (orders, queue) = mpsc::channel(in_flight);
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let outstanding = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (outcome, outstanding, table) = (outcome.clone(), outstanding.clone(), table.clone());
            std::thread::Builder::new()
                .name("weir-dynamodb".into())
                .spawn(move || runtime.block_on(run(client, table, in_flight, queue, outcome, outstanding)))
                .map_err(|source| SinkError::Io { target: "the DynamoDB writer thread".into(), source })?
        };
        Ok(Writer { table, orders: Some(orders), outcome, outstanding, in_flight, thread: Some(thread) })
    }

    /// Whether a chunk handed off now would start at once (a call is free).
    pub fn idle(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) < self.in_flight
    }

    /// Hands `chunk` off (waiting while the queue is full), then returns
    /// what DynamoDB refused since the last look.
    pub fn send(&mut self, chunk: Vec<Pending>) -> Result<Vec<Rejection>, SinkError> {
        if !chunk.is_empty() {
            self.outstanding.fetch_add(1, Ordering::AcqRel);
            self.order(Order::Write(chunk))?;
        }
        self.take()
    }

    /// Waits until everything handed off is written or refused; returns
    /// what was refused.
    pub fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        let (done, wait) = std::sync::mpsc::channel();
        self.order(Order::Flush(done))?;
        if wait.recv().is_err() {
            return Err(self.stopped());
        }
        self.take()
    }

    /// What DynamoDB refused since the last look, or the error that must
    /// stop the pipeline.
    pub fn take(&mut self) -> Result<Vec<Rejection>, SinkError> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(message) = &outcome.failed {
            return Err(SinkError::Dynamo { table: self.table.clone(), message: message.clone() });
        }
        Ok(std::mem::take(&mut outcome.rejected))
    }

    fn order(&mut self, order: Order) -> Result<(), SinkError> {
        let Some(orders) = &self.orders else { return Err(self.stopped()) };
        if orders.blocking_send(order).is_err() {
            return Err(self.stopped());
        }
        Ok(())
    }

    fn stopped(&self) -> SinkError {
        match self.take_failure() {
            Some(message) => SinkError::Dynamo { table: self.table.clone(), message },
            None => SinkError::Dynamo { table: self.table.clone(), message: "the writer thread stopped".into() },
        }
    }

    fn take_failure(&self) -> Option<String> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner()).failed.clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The thread writes what it was handed, then ends.
        self.orders.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(client: Client, table: String, in_flight: usize, mut queue: mpsc::Receiver<Order>, outcome: Arc<Mutex<Outcome>>, outstanding: Arc<AtomicUsize>) {
    let mut running: JoinSet<Written> = JoinSet::new();
    // Keys of the items being written.
    let mut writing: HashSet<(String, i64)> = HashSet::new();
    let settle = |done: Result<Written, tokio::task::JoinError>, writing: &mut HashSet<(String, i64)>| {
        outstanding.fetch_sub(1, Ordering::AcqRel);
        let mut outcome = outcome.lock().unwrap_or_else(|e| e.into_inner());
        let (chunk, result) = match done {
            Ok(done) => done,
            Err(join) => {
                outcome.failed.get_or_insert_with(|| format!("a write task failed: {join}"));
                return;
            }
        };
        for p in &chunk {
            writing.remove(&p.at);
        }
        match result {
            Ok(rejected) => {
                let now = Instant::now();
                let metrics = crate::metrics::global();
                for p in &chunk {
                    if rejected.iter().any(|r| r.result.key == p.window.key && r.result.start == p.window.start && r.result.id == p.window.id) {
                        continue;
                    }
                    if let Some(closed) = p.closed_at {
                        let took = now.saturating_duration_since(closed);
                        metrics.close_to_item.observe(took);
                        metrics.close_to_item_samples.observe(took);
                    }
                }
                outcome.rejected.extend(rejected);
            }
            Err(SinkError::Dynamo { message, .. }) => {
                outcome.failed.get_or_insert(message);
            }
            Err(err) => {
                outcome.failed.get_or_insert(err.to_string());
            }
        }
    };
    loop {
        tokio::select! {
            Some(done) = running.join_next(), if !running.is_empty() => settle(done, &mut writing),
            order = queue.recv(), if running.len() < in_flight => match order {
                None => break,
                Some(Order::Write(chunk)) => {
                    // The later write of a key must land last.
                    while chunk.iter().any(|p| writing.contains(&p.at)) {
                        let Some(done) = running.join_next().await else { break };
                        settle(done, &mut writing);
                    }
                    writing.extend(chunk.iter().map(|p| p.at.clone()));
                    let (client, table) = (client.clone(), table.clone());
                    running.spawn(async move {
                        let result = write_batch(&client, &table, &chunk).await;
                        (chunk, result)
                    });
                }
                Some(Order::Flush(done)) => {
                    while let Some(written) = running.join_next().await {
                        settle(written, &mut writing);
                    }
                    let _ = done.send(());
                }
            },
        }
    }
    while let Some(done) = running.join_next().await {
        settle(done, &mut writing);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::Timestamp;
    use crate::sink::WindowResult;

    // A stand-in for DynamoDB that answers every BatchWriteItem with "all
    // processed", but only once the gate is open; counts the requests it
    // holds at once.
    struct HeldDynamo {
        url: String,
        open: Arc<AtomicBool>,
        holding: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        answered: Arc<AtomicUsize>,
    }

    impl HeldDynamo {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let (open, holding, most, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let shared = (open.clone(), holding.clone(), most.clone(), answered.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    let (open, holding, most, answered) = shared.clone();
                    std::thread::spawn(move || {
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut out = stream;
                        loop {
                            let mut length = 0usize;
                            loop {
                                let mut line = String::new();
                                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                    return;
                                }
                                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                                    length = v.trim().parse().unwrap();
                                }
                                if line == "\r\n" {
                                    break;
                                }
                            }
                            let mut body = vec![0; length];
                            reader.read_exact(&mut body).unwrap();
                            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            while !open.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            holding.fetch_sub(1, Ordering::SeqCst);
                            answered.fetch_add(1, Ordering::SeqCst);
                            let reply = r#"{"UnprocessedItems":{}}"#;
                            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n", reply.len());
                            if out.write_all(head.as_bytes()).and_then(|_| out.write_all(reply.as_bytes())).is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            HeldDynamo { url, open, holding, most, answered }
        }
    }

    fn chunk(n: usize, first: usize) -> Vec<Pending> {
        (first..first + n)
            .map(|i| {
                let key = format!("k{i}");
                let window = WindowResult { key: key.clone(), id: 0, start: Timestamp(0), end: Timestamp(1), count: 1, object: "{}".into(), acc: Vec::new(), closed_at: None };
                let item = [("key".to_owned(), AttributeValue::S(key.clone())), ("start".to_owned(), AttributeValue::N("0".into()))].into();
                Pending { item, window, at: (key, 0), closed_at: Some(Instant::now()) }
            })
            .collect()
    }

    #[test]
    fn a_slow_dynamodb_holds_the_pipeline_back_after_a_bounded_queue_and_a_flush_waits_for_all() {
        let dynamo = HeldDynamo::start();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&dynamo.url)
            .build();
        let client = Client::from_conf(config);
        let samples_before = crate::metrics::global().close_to_item.count();
        // Two calls in flight, two chunks queued: the fifth hand-off waits.
        let mut writer = Writer::start(runtime, client, "t".into(), 2).unwrap();
        for i in 0..4 {
            writer.send(chunk(25, i * 25)).unwrap();
        }
        let started = Instant::now();
        while dynamo.holding.load(Ordering::SeqCst) < 2 {
            assert!(started.elapsed() < Duration::from_secs(10), "the writer did not start two calls");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!writer.idle(), "every call is busy");
        let (handed, done) = std::sync::mpsc::channel();
        let blocked = std::thread::spawn(move || {
            writer.send(chunk(25, 100)).unwrap();
            handed.send(()).unwrap();
            let rejected = writer.flush().unwrap();
            assert!(rejected.is_empty());
            writer
        });
        assert!(done.recv_timeout(Duration::from_millis(500)).is_err(), "a fifth chunk was taken while DynamoDB held four");
        assert_eq!(dynamo.most.load(Ordering::SeqCst), 2, "never more than max_in_flight calls at once");
        dynamo.open.store(true, Ordering::SeqCst);
        done.recv_timeout(Duration::from_secs(10)).expect("the hand-off went through once DynamoDB answered");
        let writer = blocked.join().unwrap();
        assert_eq!(dynamo.answered.load(Ordering::SeqCst), 5, "the flush waited for every chunk");
        assert!(dynamo.most.load(Ordering::SeqCst) <= 2);
        assert!(crate::metrics::global().close_to_item.count() >= samples_before + 125, "close → item measured for each item");
        drop(writer);
    }
}
