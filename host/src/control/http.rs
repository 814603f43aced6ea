//! Just enough HTTP/1.1 for the control endpoint: one request per
//! connection, bounded sizes and times, JSON bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Longest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Longest request body.
pub const MAX_BODY: usize = 64 * 1024;

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub bearer: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request could not be read; each maps to a status.
#[derive(Debug)]
pub enum ReadError {
    /// Malformed.
    Bad(String),
    /// Over the size limits.
    TooLarge,
    /// The client went quiet or away.
    Io(std::io::Error),
}

/// Reads one request from `stream` (whose read timeout bounds every wait).
pub fn read_request(stream: &TcpStream) -> Result<Request, ReadError> {
    let mut reader = BufReader::new(stream);
    let mut head_len = 0usize;
    let mut line = String::new();
    let mut read_line = |line: &mut String| -> Result<(), ReadError> {
        line.clear();
        let n = (&mut reader).take((MAX_HEAD - head_len + 1) as u64).read_line(line).map_err(ReadError::Io)?;
        head_len += n;
        if head_len > MAX_HEAD {
            return Err(ReadError::TooLarge);
        }
        if n == 0 {
            return Err(ReadError::Bad("the connection closed before the request ended".to_owned()));
        }
        Ok(())
    };
    read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ReadError::Bad(format!("not an HTTP request line: {:?}", line.trim_end())));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(format!("unsupported protocol {version}")));
    }
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut bearer = None;
    let mut length = 0usize;
    loop {
        read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(ReadError::Bad(format!("malformed header {header:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| ReadError::Bad(format!("bad Content-Length {value:?}")))?;
        } else if name.eq_ignore_ascii_case("authorization") {
            bearer = value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Bad("chunked bodies are not accepted; send Content-Length".to_owned()));
        }
    }
    if length > MAX_BODY {
        return Err(ReadError::TooLarge);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(ReadError::Io)?;
    Ok(Request { method, path, bearer, body })
}

/// Writes a JSON response and closes the exchange.
pub fn respond(stream: &TcpStream, status: u16, body: &serde_json::Value) -> std::io::Result<()> {
    let body = serde_json::to_string_pretty(body).unwrap_or_else(|_| "{}".to_owned());
    respond_with(stream, status, "application/json", &body)
}

/// The content type of Prometheus' text exposition format.
pub const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes a response of any content type and closes the exchange.
pub fn respond_with(mut stream: &TcpStream, status: u16, content_type: &str, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let auth = if status == 401 { "WWW-Authenticate: Bearer\r\n" } else { "" };
    write!(stream, "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}", body.len())?;
    stream.flush()
}

/// Compares a presented token with the real one in time that does not
/// depend on where they differ.
pub fn token_matches(presented: Option<&str>, token: &str) -> bool {
    let Some(presented) = presented else { return false };
    let (a, b) = (presented.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &byte) in b.iter().enumerate() {
        diff |= usize::from(byte ^ a.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_whole() {
        assert!(token_matches(Some("abcdefabcdefabcdef"), "abcdefabcdefabcdef"));
        assert!(!token_matches(Some("abcdefabcdefabcde"), "abcdefabcdefabcdef"));
        assert!(!token_matches(Some("abcdefabcdefabcdefX"), "abcdefabcdefabcdef"));
        assert!(!token_matches(Some(""), "abcdefabcdefabcdef"));
        assert!(!token_matches(None, "abcdefabcdefabcdef"));
    }
}
