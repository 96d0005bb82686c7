//! The bridge's own measure of the latency it adds, where it publishes one:
//! oxbridge's `oxbridge_sfu_forwarding_latency_seconds` histogram at
//! `<url>/metrics`, scraped when measuring starts and ends. One-way latency
//! seen by participants includes the generator's own delays; this does not.
//! A deployment without the histogram (stock Jitsi, or /metrics not reachable)
//! leaves the report's fields empty.
//!
//! ```
//! use bench::media::bridge_latency::Histogram;
//! let at = |n: u64| Histogram::parse(&format!(
//!     "oxbridge_sfu_forwarding_latency_seconds_bucket{{le=\"0.001\"}} {n}\n\
//!      oxbridge_sfu_forwarding_latency_seconds_bucket{{le=\"+Inf\"}} {n}\n\
//!      oxbridge_sfu_forwarding_latency_seconds_sum {}\n\
//!      oxbridge_sfu_forwarding_latency_seconds_count {n}\n", n as f64 * 0.0005)).unwrap();
//! let window = at(300).since(&at(100));
//! assert_eq!(window.count(), 200);
//! assert!((window.mean_ms().unwrap() - 0.5).abs() < 1e-9);
//! ```

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const NAME: &str = "oxbridge_sfu_forwarding_latency_seconds";
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// A cumulative latency histogram: per upper bound (seconds), how many
/// datagrams took at most that long.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Reads the histogram out of Prometheus text; `None` when it is not there.
    pub fn parse(text: &str) -> Option<Histogram> {
        let mut h = Histogram {
            buckets: Vec::new(),
            sum: 0.0,
            count: 0,
        };
        let mut seen = false;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(NAME) else {
                continue;
            };
            let (key, value) = rest.rsplit_once(' ')?;
            if let Some(le) = key
                .strip_prefix("_bucket{le=\"")
                .and_then(|k| k.strip_suffix("\"}"))
            {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                h.buckets.push((bound, value.parse().ok()?));
            } else if key == "_sum" {
                h.sum = value.parse().ok()?;
            } else if key == "_count" {
                h.count = value.parse().ok()?;
                seen = true;
            }
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        seen.then_some(h)
    }

    /// What happened between `earlier` and this one.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |bound: f64| {
            earlier
                .buckets
                .iter()
                .find(|b| b.0 == bound)
                .map_or(0, |b| b.1)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, n)| (bound, n.saturating_sub(before(bound))))
                .collect(),
            sum: (self.sum - earlier.sum).max(0.0),
            count: self.count.saturating_sub(earlier.count),
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64 * 1000.0)
    }

    /// The `q` quantile (0..1) in ms, interpolated within its bucket as
    /// Prometheus's `histogram_quantile` does; past the last finite bound it
    /// is that bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(bound, n) in &self.buckets {
            if n as f64 >= rank {
                if bound.is_infinite() {
                    return Some(lower * 1000.0);
                }
                let inside = (n - below) as f64;
                let share = if inside > 0.0 {
                    (rank - below as f64) / inside
                } else {
                    1.0
                };
                return Some((lower + (bound - lower) * share) * 1000.0);
            }
            (lower, below) = (bound, n);
        }
        Some(lower * 1000.0)
    }
}

/// Scrapes `<base>/metrics` over plain HTTP; `None` on any failure, or for an
/// `https://` base (a deployment's public TLS port does not serve /metrics).
pub async fn scrape(base: &str) -> Option<Histogram> {
    let text = tokio::time::timeout(SCRAPE_TIMEOUT, fetch(base))
        .await
        .ok()?
        .ok()?;
    Histogram::parse(&text)
}

async fn fetch(base: &str) -> anyhow::Result<String> {
    let Some(rest) = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("ws://"))
    else {
        bail!("not a plain http:// URL: {base}");
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let tcp = TcpStream::connect(&address)
        .await
        .with_context(|| format!("connect to {address}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/metrics")
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("/metrics answered {}", response.status());
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(counts: [u64; 4], sum: f64) -> String {
        let bounds = ["0.00025", "0.001", "0.0025", "+Inf"];
        let mut s = String::from("# TYPE oxbridge_sfu_forwarding_latency_seconds histogram\n");
        for (le, n) in bounds.iter().zip(counts) {
            s += &format!("{NAME}_bucket{{le=\"{le}\"}} {n}\n");
        }
        s += &format!("{NAME}_sum {sum}\n{NAME}_count {}\n", counts[3]);
        s += "oxbridge_sfu_packets_in_total 5\n";
        s
    }

    #[test]
    fn p99_falls_inside_its_bucket_like_histogram_quantile() {
        // 100 datagrams: 50 within 250 µs, 90 within 1 ms, 100 within 2.5 ms.
        let h = Histogram::parse(&text([50, 90, 100, 100], 0.05)).unwrap();
        assert!((h.mean_ms().unwrap() - 0.5).abs() < 1e-9);
        // Rank 99 is 9 of the 10 in (1 ms, 2.5 ms].
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((p99 - 2.35).abs() < 1e-9, "{p99}");
        let p50 = h.quantile_ms(0.5).unwrap();
        assert!((p50 - 0.25).abs() < 1e-9, "{p50}");
    }

    #[test]
    fn a_window_subtracts_the_earlier_scrape() {
        let start = Histogram::parse(&text([10, 10, 10, 10], 0.001)).unwrap();
        let end = Histogram::parse(&text([10, 100, 110, 110], 0.101)).unwrap();
        let window = end.since(&start);
        assert_eq!(window.count(), 100);
        assert!((window.quantile_ms(0.9).unwrap() - 1.0).abs() < 1e-9);
        assert!((window.mean_ms().unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_tail_past_the_last_bound_reports_that_bound_and_no_histogram_is_none() {
        let h = Histogram::parse(&text([0, 0, 1, 10], 1.0)).unwrap();
        assert!((h.quantile_ms(0.99).unwrap() - 2.5).abs() < 1e-9);
        assert_eq!(Histogram::parse("jvb_conferences 3\n"), None);
    }
}
