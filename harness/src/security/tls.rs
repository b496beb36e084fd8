//! Check (c), TLS overhead: the same warm request over plain HTTP and over HTTPS through the same front door,
//! interleaved (HTTP, HTTPS, HTTP, HTTPS ...) so that drift in the backend hits both alike, once on kept-alive
//! connections and once on a new connection per request (connect and handshake included).
//!
//! The overhead is `median(HTTPS) / median(HTTP) - 1`, in %, with a 95% percentile-bootstrap interval: the
//! request pairs are resampled with replacement ([`RESAMPLES`] times, fixed seed, so a run's figure is
//! reproducible from its raw samples) and the ratio of medians recomputed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    auth::Protected,
    http::{HttpClient, Req, Resp},
    Error,
};

/// Bootstrap resamples.
pub const RESAMPLES: usize = 2000;
/// Bootstrap seed.
pub const SEED: u64 = 0x5eed_7150;

/// How many requests, how fast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Measured HTTP/HTTPS pairs per connection mode.
    pub pairs: usize,
    /// Unmeasured pairs first (connections, caches and the function warm).
    pub warmup: usize,
    /// Least time between two requests (keeps the traffic under the stage's throttle); `None`: back to back.
    pub pace: Option<Duration>,
    /// Longest the paced requests may take in all; a pace that needs longer is refused up front.
    pub max_duration: Duration,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan { pairs: 200, warmup: 20, pace: None, max_duration: Duration::from_secs(180) }
    }
}

/// The overhead in one connection mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// `keep_alive` or `new_connection`.
    pub mode: String,
    /// Pairs measured.
    pub n: usize,
    /// Median HTTP time, ms.
    pub http_median_ms: f64,
    /// Median HTTPS time, ms.
    pub https_median_ms: f64,
    /// `(median HTTPS / median HTTP - 1) * 100`.
    pub overhead_pct: f64,
    /// 95% bootstrap interval of the overhead, lower bound.
    pub ci_low: f64,
    /// 95% bootstrap interval of the overhead, upper bound.
    pub ci_high: f64,
}

/// Both modes and the raw samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsReport {
    /// On kept-alive connections.
    pub keep_alive: Overhead,
    /// On a new connection per request.
    pub new_connection: Overhead,
    /// `(mode, http seconds, https seconds)` per measured pair.
    pub samples: Vec<(String, f64, f64)>,
}

fn check_status(resp: Resp, url: &str, i: usize) -> Result<f64, Error> {
    if !(200..300).contains(&resp.status) {
        return Err(Error::Measurement(format!(
            "TLS overhead: request {i} to {url} answered {} instead of 2xx (throttled or failing: nothing to compare)",
            resp.status
        )));
    }
    Ok(resp.elapsed.as_secs_f64())
}

fn request(p: &Protected) -> Req {
    let mut req = match &p.body {
        Some(b) => Req::post(&p.url, b.clone()),
        None => Req::get(&p.url),
    };
    for (k, v) in p.credential.headers() {
        req = req.header(&k, &v);
    }
    req
}

/// Measures both modes; `http` and `https` are the same front-door route over the two schemes.
pub async fn measure(
    client: &HttpClient,
    http: &Protected,
    https: &Protected,
    plan: &Plan,
) -> Result<TlsReport, Error> {
    if plan.pairs < 10 {
        return Err(Error::Measurement(format!("TLS overhead needs at least 10 pairs, {} asked", plan.pairs)));
    }
    let requests = 2 * (plan.warmup + plan.warmup.min(5) + 2 * plan.pairs);
    let paced = plan.pace.unwrap_or_default() * requests as u32;
    if paced > plan.max_duration {
        return Err(Error::Measurement(format!(
            "TLS overhead: {requests} requests paced {:?} apart under the stage throttle take {paced:?}, over the \
             {:?} allowed; raise the test stage's rate limit or lower tls_pairs",
            plan.pace.unwrap_or_default(),
            plan.max_duration
        )));
    }
    let (a, b) = (request(http), request(https));
    let pace = || async {
        if let Some(p) = plan.pace {
            tokio::time::sleep(p).await;
        }
    };
    let mut samples = Vec::new();
    let mut ca = client.connect(&http.url).await?;
    let mut cb = client.connect(&https.url).await?;
    let mut pairs = Vec::with_capacity(plan.pairs);
    for i in 0..plan.warmup + plan.pairs {
        pace().await;
        let ta = check_status(ca.send(&a).await?, &a.url, i)?;
        pace().await;
        let tb = check_status(cb.send(&b).await?, &b.url, i)?;
        if i >= plan.warmup {
            pairs.push((ta, tb));
        }
    }
    drop((ca, cb));
    let keep_alive = overhead("keep_alive", &pairs);
    samples.extend(pairs.iter().map(|&(x, y)| ("keep_alive".to_string(), x, y)));
    pairs.clear();
    for i in 0..plan.warmup.min(5) + plan.pairs {
        pace().await;
        let ta = check_status(client.send(&a).await?, &a.url, i)?;
        pace().await;
        let tb = check_status(client.send(&b).await?, &b.url, i)?;
        if i >= plan.warmup.min(5) {
            pairs.push((ta, tb));
        }
    }
    let new_connection = overhead("new_connection", &pairs);
    samples.extend(pairs.iter().map(|&(x, y)| ("new_connection".to_string(), x, y)));
    Ok(TlsReport { keep_alive, new_connection, samples })
}

/// The overhead of the second member of each pair over the first, with its bootstrap interval.
pub fn overhead(mode: &str, pairs: &[(f64, f64)]) -> Overhead {
    let ratio = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut x, mut y): (Vec<f64>, Vec<f64>) = idx.map(|i| pairs[i]).unzip();
        (median(&mut y) / median(&mut x) - 1.0) * 100.0
    };
    let n = pairs.len();
    let point = ratio(&mut (0..n));
    let mut rng = SplitMix64(SEED);
    let mut boots: Vec<f64> =
        (0..RESAMPLES).map(|_| ratio(&mut (0..n).map(|_| (rng.next() % n as u64) as usize))).collect();
    boots.sort_by(f64::total_cmp);
    let at = |q: f64| boots[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    Overhead {
        mode: mode.to_string(),
        n,
        http_median_ms: median(&mut xs) * 1e3,
        https_median_ms: median(&mut ys) * 1e3,
        overhead_pct: point,
        ci_low: at(0.025),
        ci_high: at(0.975),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The SplitMix64 generator: tiny, fast, and good enough to draw bootstrap indices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_ratio_is_recovered_with_an_interval_around_it() {
        let pairs: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let base = 1.0 + f64::from(i % 17) * 0.01;
                (base, base * 1.10)
            })
            .collect();
        let o = overhead("keep_alive", &pairs);
        assert!((o.overhead_pct - 10.0).abs() < 1e-9, "{o:?}");
        assert!(o.ci_low <= o.overhead_pct && o.overhead_pct <= o.ci_high, "{o:?}");
        assert_eq!(o.n, 200);
    }

    #[test]
    fn the_interval_is_reproducible_and_widens_with_noise() {
        let noisy: Vec<(f64, f64)> =
            (0..100u32).map(|i| (1.0 + f64::from(i * 37 % 50) / 50.0, 1.0 + f64::from(i * 53 % 50) / 50.0)).collect();
        let quiet: Vec<(f64, f64)> = (0..100u32).map(|i| (1.0 + f64::from(i % 2) / 1000.0, 1.0)).collect();
        let (a, b) = (overhead("x", &noisy), overhead("x", &noisy));
        assert_eq!(a, b);
        let q = overhead("x", &quiet);
        assert!(a.ci_high - a.ci_low > 10.0 * (q.ci_high - q.ci_low), "{a:?} {q:?}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
