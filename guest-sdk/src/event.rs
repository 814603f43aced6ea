use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::weir::stream::types as wit;
use crate::{Error, Timestamp};

/// The type of an event field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A whole number (`i64`).
    Int,
    /// A floating-point number (`f64`).
    Float,
    /// `true` or `false`.
    Bool,
    /// UTF-8 text.
    Text,
    /// An instant ([`Timestamp`]).
    Time,
    /// Anything nested, as JSON text.
    Json,
}

impl FieldType {
    /// Its name in messages and schemas (`float`).
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
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields a stage reads or writes, checked by the host against the
/// other stages before anything runs.
///
/// ```
/// use weir_guest_sdk::{FieldType, Schema};
/// let reads = Schema::new("reading", 1).field("temp", FieldType::Float).optional("hum", FieldType::Float);
/// assert_eq!(reads.fields().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    name: String,
    version: u32,
    fields: Vec<(String, FieldType, bool)>,
}

impl Schema {
    /// An empty schema called `name`, version `version`.
    pub fn new(name: &str, version: u32) -> Self {
        Schema { name: name.to_owned(), version, fields: Vec::new() }
    }

    /// Adds a field every event has.
    pub fn field(mut self, name: &str, ty: FieldType) -> Self {
        self.fields.push((name.to_owned(), ty, false));
        self
    }

    /// Adds a field events may lack (absent or null).
    pub fn optional(mut self, name: &str, ty: FieldType) -> Self {
        self.fields.push((name.to_owned(), ty, true));
        self
    }

    /// The fields: name, type, whether optional.
    pub fn fields(&self) -> &[(String, FieldType, bool)] {
        &self.fields
    }

    pub(crate) fn to_wit(&self) -> wit::Schema {
        let ty = |t: FieldType| match t {
            FieldType::Int => wit::FieldType::Int,
            FieldType::Float => wit::FieldType::Float,
            FieldType::Bool => wit::FieldType::Bool,
            FieldType::Text => wit::FieldType::Text,
            FieldType::Time => wit::FieldType::Time,
            FieldType::Json => wit::FieldType::Json,
        };
        wit::Schema {
            name: self.name.clone(),
            version: self.version,
            fields: self.fields.iter().map(|(name, t, optional)| wit::FieldSpec { name: name.clone(), type_: ty(*t), optional: *optional }).collect(),
        }
    }
}

/// What an accumulator is: a name and the version of its shape. The host
/// refuses a fold and a format that name different ones, and calls
/// [`FoldStage::migrate`](crate::FoldStage::migrate) to cross versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What it is (`window-stats`).
    pub name: String,
    /// The version of its shape; raise it when the accumulator changes.
    pub version: u32,
}

impl Identity {
    /// `name` at `version`.
    pub fn new(name: &str, version: u32) -> Self {
        Identity { name: name.to_owned(), version }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

/// One value of an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// An instant.
    Time(Timestamp),
    /// Nested data as JSON text.
    Json(String),
}

impl Value {
    fn field_type(&self) -> FieldType {
        match self {
            Value::Int(_) => FieldType::Int,
            Value::Float(_) => FieldType::Float,
            Value::Bool(_) => FieldType::Bool,
            Value::Text(_) => FieldType::Text,
            Value::Time(_) => FieldType::Time,
            Value::Json(_) => FieldType::Json,
        }
    }
}

/// An event a deserialize stage emits: named values, which must match the
/// fields its [`DeserializeStage::writes`](crate::DeserializeStage::writes)
/// declares.
///
/// ```
/// use weir_guest_sdk::{Event, Timestamp};
/// let event = Event::new().text("id", "sensor-1").float("value", 21.5).time("at", Timestamp::from_micros(0));
/// assert_eq!(event.len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    values: Vec<(String, Value)>,
}

impl Event {
    /// An event without fields.
    pub fn new() -> Self {
        Event::default()
    }

    /// Sets `name` to `value`.
    pub fn set(mut self, name: &str, value: Value) -> Self {
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_owned(), value)),
        }
        self
    }

    /// Sets a whole number.
    pub fn int(self, name: &str, value: i64) -> Self {
        self.set(name, Value::Int(value))
    }

    /// Sets a floating-point number.
    pub fn float(self, name: &str, value: f64) -> Self {
        self.set(name, Value::Float(value))
    }

    /// Sets a boolean.
    pub fn bool(self, name: &str, value: bool) -> Self {
        self.set(name, Value::Bool(value))
    }

    /// Sets text.
    pub fn text(self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, Value::Text(value.into()))
    }

    /// Sets an instant.
    pub fn time(self, name: &str, value: Timestamp) -> Self {
        self.set(name, Value::Time(value))
    }

    /// Sets nested data, serialized as JSON.
    pub fn json(self, name: &str, value: &impl Serialize) -> Result<Self, Error> {
        Ok(self.set(name, Value::Json(serde_json::to_string(value)?)))
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The fields set, in order.
    pub fn values(&self) -> &[(String, Value)] {
        &self.values
    }

    /// How many fields are set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Columns being built, one per field of a schema.
pub(crate) struct Columns {
    schema: Schema,
    columns: Vec<wit::Column>,
    missing: Vec<Vec<u32>>,
    count: u32,
}

impl Columns {
    pub(crate) fn new(schema: Schema) -> Self {
        let columns = schema
            .fields
            .iter()
            .map(|(_, ty, _)| match ty {
                FieldType::Int => wit::Column::Ints(Vec::new()),
                FieldType::Float => wit::Column::Floats(Vec::new()),
                FieldType::Bool => wit::Column::Bools(Vec::new()),
                FieldType::Text => wit::Column::Texts(Vec::new()),
                FieldType::Time => wit::Column::Times(Vec::new()),
                FieldType::Json => wit::Column::Json(Vec::new()),
            })
            .collect();
        let missing = vec![Vec::new(); schema.fields.len()];
        Columns { schema, columns, missing, count: 0 }
    }

    /// Appends `event`, or says which field does not fit (and appends
    /// nothing).
    pub(crate) fn push(&mut self, event: Event) -> Result<(), Error> {
        for (name, value) in &event.values {
            match self.schema.fields.iter().find(|(n, _, _)| n == name) {
                None => return Err(Error::msg(format!("field `{name}` is not among the fields this stage declared it writes"))),
                Some((_, ty, _)) if *ty != value.field_type() && !(*ty == FieldType::Float && value.field_type() == FieldType::Int) => {
                    return Err(Error::msg(format!("field `{name}` is declared {ty} but was given a {}", value.field_type())));
                }
                Some(_) => {}
            }
        }
        for (name, _, optional) in &self.schema.fields {
            if !optional && event.get(name).is_none() {
                return Err(Error::msg(format!("missing field `{name}`")));
            }
        }
        let mut values = event.values;
        for (i, (name, _, _)) in self.schema.fields.iter().enumerate() {
            let value = values.iter().position(|(n, _)| n == name).map(|at| values.swap_remove(at).1);
            if value.is_none() {
                self.missing[i].push(self.count);
            }
            match (&mut self.columns[i], value) {
                (wit::Column::Ints(v), Some(Value::Int(x))) => v.push(x),
                (wit::Column::Floats(v), Some(Value::Float(x))) => v.push(x),
                (wit::Column::Floats(v), Some(Value::Int(x))) => v.push(x as f64),
                (wit::Column::Bools(v), Some(Value::Bool(x))) => v.push(x),
                (wit::Column::Texts(v), Some(Value::Text(x))) | (wit::Column::Json(v), Some(Value::Json(x))) => v.push(x),
                (wit::Column::Times(v), Some(Value::Time(x))) => v.push(x.micros()),
                (wit::Column::Ints(v) | wit::Column::Times(v), _) => v.push(0),
                (wit::Column::Floats(v), _) => v.push(0.0),
                (wit::Column::Bools(v), _) => v.push(false),
                (wit::Column::Texts(v) | wit::Column::Json(v), _) => v.push(String::new()),
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Appends the events of `other`, built from the same schema.
    pub(crate) fn append(&mut self, other: Columns) {
        let base = self.count;
        for (i, (column, more)) in self.columns.iter_mut().zip(other.columns).enumerate() {
            self.missing[i].extend(other.missing[i].iter().map(|m| m + base));
            match (column, more) {
                (wit::Column::Ints(a), wit::Column::Ints(b)) | (wit::Column::Times(a), wit::Column::Times(b)) => a.extend(b),
                (wit::Column::Floats(a), wit::Column::Floats(b)) => a.extend(b),
                (wit::Column::Bools(a), wit::Column::Bools(b)) => a.extend(b),
                (wit::Column::Texts(a), wit::Column::Texts(b)) | (wit::Column::Json(a), wit::Column::Json(b)) => a.extend(b),
                _ => unreachable!("same schema"),
            }
        }
        self.count += other.count;
    }

    pub(crate) fn finish(self) -> wit::Events {
        let fields = self
            .schema
            .fields
            .into_iter()
            .zip(self.columns)
            .zip(self.missing)
            .map(|(((name, _, _), values), missing)| wit::Field { name, values, missing })
            .collect();
        wit::Events { count: self.count, fields }
    }
}

/// A run of events as columns: what a key or fold stage reads. Each field
/// the stage declared is one slice with an entry per event.
///
/// ```
/// # use weir_guest_sdk::{testing, Event};
/// let batch = testing::events(&[Event::new().float("temp", 20.0), Event::new().float("temp", 22.0)]);
/// let events = batch.view();
/// let temps = events.floats("temp").unwrap();
/// assert_eq!(temps.iter().sum::<f64>() / temps.len() as f64, 21.0);
/// ```
#[derive(Clone, Copy)]
pub struct Events<'a> {
    inner: &'a wit::Events,
    start: usize,
    end: usize,
}

macro_rules! column {
    ($(#[$doc:meta])* $method:ident, $variant:ident, $ty:ty, $kind:expr) => {
        $(#[$doc])*
        pub fn $method(&self, name: &str) -> Result<&'a [$ty], Error> {
            match &self.field(name)?.values {
                wit::Column::$variant(v) => Ok(&v[self.start..self.end]),
                other => Err(wrong_type(name, $kind, other)),
            }
        }
    };
}

fn type_of(column: &wit::Column) -> FieldType {
    match column {
        wit::Column::Ints(_) => FieldType::Int,
        wit::Column::Floats(_) => FieldType::Float,
        wit::Column::Bools(_) => FieldType::Bool,
        wit::Column::Texts(_) => FieldType::Text,
        wit::Column::Times(_) => FieldType::Time,
        wit::Column::Json(_) => FieldType::Json,
    }
}

fn wrong_type(name: &str, wanted: FieldType, found: &wit::Column) -> Error {
    Error::msg(format!("field `{name}` is a {}, not a {wanted}", type_of(found)))
}

impl<'a> Events<'a> {
    pub(crate) fn new(inner: &'a wit::Events, start: usize, end: usize) -> Self {
        let end = end.min(inner.count as usize);
        Events { inner, start: start.min(end), end }
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn field(&self, name: &str) -> Result<&'a wit::Field, Error> {
        self.inner.fields.iter().find(|f| f.name == name).ok_or_else(|| Error::msg(format!("no field `{name}` (declare it in the stage's schema)")))
    }

    column!(
        /// The field's floating-point values.
        floats, Floats, f64, FieldType::Float);
    column!(
        /// The field's whole numbers.
        ints, Ints, i64, FieldType::Int);
    column!(
        /// The field's booleans.
        bools, Bools, bool, FieldType::Bool);
    column!(
        /// The field's texts.
        texts, Texts, String, FieldType::Text);
    column!(
        /// The field's instants, in microseconds since the epoch.
        times, Times, i64, FieldType::Time);
    column!(
        /// The field's JSON texts.
        json_texts, Json, String, FieldType::Json);

    /// Whether event `i` (counted in this run) has no value in `name`.
    /// Missing values hold a placeholder (0, "", false) in the slices.
    pub fn is_missing(&self, name: &str, i: usize) -> bool {
        self.field(name).is_ok_and(|f| f.missing.binary_search(&((self.start + i) as u32)).is_ok())
    }

    /// Whether any event of this run lacks `name`.
    pub fn any_missing(&self, name: &str) -> bool {
        self.field(name).is_ok_and(|f| f.missing.iter().any(|&m| (self.start..self.end).contains(&(m as usize))))
    }

    /// Event `i` of this run.
    pub fn row(&self, i: usize) -> Row<'a> {
        Row { events: *self, index: self.start + i }
    }

    /// The events one by one.
    pub fn rows(&self) -> impl Iterator<Item = Row<'a>> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }
}

/// One event of a batch, read field by field.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    events: Events<'a>,
    index: usize,
}

impl<'a> Row<'a> {
    fn value(&self, name: &str, wanted: FieldType) -> Result<&'a wit::Column, Error> {
        let field = self.events.field(name)?;
        if field.missing.binary_search(&(self.index as u32)).is_ok() {
            return Err(Error::msg(format!("field `{name}` is missing")));
        }
        if type_of(&field.values) != wanted && !(wanted == FieldType::Float && type_of(&field.values) == FieldType::Int) {
            return Err(wrong_type(name, wanted, &field.values));
        }
        Ok(&field.values)
    }

    /// Whether the event has no value in `name`.
    pub fn is_missing(&self, name: &str) -> bool {
        self.events.field(name).is_ok_and(|f| f.missing.binary_search(&(self.index as u32)).is_ok())
    }

    /// A floating-point field (a whole-number field is widened).
    pub fn float(&self, name: &str) -> Result<f64, Error> {
        match self.value(name, FieldType::Float)? {
            wit::Column::Floats(v) => Ok(v[self.index]),
            wit::Column::Ints(v) => Ok(v[self.index] as f64),
            _ => unreachable!("checked"),
        }
    }

    /// A whole-number field.
    pub fn int(&self, name: &str) -> Result<i64, Error> {
        match self.value(name, FieldType::Int)? {
            wit::Column::Ints(v) => Ok(v[self.index]),
            _ => unreachable!("checked"),
        }
    }

    /// A boolean field.
    pub fn bool(&self, name: &str) -> Result<bool, Error> {
        match self.value(name, FieldType::Bool)? {
            wit::Column::Bools(v) => Ok(v[self.index]),
            _ => unreachable!("checked"),
        }
    }

    /// A text field.
    pub fn text(&self, name: &str) -> Result<&'a str, Error> {
        match self.value(name, FieldType::Text)? {
            wit::Column::Texts(v) => Ok(&v[self.index]),
            _ => unreachable!("checked"),
        }
    }

    /// A time field.
    pub fn time(&self, name: &str) -> Result<Timestamp, Error> {
        match self.value(name, FieldType::Time)? {
            wit::Column::Times(v) => Ok(Timestamp::from_micros(v[self.index])),
            _ => unreachable!("checked"),
        }
    }

    /// A JSON field's text.
    pub fn json_text(&self, name: &str) -> Result<&'a str, Error> {
        match self.value(name, FieldType::Json)? {
            wit::Column::Json(v) => Ok(&v[self.index]),
            _ => unreachable!("checked"),
        }
    }

    /// A JSON field, parsed into `T`.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        match self.value(name, FieldType::Json)? {
            wit::Column::Json(v) => serde_json::from_str(&v[self.index]).map_err(|err| Error::msg(format!("field `{name}`: {err}"))),
            _ => unreachable!("checked"),
        }
    }
}
