//! The end of the data path: closed windows are formatted (the format
//! stage), written (the sink), and what cannot go on — a record a stage
//! failed or the clock called late, a window the format stage fails or the
//! sink refuses — goes to the dead-letter output with what it takes to
//! replay it. Time the sink holds the pipeline up is counted, so the clocks
//! can leave it out.

use std::time::{Duration, Instant};

use crate::Timestamp;
use crate::event::Identity;
use crate::plugin::ClosedWindow;
use crate::sink::{DeadLetter, DeadLetterKind, DeadLetters, Rejection, Sink, SinkError, WindowResult};
use crate::source::SourceRecord;
use crate::stages::Stages;
use crate::state::{OpenWindow, WindowId};

/// A sink call that takes this long held the pipeline up.
const SINK_STALL: Duration = Duration::from_millis(500);

/// Format, sink and dead letters, with their counts.
pub struct Emitter {
    sink: Box<dyn Sink>,
    dead: DeadLetters,
    /// Windows written (less those the sink refused later).
    written: u64,
    /// Microseconds the sink held the pipeline up.
    stalled: i64,
}

impl Emitter {
    /// Writes to `sink`, dead letters to `dead`.
    pub fn new(sink: Box<dyn Sink>, dead: DeadLetters) -> Self {
        Emitter { sink, dead, written: 0, stalled: 0 }
    }

    /// Windows written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Late records and failed records or windows sent to the dead letters.
    pub fn dead_counts(&self) -> (u64, u64) {
        (self.dead.late(), self.dead.failed())
    }

    /// Microseconds the sink has held the pipeline up so far.
    pub fn stalled(&self) -> i64 {
        self.stalled
    }

    /// Formats closed windows (`batch_size` a call) and writes them; a
    /// window the format stage fails, or the sink refuses, is dead-lettered
    /// with what it takes to replay it. Returns how many windows the format
    /// stage was given, and how many of them it failed.
    pub fn emit(&mut self, stages: &mut Stages, closed: Vec<(WindowId, OpenWindow)>, batch_size: usize) -> Result<(u64, u64), SinkError> {
        let (mut formatted, mut format_errors) = (0, 0);
        // The windows closed just before this call.
        let closed_at = Instant::now();
        let metrics = crate::metrics::global();
        let mut closed = closed.into_iter().peekable();
        while closed.peek().is_some() {
            let chunk: Vec<ClosedWindow> = closed
                .by_ref()
                .take(batch_size)
                .map(|(id, w)| ClosedWindow { key: id.key, id: id.index, start: w.start.0, end: w.end.0, count: w.count, acc: w.acc.unwrap_or_default() })
                .collect();
            formatted += chunk.len() as u64;
            let objects = stages.format(&chunk);
            for (object, w) in objects.into_iter().zip(chunk) {
                // The window as it will be written or dead-lettered.
                let mut result = WindowResult {
                    key: w.key,
                    id: w.id,
                    start: Timestamp(w.start),
                    end: Timestamp(w.end),
                    count: w.count,
                    object: String::new(),
                    acc: w.acc,
                    closed_at: Some(closed_at),
                };
                let object = match object {
                    Ok(object) => object,
                    Err(reason) => {
                        format_errors += 1;
                        self.dead_window(stages.accumulator(), &result, None, "format", reason)?;
                        continue;
                    }
                };
                if !object.trim_start().starts_with('{') || serde_json::from_str::<serde::de::IgnoredAny>(&object).is_err() {
                    format_errors += 1;
                    let reason = format!("format returned something that is not a JSON object: {}", truncate(&object, 200));
                    self.dead_window(stages.accumulator(), &result, Some(&object), "format", reason)?;
                    continue;
                }
                result.object = object;
                let writing = Instant::now();
                let written = self.sink.write(&result);
                let wrote = Instant::now();
                self.note_stall(wrote - writing);
                metrics.close_to_sink.observe(wrote - closed_at);
                match written {
                    Ok(()) => self.written += 1,
                    Err(SinkError::Rejected(rejection)) => self.dead_rejection(stages.accumulator(), rejection)?,
                    Err(SinkError::RejectedMany(rejections)) => {
                        // Those came from earlier writes in the same batch; this one went through.
                        self.written += 1;
                        for rejection in rejections {
                            self.written = self.written.saturating_sub(1);
                            self.dead_rejection(stages.accumulator(), rejection)?;
                        }
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        // A sink writing in the background starts on the last few now.
        let polling = Instant::now();
        let rejections = self.sink.poll();
        self.note_stall(polling.elapsed());
        for rejection in rejections? {
            self.written = self.written.saturating_sub(1);
            self.dead_rejection(stages.accumulator(), rejection)?;
        }
        Ok((formatted, format_errors))
    }

    /// Sends a record a stage failed, or the clock called late, to the
    /// dead-letter output.
    pub fn dead_record(&mut self, record: &SourceRecord, kind: DeadLetterKind, stage: &str, reason: String, key: Option<&str>) -> Result<(), SinkError> {
        crate::metrics::global().dead_letter(stage, kind_name(kind));
        self.dead.send(DeadLetter {
            kind,
            stage: stage.to_owned(),
            reason,
            source: record.origin.source.to_string(),
            partition: record.origin.partition,
            position: record.origin.position,
            key: key.map(str::to_owned),
            value: record.value.clone(),
            timestamp_us: Some(record.timestamp.0),
            record_key: record.key.clone(),
            headers: record.headers.clone(),
        })?;
        Ok(())
    }

    // Time the pipeline spent blocked on its sink (an outage, retries) is
    // not system time for the clocks: the records waited in the source, so
    // they must not find their windows closed and themselves late.
    fn note_stall(&mut self, took: Duration) {
        if took >= SINK_STALL {
            self.stalled += took.as_micros() as i64;
            tracing::info!("the sink held the pipeline for {took:.1?}; that time does not advance the watermarks");
        }
    }

    /// Flushes the sink (what it refuses is dead-lettered) and the
    /// dead-letter output.
    pub fn flush(&mut self, accumulator: &Identity) -> Result<(), SinkError> {
        let flushing = Instant::now();
        let rejections = self.sink.flush();
        self.note_stall(flushing.elapsed());
        for rejection in rejections? {
            self.written = self.written.saturating_sub(1);
            self.dead_rejection(accumulator, rejection)?;
        }
        self.dead.flush()?;
        Ok(())
    }

    /// Sends an open window that could not be merged into its session
    /// (the fold's `merge` failed) to the dead-letter output, with what it
    /// takes to replay it.
    pub fn dead_unmerged(&mut self, accumulator: &Identity, id: WindowId, w: OpenWindow, reason: String) -> Result<(), SinkError> {
        let result = WindowResult { key: id.key, id: id.index, start: w.start, end: w.end, count: w.count, object: String::new(), acc: w.acc.unwrap_or_default(), closed_at: None };
        self.dead_window(accumulator, &result, None, "merge", reason)
    }

    fn dead_rejection(&mut self, accumulator: &Identity, r: Rejection) -> Result<(), SinkError> {
        let object = r.result.object.clone();
        self.dead_window(accumulator, &r.result, Some(&object), "sink", format!("sink: {}", r.reason))
    }

    // A window that cannot go on, with all it takes to replay it: its
    // bounds and count, the accumulator (hex, with the fold plugin's state
    // version) and the formatted object when there is one.
    fn dead_window(&mut self, accumulator: &Identity, w: &WindowResult, object: Option<&str>, stage: &str, reason: String) -> Result<(), SinkError> {
        let object = object.map(|o| serde_json::from_str::<serde_json::Value>(o).unwrap_or_else(|_| serde_json::Value::String(o.to_owned())));
        let value = serde_json::json!({
            "key": w.key, "id": w.id, "start": w.start.to_string(), "end": w.end.to_string(), "count": w.count,
            "accumulator": accumulator, "acc_hex": hex::encode(&w.acc), "object": object,
        });
        crate::metrics::global().dead_letter(stage, "failed");
        self.dead.send(DeadLetter {
            kind: DeadLetterKind::Failed,
            stage: stage.to_owned(),
            reason,
            source: "window".to_owned(),
            partition: None,
            position: 0,
            key: Some(w.key.clone()),
            value: value.to_string().into_bytes(),
            timestamp_us: None,
            record_key: None,
            headers: Vec::new(),
        })?;
        Ok(())
    }
}

fn kind_name(kind: DeadLetterKind) -> &'static str {
    match kind {
        DeadLetterKind::Late => "late",
        DeadLetterKind::Failed => "failed",
    }
}

fn truncate(text: &str, max: usize) -> &str {
    text.char_indices().nth(max).map_or(text, |(i, _)| &text[..i])
}
