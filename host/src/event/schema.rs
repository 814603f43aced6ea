//! What a stage reads or writes, and the check between two stages.

use std::fmt;

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A whole number (i64).
    Int,
    /// A floating-point number (f64).
    Float,
    /// true or false.
    Bool,
    /// UTF-8 text.
    Text,
    /// An instant (microseconds since the epoch).
    Time,
    /// Any JSON value, as JSON text.
    Json,
}

impl FieldType {
    /// The type's name in manifests and messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Text => "text",
            FieldType::Time => "time",
            FieldType::Json => "json",
        }
    }

    /// The type called `name`.
    pub fn parse(name: &str) -> Option<FieldType> {
        Some(match name {
            "int" => FieldType::Int,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "text" => FieldType::Text,
            "time" => FieldType::Time,
            "json" => FieldType::Json,
            _ => return None,
        })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: FieldType,
    /// Whether an event may lack it.
    pub optional: bool,
}

impl FieldSpec {
    /// A required field.
    pub fn required(name: &str, ty: FieldType) -> FieldSpec {
        FieldSpec { name: name.to_owned(), ty, optional: false }
    }
}

impl fmt::Display for FieldSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}{}", self.name, self.ty, if self.optional { "?" } else { "" })
    }
}

/// The events a stage reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Its name (for messages and checkpoints).
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Its fields.
    pub fields: Vec<FieldSpec>,
}

/// What an accumulator is: a name and the version of its shape. Fold and
/// format must name the same one; a fold crosses versions by migrating.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// What it is (`window-stats`).
    pub name: String,
    /// The version of its shape.
    pub version: u32,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

/// Why a reader cannot read what a writer writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The writer has no such field.
    #[error("{reader} reads `{field}`, but {writer} writes no such field (it writes {written})")]
    Missing {
        /// Who reads.
        reader: String,
        /// Who writes.
        writer: String,
        /// The field read, with its type.
        field: FieldSpec,
        /// What the writer does write.
        written: String,
    },
    /// The writer's field has another type.
    #[error("{reader} reads `{field}`, but {writer} writes `{found}`")]
    Type {
        /// Who reads.
        reader: String,
        /// Who writes.
        writer: String,
        /// The field as read.
        field: FieldSpec,
        /// The field as written.
        found: FieldSpec,
    },
}

impl Schema {
    /// Whether `reader` (named `reader_name`) can read every field it needs
    /// from events this schema (written by `writer_name`) describes: each
    /// field it reads exists with the same type, and a field it requires is
    /// not optional here. Every mismatch is listed.
    pub fn check_reader(&self, writer_name: &str, reader: &Schema, reader_name: &str) -> Vec<Mismatch> {
        let written = || self.fields.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        reader
            .fields
            .iter()
            .filter_map(|wanted| match self.fields.iter().find(|f| f.name == wanted.name) {
                None => Some(Mismatch::Missing { reader: reader_name.to_owned(), writer: writer_name.to_owned(), field: wanted.clone(), written: written() }),
                Some(found) if found.ty != wanted.ty || (found.optional && !wanted.optional) => {
                    Some(Mismatch::Type { reader: reader_name.to_owned(), writer: writer_name.to_owned(), field: wanted.clone(), found: found.clone() })
                }
                Some(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, FieldType, bool)]) -> Schema {
        Schema { name: "s".into(), version: 1, fields: fields.iter().map(|&(n, ty, optional)| FieldSpec { name: n.into(), ty, optional }).collect() }
    }

    #[test]
    fn a_reader_needs_each_field_it_reads_with_its_type_and_presence() {
        let written = schema(&[("device", FieldType::Text, false), ("temp", FieldType::Float, true)]);
        assert!(written.check_reader("deserialize (a.wasm)", &schema(&[("temp", FieldType::Float, true)]), "fold (b.wasm)").is_empty());
        let wrong = written.check_reader(
            "deserialize (a.wasm)",
            &schema(&[("temp", FieldType::Float, false), ("hum", FieldType::Float, false), ("device", FieldType::Int, false)]),
            "fold (b.wasm)",
        );
        let messages: Vec<String> = wrong.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "fold (b.wasm) reads `temp: float`, but deserialize (a.wasm) writes `temp: float?`",
                "fold (b.wasm) reads `hum: float`, but deserialize (a.wasm) writes no such field (it writes device: text, temp: float?)",
                "fold (b.wasm) reads `device: int`, but deserialize (a.wasm) writes `device: text`",
            ]
        );
    }
}
