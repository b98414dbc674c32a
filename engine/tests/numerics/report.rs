//! Comparing outputs with the interpreter's, and the table of results per op.

use smelt_ir::Tensor;
use std::collections::BTreeMap;

/// f32 tolerance: `|got − want| ≤ ATOL + RTOL·|want|`. Backends compute in f32
/// (the interpreter accumulates in f64) and evaluate transcendentals with the
/// approximations of `codegen/src/math.rs` (a few ulp).
pub const F32_RTOL: f64 = 1e-4;
pub const F32_ATOL: f64 = 1e-4;
/// f16 and bf16 outputs are rounded from f32 results, which may differ from the
/// interpreter's in the last f32 bits: one 16-bit ulp apart at most (relative
/// 2^-10 and 2^-7), on top of the f32 tolerance.
pub const F16_RTOL: f64 = 1.0 / 1024.0;
pub const BF16_RTOL: f64 = 1.0 / 128.0;
// Integers and bools must match exactly.

/// Compares one output; NaN matches NaN.
pub fn compare(name: &str, got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Err(format!("{name}: {}{:?}, expected {}{:?}", got.dtype(), got.shape(), want.dtype(), want.shape()));
    }
    if !want.dtype().is_float() {
        let (g, w) = (got.to_i64(), want.to_i64());
        if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
            return Err(format!("{name}: element {i} is {}, expected {}", g[i], w[i]));
        }
        return Ok(());
    }
    let rtol = F32_RTOL
        + match want.dtype() {
            smelt_ir::DType::F16 => F16_RTOL,
            smelt_ir::DType::BF16 => BF16_RTOL,
            _ => 0.0,
        };
    let (g, w) = (got.to_f32(), want.to_f32());
    let mut worst: Option<(usize, f64)> = None;
    for i in 0..g.len() {
        let (a, e) = (g[i] as f64, w[i] as f64);
        let ok = (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= F32_ATOL + rtol * e.abs();
        if !ok {
            let err = if a.is_nan() || e.is_nan() { f64::INFINITY } else { (a - e).abs() };
            if worst.is_none_or(|(_, w)| err > w) {
                worst = Some((i, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, err)) => Err(format!("{name}: element {i} is {}, expected {} (|err| {err:e}, the worst)", g[i], w[i])),
    }
}

/// Counts per op: passed, unsupported, failed.
#[derive(Debug, Default)]
pub struct Table {
    rows: BTreeMap<String, [usize; 3]>,
    pub failures: Vec<String>,
}

impl Table {
    pub fn pass(&mut self, op: &str) {
        self.rows.entry(op.to_string()).or_default()[0] += 1;
    }
    pub fn unsupported(&mut self, op: &str) {
        self.rows.entry(op.to_string()).or_default()[1] += 1;
    }
    pub fn fail(&mut self, op: &str, msg: String) {
        self.rows.entry(op.to_string()).or_default()[2] += 1;
        self.failures.push(msg);
    }
    pub fn passed(&self, op: &str) -> usize {
        self.rows.get(op).map_or(0, |r| r[0])
    }

    /// The table as text: one row per op with its counts and a verdict.
    pub fn render(&self, title: &str) -> String {
        let mut s = format!("{title}\n{:<24} {:>6} {:>12} {:>7}  status\n", "op", "pass", "unsupported", "fail");
        for (op, [p, u, f]) in &self.rows {
            let status = if *f > 0 {
                "FAIL"
            } else if *u > 0 && *p == 0 {
                "unsupported"
            } else if *u > 0 {
                "partial"
            } else {
                "pass"
            };
            s.push_str(&format!("{op:<24} {p:>6} {u:>12} {f:>7}  {status}\n"));
        }
        s
    }
}
