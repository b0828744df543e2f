//! Host metrics in the Prometheus text exposition format (version 0.0.4), served by the host
//! itself on `/metrics` of a listener of their own ([`Server::serve_metrics`], `mcp-auth serve
//! --metrics-listen`), never on the public one: they describe traffic, failures and stores to
//! whoever asks. Labels are component ids, store labels and status codes only: never a path,
//! query or value.
//!
//! [`Server::serve_metrics`]: crate::Server::serve_metrics

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::request::plain;

/// Upper bounds of the request-duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The metrics listener's answer: the metrics for `GET /metrics`, 404 for anything else.
pub(crate) fn respond<B>(metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" || req.method() != Method::GET {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    let mut res = Response::new(Full::new(Bytes::from(metrics.render())));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// Counters and histograms of one host.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    traps: BTreeMap<String, u64>,
    memory_grown: BTreeMap<String, u64>,
    store_errors: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Records one finished request (`component` is `none` when nothing matched).
    pub fn request(&self, component: &str, status: u16, duration: Duration) {
        let mut inner = self.lock();
        *inner
            .requests
            .entry((component.to_owned(), status))
            .or_default() += 1;
        let h = inner.durations.entry(component.to_owned()).or_default();
        let secs = duration.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        h.counts[slot] += 1;
        h.sum += secs;
        h.count += 1;
    }

    /// Records a guest trap (including time-outs and memory exhaustion).
    pub fn trap(&self, component: &str) {
        bump(&mut self.lock().traps, component);
    }

    /// Records a request whose instance grew its linear memory (see `GuestLimits`).
    pub fn memory_grown(&self, component: &str) {
        bump(&mut self.lock().memory_grown, component);
    }

    /// Records a key-value backend failure.
    pub fn store_error(&self, label: &str) {
        bump(&mut self.lock().store_errors, label);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write_all(&inner, &mut out);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still valid numbers.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn write_all(inner: &Inner, out: &mut String) -> std::fmt::Result {
    writeln!(
        out,
        "# HELP mcp_auth_requests_total HTTP requests served, by component and status."
    )?;
    writeln!(out, "# TYPE mcp_auth_requests_total counter")?;
    for ((component, status), n) in &inner.requests {
        writeln!(
            out,
            "mcp_auth_requests_total{{component=\"{}\",status=\"{status}\"}} {n}",
            escape(component)
        )?;
    }
    writeln!(
        out,
        "# HELP mcp_auth_request_duration_seconds Time to a full response, by component."
    )?;
    writeln!(out, "# TYPE mcp_auth_request_duration_seconds histogram")?;
    for (component, h) in &inner.durations {
        let c = escape(component);
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += h.counts[i];
            writeln!(
                out,
                "mcp_auth_request_duration_seconds_bucket{{component=\"{c}\",le=\"{bound}\"}} {cumulative}"
            )?;
        }
        writeln!(
            out,
            "mcp_auth_request_duration_seconds_bucket{{component=\"{c}\",le=\"+Inf\"}} {}",
            h.count
        )?;
        writeln!(
            out,
            "mcp_auth_request_duration_seconds_sum{{component=\"{c}\"}} {}",
            h.sum
        )?;
        writeln!(
            out,
            "mcp_auth_request_duration_seconds_count{{component=\"{c}\"}} {}",
            h.count
        )?;
    }
    counter(
        out,
        "mcp_auth_guest_traps_total",
        "Guest traps, time-outs and memory exhaustion.",
        "component",
        &inner.traps,
    )?;
    counter(
        out,
        "mcp_auth_guest_memory_grown_total",
        "Requests whose instance grew its linear memory; each costs a flush of every core's \
         TLB when its pool slot is next used.",
        "component",
        &inner.memory_grown,
    )?;
    counter(
        out,
        "mcp_auth_store_errors_total",
        "Key-value backend errors, by store label.",
        "store",
        &inner.store_errors,
    )
}

/// Adds one to a counter with one label.
fn bump(values: &mut BTreeMap<String, u64>, label: &str) {
    match values.get_mut(label) {
        Some(n) => *n += 1,
        None => {
            values.insert(label.to_owned(), 1);
        }
    }
}

/// Renders a counter with one label.
fn counter(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<String, u64>,
) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} counter")?;
    for (value, n) in values {
        writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(value))?;
    }
    Ok(())
}

/// Label-value escaping of the text format: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("token", 200, Duration::from_millis(3));
        m.request("token", 200, Duration::from_millis(30));
        m.request("token", 500, Duration::from_secs(20));
        m.trap("token");
        m.memory_grown("discovery");
        m.store_error("default");
        let text = m.render();
        assert!(text.contains("mcp_auth_requests_total{component=\"token\",status=\"200\"} 2"));
        assert!(text.contains("mcp_auth_requests_total{component=\"token\",status=\"500\"} 1"));
        assert!(text.contains(
            "mcp_auth_request_duration_seconds_bucket{component=\"token\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "mcp_auth_request_duration_seconds_bucket{component=\"token\",le=\"0.05\"} 2"
        ));
        assert!(text
            .contains("mcp_auth_request_duration_seconds_bucket{component=\"token\",le=\"10\"} 2"));
        assert!(text.contains(
            "mcp_auth_request_duration_seconds_bucket{component=\"token\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("mcp_auth_request_duration_seconds_count{component=\"token\"} 3"));
        assert!(text.contains("mcp_auth_guest_traps_total{component=\"token\"} 1"));
        assert!(text.contains("mcp_auth_guest_memory_grown_total{component=\"discovery\"} 1"));
        assert!(text.contains("mcp_auth_store_errors_total{store=\"default\"} 1"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
