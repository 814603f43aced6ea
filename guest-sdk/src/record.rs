use serde::de::DeserializeOwned;

use crate::{Error, Event, Timestamp};

/// A raw record as the source read it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The value: a Kafka message value, a JSON line, or a CSV row as a JSON
    /// object keyed by the header.
    pub value: &'a [u8],
    /// The Kafka message key, when there is one.
    pub key: Option<&'a [u8]>,
    /// The source's time for the record: the Kafka timestamp, or when the
    /// host read it from a file.
    pub timestamp: Timestamp,
    /// The Kafka partition; `None` for files and stdin.
    pub partition: Option<i32>,
    /// The Kafka offset, or the line number in a file.
    pub offset: i64,
    /// The Kafka headers, in order (empty for files).
    pub headers: &'a [Header],
}

/// A Kafka message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: Vec<u8>,
}

impl<'a> Record<'a> {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|h| h.name == name).map(|h| h.value.as_slice())
    }

    /// The value parsed as JSON into `T`; the error names what did not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.value).map_err(|err| Error::msg(format!("value is not the expected JSON: {err}")))
    }

    /// The value as UTF-8 text.
    pub fn text(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.value).map_err(|err| Error::msg(format!("value is not UTF-8: {err}")))
    }
}

/// Where a deserialize stage puts the events it makes of a record.
pub struct Emitter<'a> {
    columns: &'a mut crate::event::Columns,
    emitted: &'a mut u32,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(columns: &'a mut crate::event::Columns, emitted: &'a mut u32) -> Self {
        Emitter { columns, emitted }
    }

    /// Emits `event`. It must have every required field the stage's
    /// [`writes`](crate::DeserializeStage::writes) declares, with its type,
    /// and no other; the error says which field does not fit.
    pub fn emit(&mut self, event: Event) -> Result<(), Error> {
        self.columns.push(event)?;
        *self.emitted += 1;
        Ok(())
    }
}
