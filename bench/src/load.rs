//! The load generator: a fixed number of keep-alive HTTP/1.1 connections, each sending its
//! next request as soon as the previous answer is read, for a fixed time (a closed loop, as
//! `wrk` does). Latencies go into an HDR histogram in microseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// What one connection sends, one request after the other. Each connection has its own, so a
/// script can carry state from one answer to the next request (a refresh-token chain).
pub trait Script: Send + 'static {
    /// The next request (its URI is the path; `Host` is added).
    fn request(&mut self) -> Request<Full<Bytes>>;
    /// Checks the answer to the last request; an `Err` counts as a failed request.
    fn answer(&mut self, status: StatusCode, body: &Bytes) -> Result<(), String>;
}

/// A script that sends the same request every time and expects one status (and, when
/// given, a body containing `contains`).
pub struct Fixed {
    pub request: Request<Full<Bytes>>,
    pub expect: StatusCode,
    pub contains: Option<&'static str>,
}

impl Script for Fixed {
    fn request(&mut self) -> Request<Full<Bytes>> {
        clone_request(&self.request)
    }

    fn answer(&mut self, status: StatusCode, body: &Bytes) -> Result<(), String> {
        expect_status(self.expect, status, body)?;
        match self.contains {
            Some(text) if !String::from_utf8_lossy(body).contains(text) => Err(format!(
                "the answer lacks {text}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            _ => Ok(()),
        }
    }
}

/// `Ok` when `status` is `expected`, else an error quoting the start of the body.
pub fn expect_status(expected: StatusCode, status: StatusCode, body: &Bytes) -> Result<(), String> {
    if status == expected {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    Err(format!("{status} (expected {expected}): {text}"))
}

/// A copy of `request` (hyper's requests are not `Clone`).
pub fn clone_request(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .body(request.body().clone())
        .expect("a copy of a valid request");
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// What a run measured.
pub struct Outcome {
    pub elapsed: Duration,
    /// Latency of each answered request, µs.
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
    /// The first few failures, for the report.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Drives `addr` with `connections` connections for `duration`, each running the script
/// `script(i)` makes for connection `i`.
pub async fn run<S: Script>(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    script: impl Fn(usize) -> S,
) -> Result<Outcome, String> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, sender)| {
            let script = script(i);
            tokio::spawn(drive(addr, sender, script, deadline))
        })
        .collect();
    let mut total = Outcome {
        elapsed: Duration::ZERO,
        latency: new_histogram(),
        ok: 0,
        failed: 0,
        failures: Vec::new(),
    };
    for task in tasks {
        let part = task
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        total.ok += part.ok;
        total.failed += part.failed;
        total
            .latency
            .add(&part.latency)
            .map_err(|e| format!("histogram: {e}"))?;
        for f in part.failures {
            if total.failures.len() < 5 {
                total.failures.push(f);
            }
        }
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// One connection's loop. A broken connection is reopened (and counted as a failure).
async fn drive<S: Script>(
    addr: SocketAddr,
    mut sender: SendRequest<Full<Bytes>>,
    mut script: S,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        latency: new_histogram(),
        ok: 0,
        failed: 0,
        failures: Vec::new(),
    };
    let host = http::HeaderValue::from_str(&addr.to_string()).expect("an address is a header");
    while Instant::now() < deadline {
        let mut request = script.request();
        request
            .headers_mut()
            .insert(http::header::HOST, host.clone());
        let sent = Instant::now();
        let result = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                match response.into_body().collect().await {
                    Ok(body) => Ok((status, body.to_bytes())),
                    Err(e) => Err(format!("reading the body: {e}")),
                }
            }
            Err(e) => Err(format!("sending: {e}")),
        };
        let latency = sent.elapsed();
        let checked = result.and_then(|(status, body)| script.answer(status, &body));
        match checked {
            Ok(()) => {
                outcome.ok += 1;
                let _ = outcome.latency.record(latency.as_micros() as u64);
            }
            Err(failure) => {
                outcome.failed += 1;
                if outcome.failures.len() < 5 {
                    outcome.failures.push(failure);
                }
                if sender.is_closed() {
                    match connect(addr).await {
                        Ok(fresh) => sender = fresh,
                        Err(_) => break,
                    }
                }
            }
        }
    }
    outcome
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// An HTTP/1.1 keep-alive connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One request on a fresh connection: the status and body (for setting up state).
pub async fn once(
    addr: SocketAddr,
    mut request: Request<Full<Bytes>>,
) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
    let mut sender = connect(addr).await?;
    let host = http::HeaderValue::from_str(&addr.to_string()).expect("an address is a header");
    request.headers_mut().insert(http::header::HOST, host);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request to {addr}: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {addr}: {e}"))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}
