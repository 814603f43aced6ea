use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Emitter, Error, Events, Identity, Record, Row, Schema, Timestamp};

/// What every stage has: a config from the manifest and a constructor that
/// may refuse it.
///
/// The host calls [`Plugin::new`] once per stage, before any record flows;
/// an `Err` stops the pipeline (or fails `weir check`) with its message.
pub trait Plugin: Sized + 'static {
    /// The stage's `config` table from the manifest, as serde reads it from
    /// JSON. A stage without a `config` table gets `{}`. Use
    /// `serde::de::IgnoredAny` for a stage that takes none.
    type Config: DeserializeOwned;

    /// Builds the stage from its config, or says what is wrong with it.
    fn new(config: Self::Config) -> Result<Self, Error>;
}

/// Turns raw records (a Kafka message, a file line, a CSV row) into typed
/// events. Most pipelines do not need one: the host's built-in JSON decoder
/// (`[stages.deserialize] builtin = "json"`) decodes exactly the fields the
/// later stages read.
pub trait DeserializeStage: Plugin {
    /// The fields of the events it emits. The host checks the later stages
    /// read only fields written here, with these types.
    fn writes(&self) -> Schema;

    /// Emits zero or more events for `record`. Returning `Err` sends the
    /// record to the dead-letter output with the message, and takes back any
    /// event already emitted for it.
    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error>;
}

/// Says which key an event belongs to; windows are per key. Most pipelines
/// key by a field in the host instead (`[stages.key] field = "device"`).
pub trait KeyStage: Plugin {
    /// The fields it reads; the host sends exactly these.
    fn reads(&self) -> Schema;

    /// The event's key. `Err` dead-letters the event.
    fn key(&self, event: &Row<'_>) -> Result<String, Error>;
}

/// Folds events into a window's accumulator (Bytewax's builder and folder).
///
/// The host keeps the accumulator between calls as JSON (so a format stage
/// in another language can read it), checkpoints it, and hands it back, so
/// never keep window state in `self`.
pub trait FoldStage: Plugin {
    /// The accumulator; it must round-trip through JSON (no infinities).
    type Acc: Serialize + DeserializeOwned;

    /// The fields it reads; the host sends exactly these.
    fn reads(&self) -> Schema;

    /// What its accumulator is. Raise the version whenever `Acc` changes
    /// shape, so the host can tell old state from new; the format stage
    /// must name the same identity.
    fn accumulator(&self) -> Identity;

    /// A new, empty accumulator for a window that just opened.
    fn init(&self) -> Self::Acc;

    /// Folds one event in. On `Err` the event is dead-lettered: return the
    /// error before changing `acc`, since the host keeps whatever `acc` holds.
    fn fold(&self, acc: &mut Self::Acc, event: &Row<'_>) -> Result<(), Error>;

    /// Folds a run of one window's events in, as columns, and returns the
    /// events that failed (index in the run, why). The default calls
    /// [`FoldStage::fold`] per event; override it to work on whole columns
    /// (`events.floats("temp")`), which is what makes a fold fast.
    fn fold_events(&self, acc: &mut Self::Acc, events: &Events<'_>) -> Vec<(usize, Error)> {
        events.rows().enumerate().filter_map(|(i, row)| self.fold(acc, &row).err().map(|err| (i, err))).collect()
    }

    /// Reads an accumulator that a plugin with identity `from` wrote, so
    /// open windows survive a hot swap (or a checkpoint restore) to this
    /// plugin. Decode the old shape with [`decode_state`](crate::decode_state)
    /// and build the new one. An `Err` refuses the swap and the old plugin
    /// keeps running.
    ///
    /// The default migrates nothing: any other identity is refused.
    fn migrate(&self, from: &Identity, old: &[u8]) -> Result<Self::Acc, Error> {
        let _ = old;
        Err(Error::msg(format!(
            "cannot read accumulators `{from}`: this plugin writes `{}` and does not implement FoldStage::migrate",
            self.accumulator()
        )))
    }

    /// Merges the accumulator of window `from` into `into`'s: two session
    /// windows became one because an event closed the gap between them
    /// (Bytewax's `merger`). Both were built by this fold. An `Err` keeps
    /// `into` as it was and dead-letters the `from` window.
    ///
    /// The default refuses: a fold used with session windows must
    /// implement it (tumbling, sliding and collect windows never merge).
    fn merge(&self, into: &mut Self::Acc, from: Self::Acc) -> Result<(), Error> {
        let _ = (into, from);
        Err(Error::msg(format!(
            "cannot merge session windows: the fold writing `{}` does not implement FoldStage::merge",
            self.accumulator()
        )))
    }
}

/// Decodes accumulator bytes as the SDKs encode them (JSON), e.g. an old
/// accumulator shape inside [`FoldStage::migrate`].
pub fn decode_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    crate::__rt::decode(bytes, "accumulator")
}

/// Shapes a closed window into a JSON object for the sink.
pub trait FormatStage: Plugin {
    /// The accumulator, as the fold stage builds it.
    type Acc: DeserializeOwned;
    /// What to write; it must serialize to a JSON object.
    type Output: Serialize;

    /// The accumulator it reads: the fold stage's identity.
    fn accumulator(&self) -> Identity;

    /// Formats one closed window. `Err` dead-letters the window.
    fn format(&self, window: &Window, acc: Self::Acc) -> Result<Self::Output, Error>;
}

/// A closed window, as the format stage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The key its events share.
    pub key: String,
    /// For tumbling windows the number of window lengths since the manifest's
    /// `align_to` (Bytewax's window id); for collect windows a sequence
    /// number per key.
    pub id: i64,
    /// First instant inside the window.
    pub start: Timestamp,
    /// First instant after the window.
    pub end: Timestamp,
    /// How many events were folded into it.
    pub count: u64,
}
