//! Comparing a result with the interpreter's, the one rule every suite uses: per
//! output, `|got − want| ≤ atol·max|want| + rtol·|want|` for floats (NaN matches
//! NaN, an infinity only itself), exact equality for integers and bools. The
//! absolute part scales with the output's own magnitude, so small outputs are
//! checked as closely as large ones: a softmax over 4,099 classes, whose
//! probabilities are mostly below 1e-4, fails if any of them comes out 0.

use smelt_ir::{DType, Tensor};

/// A tolerance for float outputs (integers and bools are always exact).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative to each expected element.
    pub rtol: f64,
    /// Relative to the largest expected magnitude of the output.
    pub atol: f64,
}

impl Tolerance {
    /// Backends against the interpreter in f32: they compute in f32 (the
    /// interpreter accumulates some sums in f64) and evaluate transcendentals with
    /// polynomial approximations of a few ulp.
    pub const F32: Tolerance = Tolerance { rtol: 1e-4, atol: 1e-4 };

    /// The default for an output of dtype `d`: f16 and bf16 outputs are rounded
    /// from f32 results that may differ from the interpreter's in the last f32
    /// bits, so one 16-bit ulp more (2⁻¹⁰ and 2⁻⁷ relative).
    pub fn for_dtype(d: DType) -> Tolerance {
        let t = Tolerance::F32;
        match d {
            DType::F16 => Tolerance { rtol: t.rtol + 1.0 / 1024.0, atol: t.atol + 1.0 / 1024.0 },
            DType::BF16 => Tolerance { rtol: t.rtol + 1.0 / 128.0, atol: t.atol + 1.0 / 128.0 },
            _ => t,
        }
    }

    /// This tolerance, `k` times looser (a stated reason belongs beside each use).
    pub fn times(self, k: f64) -> Tolerance {
        Tolerance { rtol: self.rtol * k, atol: self.atol * k }
    }
}

/// Compares one output `name` with the expected tensor at `tol`; `Err` names the
/// worst element.
pub fn compare(name: &str, got: &Tensor, want: &Tensor, tol: Tolerance) -> Result<(), String> {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Err(format!("{name}: {}{:?}, expected {}{:?}", got.dtype(), got.shape(), want.dtype(), want.shape()));
    }
    if !want.dtype().is_float() {
        let (g, w) = (got.to_i64(), want.to_i64());
        return match (0..g.len()).find(|&i| g[i] != w[i]) {
            Some(i) => Err(format!("{name}: element {i} is {}, expected {}", g[i], w[i])),
            None => Ok(()),
        };
    }
    let (g, w) = (got.to_f32(), want.to_f32());
    let scale = w.iter().filter(|x| x.is_finite()).fold(0.0f64, |m, &x| m.max((x as f64).abs()));
    let mut worst: Option<(usize, f64)> = None;
    for i in 0..g.len() {
        let (a, e) = (g[i] as f64, w[i] as f64);
        let ok = (a.is_nan() && e.is_nan()) || a == e || (e.is_finite() && (a - e).abs() <= tol.atol * scale + tol.rtol * e.abs());
        if !ok {
            let err = if a.is_finite() && e.is_finite() { (a - e).abs() } else { f64::INFINITY };
            if worst.is_none_or(|(_, w)| err > w) {
                worst = Some((i, err));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, err)) => Err(format!(
            "{name}: element {i} is {}, expected {} (|err| {err:e} > {:e}·max|want| {scale:e} + {:e}·|want|; the worst)",
            g[i], w[i], tol.atol, tol.rtol
        )),
    }
}

/// Compares every output the interpreter gave (`want`) with `got`, each at the
/// default tolerance of its dtype; a missing output is an error.
pub fn compare_all(what: &str, got: &crate::Tensors, want: &crate::Tensors) -> Result<(), String> {
    for (k, w) in want {
        match got.get(k) {
            Some(t) => compare(&format!("{what}.{k}"), t, w, Tolerance::for_dtype(w.dtype()))?,
            None => return Err(format!("{what}: no output `{k}`")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Tolerance, compare};
    use smelt_ir::Tensor;

    fn t(v: Vec<f32>) -> Tensor {
        Tensor::f32(vec![v.len()], v).unwrap()
    }

    #[test]
    fn small_outputs_are_checked_at_their_own_scale() {
        let tol = Tolerance::F32;
        // A softmax whose probabilities are all about 2.4e-4: returning zeros fails.
        let want = t(vec![2.4e-4; 4099]);
        assert!(compare("p", &t(vec![0.0; 4099]), &want, tol).is_err());
        assert!(compare("p", &t(vec![2.4e-4 * (1.0 + 5e-5); 4099]), &want, tol).is_ok());
        // Near-zero elements of a large output get the output's scale.
        let want = t(vec![1000.0, 1e-3]);
        assert!(compare("y", &t(vec![1000.0, 1e-3 + 5e-2]), &want, tol).is_ok());
        assert!(compare("y", &t(vec![1000.0, 1e-3 + 0.5]), &want, tol).is_err());
    }

    #[test]
    fn nan_inf_ints_and_shapes() {
        let tol = Tolerance::F32;
        assert!(compare("y", &t(vec![f32::NAN, f32::INFINITY]), &t(vec![f32::NAN, f32::INFINITY]), tol).is_ok());
        assert!(compare("y", &t(vec![1.0, f32::INFINITY]), &t(vec![1.0, f32::NEG_INFINITY]), tol).is_err());
        assert!(compare("y", &t(vec![f32::NAN]), &t(vec![0.0]), tol).is_err());
        assert!(compare("y", &t(vec![1e30]), &t(vec![f32::INFINITY]), tol).is_err());
        let i = |v: Vec<i64>| Tensor::i64(vec![v.len()], v).unwrap();
        assert!(compare("y", &i(vec![1, 2]), &i(vec![1, 2]), tol).is_ok());
        assert!(compare("y", &i(vec![1, 3]), &i(vec![1, 2]), tol).is_err());
        assert!(compare("y", &t(vec![1.0]), &t(vec![1.0, 2.0]), tol).is_err());
    }
}
