//! Calibration statistics and the range each method picks from them.
//!
//! An [`Observer`] sees every calibration value of one tensor, in two passes:
//! the first finds its min and max, the second (methods other than MinMax) fills
//! a histogram of 2,048 bins over that range. [`Method`]s then choose the range
//! to quantize to, as ONNX Runtime's and TensorRT's calibrators do:
//! - `minmax`: the observed range;
//! - `percentile(p)`: the range between the `(100 − p)`th and `p`th percentiles;
//! - `entropy`: the clipping threshold whose quantized histogram is closest (by
//!   KL divergence) to the clipped one (TensorRT's entropy calibration);
//! - `mse`: the clipping of the observed range (shrunk by a factor) with the least
//!   expected squared quantization error.
//!
//! Every range contains 0, so that 0 (zero padding, ReLU's floor) is exact.

use smelt_ir::DType;

/// Bins of a calibration histogram.
pub const BINS: usize = 2048;

/// How a tensor's range is chosen from its calibration values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    MinMax,
    /// The percentile kept (e.g. 99.99).
    Percentile(f64),
    Entropy,
    Mse,
}

impl Method {
    /// Parses `minmax`, `percentile` (99.999), `percentile:P`, `entropy` or `mse`.
    pub fn parse(s: &str) -> Result<Method, String> {
        Ok(match s {
            "minmax" => Method::MinMax,
            "entropy" => Method::Entropy,
            "mse" => Method::Mse,
            "percentile" => Method::Percentile(99.999),
            _ => match s.strip_prefix("percentile:").map(str::parse::<f64>) {
                Some(Ok(p)) if p > 50.0 && p <= 100.0 => Method::Percentile(p),
                Some(_) => return Err(format!("percentile must be in (50, 100], found `{s}`")),
                None => return Err(format!("unknown calibration method `{s}` (use minmax, percentile[:P], entropy or mse)")),
            },
        })
    }

    /// Whether the method needs the second (histogram) pass.
    pub fn needs_histogram(self) -> bool {
        self != Method::MinMax
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::MinMax => write!(f, "minmax"),
            Method::Percentile(p) => write!(f, "percentile:{p}"),
            Method::Entropy => write!(f, "entropy"),
            Method::Mse => write!(f, "mse"),
        }
    }
}

/// The statistics of one tensor over the calibration set.
#[derive(Debug, Clone)]
pub struct Observer {
    pub min: f32,
    pub max: f32,
    /// Values seen (first pass).
    pub count: u64,
    /// Filled in the second pass, over `[lo, hi]` = the range including 0.
    hist: Vec<u64>,
}

impl Default for Observer {
    fn default() -> Observer {
        Observer { min: f32::INFINITY, max: f32::NEG_INFINITY, count: 0, hist: vec![] }
    }
}

impl Observer {
    /// First pass: the range. NaNs are skipped; infinities widen the range to
    /// `f32::MAX` (the scale stays finite).
    pub fn observe_range(&mut self, v: &[f32]) {
        for &x in v {
            if x.is_nan() {
                continue;
            }
            let x = x.clamp(f32::MIN, f32::MAX);
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += v.len() as u64;
    }

    /// The observed range widened to include 0 (`[0, 0]` when nothing was seen).
    pub fn range(&self) -> (f32, f32) {
        if self.min > self.max {
            return (0.0, 0.0);
        }
        (self.min.min(0.0), self.max.max(0.0))
    }

    /// Second pass: the histogram over [`Observer::range`].
    pub fn observe_histogram(&mut self, v: &[f32]) {
        if self.hist.is_empty() {
            self.hist = vec![0; BINS];
        }
        let (lo, hi) = self.range();
        let w = (hi as f64 - lo as f64) / BINS as f64;
        if w <= 0.0 {
            self.hist[0] += v.len() as u64;
            return;
        }
        for &x in v {
            if x.is_nan() {
                continue;
            }
            let b = ((x as f64 - lo as f64) / w).floor().clamp(0.0, (BINS - 1) as f64) as usize;
            self.hist[b] += 1;
        }
    }

    /// The range `method` keeps (always containing 0).
    pub fn choose(&self, method: Method, levels: u32) -> (f32, f32) {
        let (lo, hi) = self.range();
        if self.hist.is_empty() || method == Method::MinMax || hi <= lo {
            return (lo, hi);
        }
        let w = (hi as f64 - lo as f64) / BINS as f64;
        let edge = |b: usize| (lo as f64 + w * b as f64) as f32;
        // The bin holding 0: clipping ranges shrink around it.
        let zero = ((-(lo as f64)) / w).floor().clamp(0.0, (BINS - 1) as f64) as usize;
        match method {
            Method::MinMax => (lo, hi),
            Method::Percentile(p) => {
                let total: u64 = self.hist.iter().sum();
                let tail = ((1.0 - p / 100.0) * total as f64).floor() as u64;
                let (mut b0, mut acc) = (0, 0u64);
                while b0 < zero && acc + self.hist[b0] <= tail {
                    acc += self.hist[b0];
                    b0 += 1;
                }
                let (mut b1, mut acc) = (BINS, 0u64);
                while b1 > zero + 1 && acc + self.hist[b1 - 1] <= tail {
                    acc += self.hist[b1 - 1];
                    b1 -= 1;
                }
                (edge(b0).min(0.0), edge(b1).max(0.0))
            }
            Method::Mse => {
                // Candidates: the range scaled by t around 0; the expected squared
                // error of each bin's centre (clipping plus rounding).
                let mut best = (f64::INFINITY, lo, hi);
                for i in 1..=100 {
                    let t = i as f32 / 100.0;
                    let (a, b) = (lo * t, hi * t);
                    let step = ((b - a) as f64 / (levels - 1) as f64).max(f64::MIN_POSITIVE);
                    let mut err = 0.0;
                    for (k, &n) in self.hist.iter().enumerate() {
                        if n == 0 {
                            continue;
                        }
                        let c = lo as f64 + w * (k as f64 + 0.5);
                        let cl = c.clamp(a as f64, b as f64);
                        let q = ((cl - a as f64) / step).round() * step + a as f64;
                        // Rounding inside the range is uniform: step²/12 on average.
                        let e = if c == cl { step * step / 12.0 } else { (c - q) * (c - q) };
                        err += n as f64 * e;
                    }
                    if err < best.0 {
                        best = (err, a, b);
                    }
                }
                (best.1, best.2)
            }
            Method::Entropy => self.entropy(levels, zero, w, lo),
        }
    }

    /// TensorRT's entropy calibration on the magnitude histogram: the threshold
    /// T whose histogram clipped at T, quantized to the levels available on that
    /// side, diverges least (KL) from the clipped one.
    fn entropy(&self, levels: u32, zero: usize, w: f64, lo: f32) -> (f32, f32) {
        // Fold the histogram around 0 into magnitudes: bin j holds |x| in [j·w, (j+1)·w).
        let n = (BINS - zero).max(zero);
        let mut mag = vec![0u64; n + 1];
        for (k, &c) in self.hist.iter().enumerate() {
            let j = (k as i64 - zero as i64).unsigned_abs() as usize;
            mag[j.min(n)] += c;
        }
        let one_sided = self.min >= 0.0 || self.max <= 0.0;
        let q = (if one_sided { levels } else { levels / 2 }) as usize;
        if n <= q {
            return self.range();
        }
        let mut best = (f64::INFINITY, n);
        for t in (q..=n).step_by(((n - q) / 256).max(1)) {
            // P: the histogram clipped at t, the outliers in its last bin. Q: the
            // slice without them quantized into q levels, each level spread over
            // its non-empty bins; the clipping shows as P's heavier last bin.
            let sliced: Vec<f64> = mag[..t].iter().map(|&c| c as f64).collect();
            let mut p = sliced.clone();
            let outliers: u64 = mag[t..].iter().sum();
            p[t - 1] += outliers as f64;
            let mut qd = vec![0.0; t];
            for l in 0..q {
                let (s, e) = (l * t / q, ((l + 1) * t / q).max(l * t / q + 1));
                let sum: f64 = sliced[s..e].iter().sum();
                let nz = sliced[s..e].iter().filter(|&&x| x > 0.0).count();
                if nz > 0 {
                    for i in s..e {
                        if sliced[i] > 0.0 {
                            qd[i] = sum / nz as f64;
                        }
                    }
                }
            }
            let (ps, qs): (f64, f64) = (p.iter().sum(), qd.iter().sum());
            if ps == 0.0 || qs == 0.0 {
                continue;
            }
            let mut kl = 0.0;
            for i in 0..t {
                if p[i] > 0.0 {
                    let (a, b) = (p[i] / ps, qd[i] / qs);
                    kl += if b > 0.0 { a * (a / b).ln() } else { a * 1e3 };
                }
            }
            if kl < best.0 {
                best = (kl, t);
            }
        }
        let th = (w * best.1 as f64) as f32;
        let (l, h) = self.range();
        let _ = lo;
        (l.max(-th), h.min(th))
    }
}

/// Scale and zero point of the range `[lo, hi]` (containing 0) for `dtype`
/// (`i8` or `u8`): asymmetric over the full 256 levels, or symmetric around 0
/// (`i8` with zero point 0, ±127).
pub fn params(lo: f32, hi: f32, dtype: DType, symmetric: bool) -> (f32, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    if symmetric {
        let m = lo.abs().max(hi.abs());
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        return (s, if dtype == DType::U8 { 128 } else { 0 });
    }
    let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let qmin = if dtype == DType::U8 { 0.0 } else { -128.0 };
    let zp = (qmin - lo / s).round().clamp(qmin, qmin + 255.0) as i32;
    (s, zp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(v: &[f32]) -> Observer {
        let mut o = Observer::default();
        o.observe_range(v);
        o.observe_histogram(v);
        o
    }

    #[test]
    fn percentile_drops_the_outliers_and_minmax_keeps_them() {
        let mut v: Vec<f32> = (0..100_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        v.push(100.0);
        let o = observed(&v);
        assert_eq!(o.choose(Method::MinMax, 256), (0.0, 100.0));
        let (lo, hi) = o.choose(Method::Percentile(99.99), 256);
        assert_eq!(lo, 0.0);
        assert!(hi < 1.1 && hi > 0.9, "{hi}");
        // MSE weighs the one outlier's clipping error (squared: large) against
        // the rounding error of the rest: it clips a little.
        let (lo, hi) = o.choose(Method::Mse, 256);
        assert!(lo == 0.0 && hi < 100.0 && hi > 1.0, "mse: {lo} {hi}");
        // Entropy sees the data's 21 bins of 2,048 spread evenly over few levels
        // either way: the KL divergence does not favour clipping the outlier.
        let (lo, hi) = o.choose(Method::Entropy, 256);
        assert!(lo == 0.0 && hi > 0.5 && hi <= 100.0, "entropy: {lo} {hi}");
    }

    #[test]
    fn ranges_contain_zero_and_params_round_trip() {
        let o = observed(&[2.0, 3.0, 5.0]);
        assert_eq!(o.range(), (0.0, 5.0));
        let (s, z) = params(-1.0, 3.0, DType::U8, false);
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64);
        assert_eq!(params(-1.0, 3.0, DType::I8, true), (3.0 / 127.0, 0));
        assert_eq!(params(0.0, 0.0, DType::U8, false), (1.0, 0));
        // Symmetric spreads of the same data: the scale grows with the clipping.
        let v: Vec<f32> = (0..10_000).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        let o = observed(&v);
        let (lo, hi) = o.choose(Method::Entropy, 256);
        assert!(lo < -1.0 && hi > 1.0 && hi <= 3.0, "{lo} {hi}");
        assert!(Method::parse("percentile:101").is_err() && Method::parse("foo").is_err());
        assert_eq!(Method::parse("percentile:99.9").unwrap(), Method::Percentile(99.9));
    }
}
