use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::{Rejection, Sink, SinkError, WindowResult};

/// One line per result: the object as JSON, or one of its string fields as
/// raw text when `text_field` is set (for output meant for people).
pub struct JsonLinesSink {
    out: Box<dyn Write + Send>,
    target: String,
    text_field: Option<String>,
}

impl JsonLinesSink {
    /// Writes to standard output.
    pub fn stdout(text_field: Option<String>) -> Self {
        JsonLinesSink { out: Box::new(io::stdout()), target: "stdout".to_owned(), text_field }
    }

    /// Creates (or truncates) `path`.
    pub fn create(path: &Path, text_field: Option<String>) -> Result<Self, SinkError> {
        let target = path.display().to_string();
        let file = File::create(path).map_err(|source| SinkError::Io { target: target.clone(), source })?;
        Ok(JsonLinesSink { out: Box::new(BufWriter::new(file)), target, text_field })
    }

    /// Writes to any writer, for tests.
    pub fn to_writer(out: Box<dyn Write + Send>, text_field: Option<String>) -> Self {
        JsonLinesSink { out, target: "writer".to_owned(), text_field }
    }

    fn io(&self, source: io::Error) -> SinkError {
        SinkError::Io { target: self.target.clone(), source }
    }
}

impl Sink for JsonLinesSink {
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError> {
        let written = match &self.text_field {
            None => writeln!(self.out, "{}", result.object),
            Some(field) => {
                let object: serde_json::Value = serde_json::from_str(&result.object).unwrap_or_default();
                let Some(text) = object.get(field).and_then(|v| v.as_str()) else {
                    return Err(SinkError::Rejected(Rejection::of(result, format!("the object has no string field `{field}` to write"))));
                };
                writeln!(self.out, "{text}")
            }
        };
        written.map_err(|err| self.io(err))
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.out.flush().map_err(|err| self.io(err))?;
        Ok(Vec::new())
    }
}
