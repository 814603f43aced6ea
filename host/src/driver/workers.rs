//! Pipelines on worker threads for the Kafka driver. Each worker owns the
//! partitions handed to it — their clocks, windows and plugin instances —
//! and processes their records in the order they were polled. The driver's
//! thread polls and talks to the workers through bounded queues: records
//! go without a reply (a full queue holds the poller back), while taking
//! and releasing partitions, checkpoints and the end wait for the workers'
//! replies, which come after everything queued before them. So a revoke
//! checkpoints a partition only once every record polled for it before the
//! revoke has been processed, as on one thread.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::Timestamp;
use crate::pipeline::{Pipeline, PipelineError, Stats};
use crate::source::SourceRecord;
use crate::state::checkpoint::{Owner, PartitionId};

/// Batches a worker may have queued before the poller waits for it.
const QUEUE: usize = 2;

type Offsets = Vec<(PartitionId, i64)>;

enum Job {
    Records(Vec<SourceRecord>, Timestamp),
    Take(PartitionId, Owner, Timestamp, Sender<Result<Option<i64>, PipelineError>>),
    SkipBelow(PartitionId, i64),
    CaughtUp(i32, Timestamp),
    Release(Vec<PartitionId>, Timestamp, Sender<Result<Offsets, PipelineError>>),
    Checkpoint(Timestamp, Sender<Result<Offsets, PipelineError>>),
    Finish(Sender<Result<Stats, PipelineError>>),
}

struct Worker {
    jobs: SyncSender<Job>,
    thread: Option<JoinHandle<()>>,
}

// What the workers tell the driver without being asked.
#[derive(Default)]
struct Board {
    /// The first error a worker met processing records.
    failure: Option<PipelineError>,
    /// Each worker's counts after its last job.
    stats: Vec<Stats>,
}

/// The pipelines of a Kafka run, one per worker thread, and which worker
/// owns which partition.
pub struct Workers {
    workers: Vec<Worker>,
    /// Owned partitions: (partition, topic) → worker. Looked up per record
    /// by number first, with no key to build.
    homes: Vec<(i32, Arc<str>, usize)>,
    board: Arc<Mutex<Board>>,
}

impl Workers {
    /// Starts one worker thread per pipeline.
    pub fn start(pipelines: Vec<Pipeline>) -> std::io::Result<Workers> {
        let board = Arc::new(Mutex::new(Board { failure: None, stats: vec![Stats::default(); pipelines.len()] }));
        let mut workers = Vec::with_capacity(pipelines.len());
        for (index, pipeline) in pipelines.into_iter().enumerate() {
            let (jobs, queue) = sync_channel(QUEUE);
            let board = board.clone();
            let thread = std::thread::Builder::new().name(format!("weir-worker-{index}")).spawn(move || work(index, pipeline, queue, &board))?;
            workers.push(Worker { jobs, thread: Some(thread) });
        }
        Ok(Workers { workers, homes: Vec::new(), board })
    }

    /// The first error a worker met processing records, once.
    pub fn failure(&self) -> Option<PipelineError> {
        self.board.lock().expect("board lock").failure.take()
    }

    /// The counts of every worker, added up.
    pub fn stats(&self) -> Stats {
        let board = self.board.lock().expect("board lock");
        let mut total = Stats::default();
        for one in &board.stats {
            total.add(one);
        }
        total
    }

    fn home(&self, topic: &str, partition: i32) -> Option<usize> {
        self.homes.iter().find(|(p, t, _)| *p == partition && &**t == topic).map(|(_, _, w)| *w)
    }

    fn send(&self, worker: usize, job: Job) -> Result<(), PipelineError> {
        self.workers[worker].jobs.send(job).map_err(|_| self.stopped(worker))
    }

    // A worker that is gone: its own error, if it left one, else this.
    fn stopped(&self, worker: usize) -> PipelineError {
        self.failure().unwrap_or(PipelineError::WorkerStopped { worker })
    }

    fn wait<T>(&self, worker: usize, reply: Receiver<Result<T, PipelineError>>) -> Result<T, PipelineError> {
        reply.recv().map_err(|_| self.stopped(worker))?
    }

    /// Gives `id` to the worker that owns the fewest partitions, which
    /// restores its checkpoint (see [`Pipeline::take_partition`]). Returns
    /// the checkpoint's next offset.
    pub fn take_partition(&mut self, id: &PartitionId, owner: &Owner, now: Timestamp) -> Result<Option<i64>, PipelineError> {
        let worker = match self.home(&id.topic, id.partition) {
            Some(worker) => worker,
            None => {
                let owns = |worker: usize| self.homes.iter().filter(|(_, _, w)| *w == worker).count();
                let worker = (0..self.workers.len()).min_by_key(|&w| (owns(w), w)).expect("at least one worker");
                self.homes.push((id.partition, Arc::from(id.topic.as_str()), worker));
                worker
            }
        };
        let (reply, answer) = channel();
        self.send(worker, Job::Take(id.clone(), owner.clone(), now, reply))?;
        self.wait(worker, answer)
    }

    /// Records of `id` below `offset` were absorbed before: its worker
    /// skips them.
    pub fn skip_below(&self, id: &PartitionId, offset: i64) -> Result<(), PipelineError> {
        match self.home(&id.topic, id.partition) {
            Some(worker) => self.send(worker, Job::SkipBelow(id.clone(), offset)),
            None => Ok(()),
        }
    }

    /// Every record of partition `partition` there is for now has been read.
    pub fn caught_up(&self, partition: i32, now: Timestamp) -> Result<(), PipelineError> {
        for worker in 0..self.workers.len() {
            self.send(worker, Job::CaughtUp(partition, now))?;
        }
        Ok(())
    }

    /// Hands each record to the worker that owns its partition, and lets
    /// every other worker's clocks run to `now`. Returns once the records
    /// are queued; a worker's error shows in [`Workers::failure`].
    pub fn process(&self, records: Vec<SourceRecord>, now: Timestamp) -> Result<(), PipelineError> {
        let mut parts: Vec<Vec<SourceRecord>> = (0..self.workers.len()).map(|_| Vec::new()).collect();
        if self.workers.len() == 1 {
            parts[0] = records;
        } else {
            for record in records {
                let worker = self.home(&record.origin.source, record.origin.partition.unwrap_or(-1)).unwrap_or(0);
                parts[worker].push(record);
            }
        }
        for (worker, part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                // Only a tick: a busy worker's clocks move with its records.
                match self.workers[worker].jobs.try_send(Job::Records(part, now)) {
                    Ok(()) | Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => return Err(self.stopped(worker)),
                }
            } else {
                self.send(worker, Job::Records(part, now))?;
            }
        }
        Ok(())
    }

    /// Checkpoints every partition (each worker its own) once the records
    /// queued so far are processed. Returns the offsets now safe to commit.
    pub fn checkpoint(&self, now: Timestamp) -> Result<Offsets, PipelineError> {
        let mut answers = Vec::with_capacity(self.workers.len());
        for worker in 0..self.workers.len() {
            let (reply, answer) = channel();
            self.send(worker, Job::Checkpoint(now, reply))?;
            answers.push(answer);
        }
        let mut offsets = Vec::new();
        for (worker, answer) in answers.into_iter().enumerate() {
            offsets.extend(self.wait(worker, answer)?);
        }
        Ok(offsets)
    }

    /// Stops owning `which` (a revoke): each is checkpointed by its worker
    /// once the records queued for it are processed, then dropped. Returns
    /// the offsets to commit.
    pub fn release_partitions(&mut self, which: &[PartitionId], now: Timestamp) -> Result<Offsets, PipelineError> {
        let mut by_worker: HashMap<usize, Vec<PartitionId>> = HashMap::new();
        for id in which {
            if let Some(worker) = self.home(&id.topic, id.partition) {
                by_worker.entry(worker).or_default().push(id.clone());
            }
        }
        self.homes.retain(|(p, t, _)| !which.iter().any(|id| id.partition == *p && *id.topic == **t));
        let mut answers = Vec::new();
        for (worker, ids) in by_worker {
            let (reply, answer) = channel();
            self.send(worker, Job::Release(ids, now, reply))?;
            answers.push((worker, answer));
        }
        let mut offsets = Vec::new();
        for (worker, answer) in answers {
            offsets.extend(self.wait(worker, answer)?);
        }
        Ok(offsets)
    }

    /// Closes every open window (see [`Pipeline::finish`]) on every worker.
    pub fn finish(&self) -> Result<Stats, PipelineError> {
        let mut answers = Vec::with_capacity(self.workers.len());
        for worker in 0..self.workers.len() {
            let (reply, answer) = channel();
            self.send(worker, Job::Finish(reply))?;
            answers.push(answer);
        }
        let mut total = Stats::default();
        for (worker, answer) in answers.into_iter().enumerate() {
            total.add(&self.wait(worker, answer)?);
        }
        Ok(total)
    }
}

impl Drop for Workers {
    // Ends every worker's queue and waits for the threads.
    fn drop(&mut self) {
        let threads: Vec<JoinHandle<()>> = self.workers.iter_mut().filter_map(|w| w.thread.take()).collect();
        self.workers.clear();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

// One worker's loop: jobs in order until the queue ends. After a failed
// batch it drops further records (the run is stopping) and answers every
// request with "stopped"; the driver reports the failure itself. Its
// counts go on the board before each reply, so a reply's sender sees them.
fn work(index: usize, mut pipeline: Pipeline, jobs: Receiver<Job>, board: &Mutex<Board>) {
    let mut failed = false;
    let stopped = || PipelineError::WorkerStopped { worker: index };
    let publish = |pipeline: &Pipeline| board.lock().expect("board lock").stats[index] = pipeline.stats();
    for job in jobs {
        match job {
            Job::Records(records, now) => {
                if failed {
                    continue;
                }
                if let Err(err) = pipeline.process(records, now) {
                    tracing::error!("worker {index}: {err}");
                    failed = true;
                    board.lock().expect("board lock").failure.get_or_insert(err);
                }
                publish(&pipeline);
            }
            Job::SkipBelow(id, offset) => pipeline.skip_below(&id, offset),
            Job::CaughtUp(partition, now) => pipeline.caught_up(partition, now),
            Job::Take(id, owner, now, reply) => {
                pipeline.set_owner(owner);
                let result = if failed { Err(stopped()) } else { pipeline.take_partition(&id, now) };
                publish(&pipeline);
                let _ = reply.send(result);
            }
            Job::Release(ids, now, reply) => {
                let result = if failed { Err(stopped()) } else { pipeline.release_partitions(&ids, now) };
                publish(&pipeline);
                let _ = reply.send(result);
            }
            Job::Checkpoint(now, reply) => {
                let result = if failed { Err(stopped()) } else { pipeline.checkpoint(None, now) };
                publish(&pipeline);
                let _ = reply.send(result);
            }
            Job::Finish(reply) => {
                let result = if failed { Err(stopped()) } else { pipeline.finish() };
                publish(&pipeline);
                let _ = reply.send(result);
            }
        }
    }
}
