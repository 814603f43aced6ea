//! A listener that serves only `GET /metrics` (Prometheus' text format),
//! without a token: `weir run --metrics [ADDR]`. It binds to loopback
//! unless told otherwise, answers nothing else (404, 405), and bounds each
//! request in size and time like the control endpoint.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::ControlError;
use super::http::{self, ReadError};

/// The address `--metrics` listens on when given none.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The running listener; it lives as long as the process.
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and answers scrapes on a thread of its own. A
    /// non-loopback address is allowed (it was asked for) and logged.
    pub fn start(addr: SocketAddr) -> Result<MetricsServer, ControlError> {
        let listener = TcpListener::bind(addr).map_err(|source| ControlError::Bind { addr, source })?;
        let address = listener.local_addr().map_err(|source| ControlError::Bind { addr, source })?;
        if !address.ip().is_loopback() {
            tracing::warn!("metrics on {address}, reachable from other machines: the figures are readable by anyone who can connect");
        }
        tracing::info!("metrics on http://{address}/metrics");
        std::thread::Builder::new()
            .name("weir-metrics".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // One scrape at a time: each is small and bounded in time.
                    serve(stream);
                }
            })
            .map_err(|source| ControlError::Bind { addr, source })?;
        Ok(MetricsServer { address })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

fn serve(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let answered = match http::read_request(&stream) {
        Ok(request) if request.path == "/metrics" && request.method == "GET" => http::respond_with(&stream, 200, http::METRICS_TYPE, &crate::metrics::global().render()),
        Ok(request) if request.path == "/metrics" => http::respond_with(&stream, 405, "text/plain", &format!("{} is not allowed on /metrics\n", request.method)),
        Ok(request) => http::respond_with(&stream, 404, "text/plain", &format!("no such endpoint {}; there is GET /metrics\n", request.path)),
        Err(ReadError::TooLarge) => http::respond_with(&stream, 413, "text/plain", "request too large\n"),
        Err(ReadError::Bad(why)) => http::respond_with(&stream, 400, "text/plain", &format!("{why}\n")),
        Err(ReadError::Io(_)) => return,
    };
    if let Err(err) = answered {
        tracing::debug!("metrics: cannot answer: {err}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.address();
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.contains("text/plain; version=0.0.4") && ok.contains("\nweir_records_total "), "{ok}");
        assert!(get(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get(addr, "GET /v1/status HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    }
}
