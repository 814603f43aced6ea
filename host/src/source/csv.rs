use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Origin, Source, SourceError, SourceRecord};
use crate::Timestamp;

/// A CSV file with a header row. Each row becomes a JSON object keyed by the
/// header, every value a JSON string exactly as written (no number guessing:
/// the plugin decides what a column means).
pub struct CsvReader {
    rows: csv::Reader<BufReader<File>>,
    path: PathBuf,
    name: Arc<str>,
    /// Each header as a JSON string followed by `:`.
    keys: Vec<Vec<u8>>,
    record: csv::ByteRecord,
}

impl CsvReader {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io { path: path.to_owned(), source })?;
        let mut rows = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(BufReader::with_capacity(1 << 16, file));
        let headers = rows.headers().map_err(|err| SourceError::Csv { path: path.to_owned(), message: format!("cannot read the header row: {err}") })?;
        if headers.is_empty() {
            return Err(SourceError::Csv { path: path.to_owned(), message: "the header row is empty".to_owned() });
        }
        let keys = headers
            .iter()
            .map(|h| {
                let mut key = serde_json::to_vec(h).expect("a string serializes");
                key.push(b':');
                key
            })
            .collect();
        Ok(CsvReader { rows, path: path.to_owned(), name: Arc::from(path.display().to_string()), keys, record: csv::ByteRecord::new() })
    }
}

impl Source for CsvReader {
    fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, SourceError> {
        let mut batch = Vec::with_capacity(max.min(4096));
        let now = Timestamp::now();
        while batch.len() < max {
            let more = self.rows.read_byte_record(&mut self.record).map_err(|err| SourceError::Csv { path: self.path.clone(), message: err.to_string() })?;
            if !more {
                break;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            let mut value = Vec::with_capacity(self.record.as_slice().len() + 16 * self.keys.len());
            value.push(b'{');
            for (i, field) in self.record.iter().enumerate() {
                // Extra fields beyond the header are named by position.
                if i > 0 {
                    value.push(b',');
                }
                match self.keys.get(i) {
                    Some(key) => value.extend_from_slice(key),
                    None => value.extend_from_slice(format!("\"column_{}\":", i + 1).as_bytes()),
                }
                let text = String::from_utf8_lossy(field);
                serde_json::to_writer(&mut value, &*text).expect("writing to a Vec cannot fail");
            }
            value.push(b'}');
            batch.push(SourceRecord {
                value,
                key: None,
                timestamp: now,
                headers: Vec::new(),
                origin: Origin { source: self.name.clone(), partition: None, position: line, offset: None },
            });
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn rows_become_objects_keyed_by_the_header() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "ts,device,temp\n1.5,\"a,b\",22.7\n2,c,\"x\"\"y\"").unwrap();
        let mut reader = CsvReader::open(file.path()).unwrap();
        let batch = reader.next_batch(10).unwrap();
        let values: Vec<_> = batch.iter().map(|r| String::from_utf8(r.value.clone()).unwrap()).collect();
        assert_eq!(values, [r#"{"ts":"1.5","device":"a,b","temp":"22.7"}"#, r#"{"ts":"2","device":"c","temp":"x\"y"}"#]);
        assert_eq!(batch[0].origin.position, 2);
        assert_eq!(batch[1].origin.position, 3);
        assert!(reader.next_batch(10).unwrap().is_empty());
    }
}
