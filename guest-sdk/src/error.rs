use std::fmt;

/// Why a plugin could not handle a record, a window or its config.
///
/// The message reaches the host's dead-letter output (or, for a config,
/// `weir check`), so say what was wrong and with which field.
///
/// Any error type converts with `?`:
///
/// ```
/// use weir_guest_sdk::Error;
/// fn parse(text: &str) -> Result<f64, Error> {
///     Ok(text.parse::<f64>()?)
/// }
/// assert!(parse("x").unwrap_err().to_string().contains("invalid float"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(message.to_string())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }

    /// This error with `context` in front: `"{context}: {self}"`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error(format!("{context}: {}", self.0))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        Error(err.to_string())
    }
}
