//! The client side: `weir status` and `weir swap`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use super::{ControlError, Endpoint};

/// How long to wait for the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for an answer: a swap may wait up to a minute for the
/// pipeline to finish its batch.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

/// Talks to one running pipeline.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
}

impl Client {
    /// A client for the pipeline an endpoint file describes.
    pub fn new(endpoint: Endpoint) -> Self {
        Client { endpoint }
    }

    /// The pipeline's counts and stages.
    pub fn status(&self) -> Result<serde_json::Value, ControlError> {
        self.request("GET", "/v1/status", None)
    }

    /// Swaps `plugin` into the stages `stage` names (`fold`,
    /// `deserialize,key`, or `all`).
    pub fn swap(&self, stage: &str, plugin: &Path) -> Result<serde_json::Value, ControlError> {
        let plugin = std::path::absolute(plugin).map_err(|err| ControlError::Protocol(format!("{}: {err}", plugin.display())))?;
        let body = serde_json::json!({ "stage": stage, "plugin": plugin.display().to_string() });
        self.request("POST", "/v1/swap", Some(body))
    }

    /// Sends one request and returns the JSON answer of a success.
    pub fn request(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value, ControlError> {
        let addr = self.endpoint.address;
        let connect = |source| ControlError::Connect { addr, source };
        let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(connect)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(connect)?;
        stream.set_write_timeout(Some(CONNECT_TIMEOUT)).map_err(connect)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.endpoint.token,
            body.len()
        )
        .map_err(connect)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).map_err(connect)?;
        let (head, text) = answer.split_once("\r\n\r\n").ok_or_else(|| ControlError::Protocol(format!("no HTTP head in {answer:?}")))?;
        let status: u16 =
            head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| ControlError::Protocol(format!("no status in {head:?}")))?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|err| ControlError::Protocol(format!("body is not JSON ({err}): {text}")))?;
        if status == 200 {
            Ok(value)
        } else {
            let message = value["error"].as_str().unwrap_or(text).to_owned();
            Err(ControlError::Refused { status, message })
        }
    }
}
