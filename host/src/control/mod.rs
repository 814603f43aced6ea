//! The control endpoint of a running pipeline. `weir status` and `weir swap`
//! talk to it over HTTP/1.1 on loopback with a bearer token; it can also
//! watch the plugin files and swap a stage when its file changes.
//!
//! New components are loaded and validated on the endpoint's own thread, so
//! compiling and configuring them never stalls the data path; the pipeline
//! takes requests from a channel between batches
//! ([`Pipeline::serve_control`](crate::pipeline::Pipeline::serve_control)).

pub mod client;
mod http;
mod metrics;
mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use client::Client;
pub use metrics::{DEFAULT_METRICS_ADDR, MetricsServer};
pub use server::{ControlServer, StageSource};

/// Why the control endpoint could not start, or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The listen address is taken or not ours.
    #[error("control endpoint cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The endpoint file could not be written or read.
    #[error("control endpoint file {}: {detail}", path.display())]
    EndpointFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The running pipeline could not be reached.
    #[error("cannot reach the pipeline's control endpoint at {addr}: {source} (is `weir run` still running?)")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The endpoint answered with an error.
    #[error("{message} (HTTP {status})")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The endpoint's explanation.
        message: String,
    },
    /// The answer was not what the protocol says.
    #[error("unexpected answer from the control endpoint: {0}")]
    Protocol(String),
}

/// What a running pipeline writes to its endpoint file so that clients on
/// the same machine can find it; only the owner may read it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// The pipeline's name.
    pub pipeline: String,
    /// Where the endpoint listens.
    pub address: SocketAddr,
    /// The bearer token.
    pub token: String,
    /// The process.
    pub pid: u32,
}

impl Endpoint {
    /// Reads an endpoint file.
    pub fn read(path: &Path) -> Result<Endpoint, ControlError> {
        let fail = |detail: String| ControlError::EndpointFile { path: path.to_owned(), detail };
        let text = std::fs::read_to_string(path).map_err(|err| {
            fail(if err.kind() == std::io::ErrorKind::NotFound {
                "not found: is the pipeline running, with a [control] table in its manifest?".to_owned()
            } else {
                err.to_string()
            })
        })?;
        serde_json::from_str(&text).map_err(|err| fail(format!("not an endpoint file: {err}")))
    }

    fn write(&self, path: &Path) -> Result<(), ControlError> {
        let fail = |detail: String| ControlError::EndpointFile { path: path.to_owned(), detail };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| fail(format!("cannot create its folder: {err}")))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|err| fail(err.to_string()))?;
        // It holds the token: the owner's eyes only.
        crate::file::write_atomic(path, text.as_bytes(), true).map_err(|err| fail(err.to_string()))
    }
}
