//! The stated maximum errors of the inline transcendentals (`codegen/src/math.rs`),
//! checked on dense sweeps with the scalar reference [`F32Ref`], which performs the
//! same operations as the emitted code (the JIT tests check that the emitted code
//! agrees with it bit for bit).

use smelt_codegen::math::{self, F32Ref};

/// Distance in units in the last place of the f32 nearest to `want`.
fn ulps(got: f32, want: f64) -> f64 {
    let w = want as f32;
    if got == w || (got.is_nan() && want.is_nan()) {
        return 0.0;
    }
    if got.is_nan() || want.is_nan() || got.is_infinite() || w.is_infinite() {
        return f64::INFINITY;
    }
    let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
    (got as f64 - want).abs() / ulp.max(f32::from_bits(1) as f64)
}

/// Evenly spaced points plus every power-of-two-ish scale.
fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..=n).map(|i| lo + (hi - lo) * (i as f32 / n as f32)).collect()
}

/// The worst error over `xs`, where a point passes if within `max_ulp` ulp or
/// `abs` absolute; returns (worst ulp among failures of abs, worst abs).
fn check(name: &str, xs: &[f32], f: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64, max_ulp: f64, abs: f64) {
    let mut worst = (0.0f64, 0.0f64, 0.0f32);
    for &x in xs {
        let got = f(x);
        let want = exact(x as f64);
        let u = ulps(got, want);
        let a = (got as f64 - want).abs();
        if u > max_ulp && a > abs {
            panic!("{name}({x:e}) = {got:e}, want {want:e}: {u:.1} ulp, {a:e} absolute");
        }
        if u > worst.0 {
            worst = (u, a, x);
        }
    }
    eprintln!("{name}: worst {:.2} ulp ({:e} absolute) at {:e}", worst.0, worst.1, worst.2);
}

#[test]
fn exp_within_2_ulp() {
    let mut xs = sweep(-87.0, 88.0, 400_000);
    xs.extend(sweep(-1.0, 1.0, 100_000));
    check("exp", &xs, |x| math::exp(&mut F32Ref, x), f64::exp, 2.0, 0.0);
    // Beyond the normal range: denormal results flushed to 0 (the lowest input
    // with a normal result keeps it), overflow, NaN.
    assert_eq!(math::exp(&mut F32Ref, 100.0), f32::INFINITY);
    assert_eq!(math::exp(&mut F32Ref, -200.0), 0.0);
    assert_eq!(math::exp(&mut F32Ref, f32::NEG_INFINITY), 0.0);
    assert!(math::exp(&mut F32Ref, f32::NAN).is_nan());
    assert_eq!(math::exp(&mut F32Ref, -100.0), 0.0);
    assert_eq!(math::exp(&mut F32Ref, -87.336_56), 0.0);
    let lowest = math::exp(&mut F32Ref, -87.336_54);
    assert!((f32::MIN_POSITIVE * 0.999_999..1.2e-38).contains(&lowest), "{lowest:e}");
}

#[test]
fn log_within_2_ulp() {
    let mut xs: Vec<f32> = sweep(1e-3, 10.0, 300_000);
    xs.extend((0..200_000).map(|i| f32::from_bits(1 + i * 10_650)));
    check("log", &xs, |x| math::log(&mut F32Ref, x), f64::ln, 2.0, 0.0);
    assert_eq!(math::log(&mut F32Ref, 0.0), f32::NEG_INFINITY);
    assert_eq!(math::log(&mut F32Ref, f32::INFINITY), f32::INFINITY);
    assert!(math::log(&mut F32Ref, -1.0).is_nan());
    assert!(math::log(&mut F32Ref, f32::NAN).is_nan());
}

#[test]
fn tanh_sigmoid_erf() {
    let xs = sweep(-10.0, 10.0, 400_000);
    check("tanh", &xs, |x| math::tanh(&mut F32Ref, x), f64::tanh, 4.0, 4e-7);
    let xs = sweep(-80.0, 80.0, 400_000);
    check("sigmoid", &xs, |x| math::sigmoid(&mut F32Ref, x), |x| 1.0 / (1.0 + (-x).exp()), 4.0, 0.0);
    let xs = sweep(-5.0, 5.0, 40_000);
    check("erf", &xs, |x| math::erf(&mut F32Ref, x), smelt_ir::ops::elementwise::erf, f64::INFINITY, 4e-7);
    assert!(math::tanh(&mut F32Ref, f32::NAN).is_nan());
    assert_eq!(math::tanh(&mut F32Ref, f32::INFINITY), 1.0);
    assert_eq!(math::erf(&mut F32Ref, f32::NEG_INFINITY), -1.0);
}

#[test]
fn sin_cos_within_2e7() {
    let xs = sweep(-100.0, 100.0, 800_000);
    check("sin", &xs, |x| math::sin(&mut F32Ref, x), f64::sin, f64::INFINITY, 2e-7);
    check("cos", &xs, |x| math::cos(&mut F32Ref, x), f64::cos, f64::INFINITY, 2e-7);
}

#[test]
fn softplus_and_pow() {
    let xs = sweep(-80.0, 80.0, 400_000);
    let exact = |x: f64| if x > 20.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() };
    check("softplus", &xs, |x| math::softplus(&mut F32Ref, x), exact, 4.0, 1e-30);
    let mut worst = 0.0f64;
    for i in 0..400 {
        let a = 0.01 * (10_000f32).powf(i as f32 / 399.0);
        for j in 0..=80 {
            let b = -4.0 + j as f32 * 0.1;
            let got = math::pow(&mut F32Ref, a, b) as f64;
            let want = (a as f64).powf(b as f64);
            let rel = (got - want).abs() / want;
            assert!(rel < 4e-6, "pow({a}, {b}) = {got}, want {want}");
            worst = worst.max(rel);
        }
    }
    eprintln!("pow: worst relative error {worst:e}");
    // C rules: negative bases with integral exponents, zeros, units.
    assert_eq!(math::pow(&mut F32Ref, -2.0, 3.0), -8.0);
    assert_eq!(math::pow(&mut F32Ref, -2.0, 2.0), 4.0);
    assert!(math::pow(&mut F32Ref, -2.0, 0.5).is_nan());
    assert_eq!(math::pow(&mut F32Ref, 0.0, 2.0), 0.0);
    assert_eq!(math::pow(&mut F32Ref, 0.0, -1.0), f32::INFINITY);
    assert_eq!(math::pow(&mut F32Ref, f32::NAN, 0.0), 1.0);
    assert_eq!(math::pow(&mut F32Ref, 1.0, f32::NAN), 1.0);
}
