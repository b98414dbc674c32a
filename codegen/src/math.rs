//! Transcendental functions as inline polynomial and rational approximations,
//! written once against [`MathOps`] so that every emitter (and the scalar reference
//! [`F32Ref`] the accuracy tests use) computes the same sequence of operations.
//!
//! Maximum errors, measured by the tests below against `f64` references on dense
//! sweeps (ulp = unit in the last place of the f32 result):
//!
//! | function | range tested | max error |
//! |---|---|---|
//! | `exp` | [-87, 88] | 2 ulp |
//! | `log` | (0, 3.4e38], denormals included | 2 ulp |
//! | `tanh` | [-10, 10] | 4 ulp, or 4e-7 absolute near ±1 |
//! | `sigmoid` | [-80, 80] | 4 ulp |
//! | `erf` | [-5, 5] | 4e-7 absolute |
//! | `sin`, `cos` | [-100, 100] | 2e-7 absolute |
//! | `softplus` | [-80, 80] | 4 ulp or 1e-30 absolute |
//! | `pow` | a ∈ [0.01, 100], b ∈ [-4, 4] | 4e-6 relative |
//!
//! Special values follow C: `exp(±inf)` is inf/0 (and `exp` flushes its denormal
//! results, x < −87.34, to 0; `pow` keeps them), `log(0) = -inf`, `log(x<0) = NaN`,
//! NaN in gives NaN out; `pow` follows `powf` for zeros, negative bases and
//! `pow(x, 0) = pow(1, y) = 1`.
//!
//! Coefficients are written as published (Cephes, Eigen), some with more digits
//! than an f32 holds.
#![allow(clippy::excessive_precision)]

/// The operations the approximations are written in. `F` is an f32 value (scalar or
/// vector), `I` an i32 value of the same lanes, `M` a mask/bool of the same lanes.
pub trait MathOps {
    type F: Copy;
    type I: Copy;
    type M: Copy;
    fn fconst(&mut self, c: f32) -> Self::F;
    fn iconst(&mut self, c: i32) -> Self::I;
    fn fadd(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn fsub(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn fmul(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn fdiv(&mut self, a: Self::F, b: Self::F) -> Self::F;
    /// `a·b + c`, fused.
    fn fma(&mut self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    fn fneg(&mut self, a: Self::F) -> Self::F;
    fn fabs(&mut self, a: Self::F) -> Self::F;
    fn floor(&mut self, a: Self::F) -> Self::F;
    /// Min/max of non-NaN operands (either result is fine for NaN).
    fn fmin(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn fmax(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn flt(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn feq(&mut self, a: Self::F, b: Self::F) -> Self::M;
    /// True where `a` is NaN.
    fn fisnan(&mut self, a: Self::F) -> Self::M;
    fn mor(&mut self, a: Self::M, b: Self::M) -> Self::M;
    fn mand(&mut self, a: Self::M, b: Self::M) -> Self::M;
    fn select(&mut self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;
    /// Integral float to int (truncating).
    fn f2i(&mut self, a: Self::F) -> Self::I;
    fn i2f(&mut self, a: Self::I) -> Self::F;
    fn fbits(&mut self, a: Self::F) -> Self::I;
    fn bitsf(&mut self, a: Self::I) -> Self::F;
    fn iadd(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn isub(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn iand(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn ior(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn ishl(&mut self, a: Self::I, n: u32) -> Self::I;
    /// Arithmetic shift right.
    fn isra(&mut self, a: Self::I, n: u32) -> Self::I;
}

/// Horner evaluation of `c[0]·xⁿ + … + c[n]` with fused multiply-adds.
fn horner<O: MathOps>(o: &mut O, x: O::F, c: &[f32]) -> O::F {
    let mut p = o.fconst(c[0]);
    for &k in &c[1..] {
        let kc = o.fconst(k);
        p = o.fma(p, x, kc);
    }
    p
}

fn clamp<O: MathOps>(o: &mut O, x: O::F, lo: f32, hi: f32) -> O::F {
    let (l, h) = (o.fconst(lo), o.fconst(hi));
    let x = o.fmin(x, h);
    o.fmax(x, l)
}

/// `eˣ` (Cephes `expf` polynomial; the scale 2ⁿ applied in two halves so that
/// results overflow to inf). Results below the smallest normal f32 (x < −87.34)
/// are 0: producing or consuming denormals costs a microcode assist per element
/// on x86 — softmax rows of masked attention scores (−3.4e38) ran 5–6× slower —
/// for an absolute difference under 1.2e-38.
pub fn exp<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    exp_scaled(o, x, true)
}

/// `eˣ` as [`exp`], the denormal results kept when not `flush` (for `pow`,
/// which C takes into the denormals: `powf(1e-40, 1) = 1e-40`).
fn exp_scaled<O: MathOps>(o: &mut O, x: O::F, flush: bool) -> O::F {
    // Flushing: below −87.34 the result is 0 (the select below), and clamping
    // there keeps every intermediate normal too.
    let lo = if flush { -87.336_54 } else { -104.0 };
    let xc = clamp(o, x, lo, 89.0);
    let (l2e, half) = (o.fconst(std::f32::consts::LOG2_E), o.fconst(0.5));
    let t = o.fma(xc, l2e, half);
    let n = o.floor(t);
    let (c1, c2) = (o.fconst(-0.693_359_4), o.fconst(2.121_944_4e-4));
    let r = o.fma(n, c1, xc);
    let r = o.fma(n, c2, r);
    let p = horner(o, r, &[1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.0e-1]);
    let r2 = o.fmul(r, r);
    let y = o.fma(p, r2, r);
    let one = o.fconst(1.0);
    let y = o.fadd(y, one);
    let ni = o.f2i(n);
    let n1 = o.isra(ni, 1);
    let n2 = o.isub(ni, n1);
    let bias = o.iconst(127);
    let e1 = o.iadd(n1, bias);
    let e1 = o.ishl(e1, 23);
    let e2 = o.iadd(n2, bias);
    let e2 = o.ishl(e2, 23);
    let (s1, s2) = (o.bitsf(e1), o.bitsf(e2));
    let y = o.fmul(y, s1);
    let y = o.fmul(y, s2);
    let y = if flush {
        let (lowest, zero) = (o.fconst(lo), o.fconst(0.0));
        let tiny = o.flt(x, lowest);
        o.select(tiny, zero, y)
    } else {
        y
    };
    let nan = o.fisnan(x);
    o.select(nan, x, y)
}

/// `ln x` (Cephes `logf`), denormals scaled up first.
pub fn log<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let tiny = o.fconst(f32::MIN_POSITIVE);
    let small = o.flt(x, tiny);
    let scale = o.fconst(8_388_608.0); // 2^23
    let xs = o.fmul(x, scale);
    let xs = o.select(small, xs, x);
    let (m23, zero) = (o.fconst(-23.0), o.fconst(0.0));
    let eadj = o.select(small, m23, zero);
    let bits = o.fbits(xs);
    let e = o.isra(bits, 23);
    let b126 = o.iconst(126);
    let e = o.isub(e, b126);
    let mmask = o.iconst(0x807f_ffffu32 as i32);
    let mb = o.iand(bits, mmask);
    let half_bits = o.iconst(0x3f00_0000);
    let mb = o.ior(mb, half_bits);
    let m = o.bitsf(mb); // in [0.5, 1)
    let ef = o.i2f(e);
    let ef = o.fadd(ef, eadj);
    let sqrth = o.fconst(std::f32::consts::FRAC_1_SQRT_2);
    let lo = o.flt(m, sqrth);
    let one = o.fconst(1.0);
    let e_dec = o.fsub(ef, one);
    let ef = o.select(lo, e_dec, ef);
    let m2 = o.fadd(m, m);
    let m = o.select(lo, m2, m);
    let m = o.fsub(m, one);
    let z = o.fmul(m, m);
    let p = horner(
        o,
        m,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333_1e-1,
        ],
    );
    let y = o.fmul(p, m);
    let y = o.fmul(y, z);
    let c2 = o.fconst(-2.121_944_4e-4);
    let y = o.fma(ef, c2, y);
    let mhalf = o.fconst(-0.5);
    let y = o.fma(z, mhalf, y);
    let r = o.fadd(m, y);
    let c1 = o.fconst(0.693_359_4);
    let r = o.fma(ef, c1, r);
    // Special values, from the original x.
    let (inf, ninf, nan) = (o.fconst(f32::INFINITY), o.fconst(f32::NEG_INFINITY), o.fconst(f32::NAN));
    let is_inf = o.feq(x, inf);
    let r = o.select(is_inf, inf, r);
    let zero = o.fconst(0.0);
    let is_zero = o.feq(x, zero);
    let r = o.select(is_zero, ninf, r);
    let neg = o.flt(x, zero);
    let r = o.select(neg, nan, r);
    let isnan = o.fisnan(x);
    o.select(isnan, x, r)
}

/// `tanh x`: Eigen's [13/6] rational approximation on x clamped to ±7.9053 (its
/// largest value, 1 − 1.8e-7), odd by construction; `x` itself below |x| = 0.0004. One
/// division and no exponential, ±1 from |x| = 9 on. Near saturation its absolute
/// error (up to 3.4e-7) is 6 ulp of a result just below 1: the price of being
/// several times cheaper than `sign(x)·(1 − 2/(e^{2|x|} + 1))`.
pub fn tanh<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let xc = clamp(o, x, -7.905_311, 7.905_311);
    let x2 = o.fmul(xc, xc);
    let p = horner(
        o,
        x2,
        &[-2.760_768_5e-16, 2.000_187_9e-13, -8.604_671_5e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3],
    );
    let p = o.fmul(p, xc);
    let q = horner(o, x2, &[1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3]);
    let r = o.fdiv(p, q);
    let ax = o.fabs(x);
    let tiny = o.fconst(0.0004);
    let tiny = o.flt(ax, tiny);
    let r = o.select(tiny, x, r);
    // From 9 on, tanh rounds to ±1 (the rational stays 3 ulp short of it).
    let nine = o.fconst(9.0);
    let sat = o.flt(nine, ax);
    let (one, mone, zero) = (o.fconst(1.0), o.fconst(-1.0), o.fconst(0.0));
    let neg = o.flt(x, zero);
    let unit = o.select(neg, mone, one);
    let r = o.select(sat, unit, r);
    let nan = o.fisnan(x);
    o.select(nan, x, r)
}

/// `1 / (1 + e⁻ˣ)`.
pub fn sigmoid<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let nx = o.fneg(x);
    let e = exp(o, nx);
    let one = o.fconst(1.0);
    let d = o.fadd(one, e);
    o.fdiv(one, d)
}

/// `erf x` (a [13/8] rational approximation on [-4, 4], as Eigen's).
pub fn erf<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let xc = clamp(o, x, -4.0, 4.0);
    let x2 = o.fmul(xc, xc);
    let p = horner(
        o,
        x2,
        &[
            -2.726_142_3e-10,
            2.770_681_4e-8,
            -2.101_024e-6,
            -5.692_506_4e-5,
            -7.349_906_3e-4,
            -2.954_6e-3,
            -1.609_603_3e-2,
        ],
    );
    let p = o.fmul(p, xc);
    let q = horner(o, x2, &[-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329_2e-3, -1.426_473_9e-2]);
    let r = o.fdiv(p, q);
    // Beyond 3.9, erf rounds to ±1 in f32 (the rational is a little short there).
    let ax = o.fabs(x);
    let edge = o.fconst(3.9);
    let inner = o.flt(ax, edge);
    let zero = o.fconst(0.0);
    let neg = o.flt(x, zero);
    let (one, mone) = (o.fconst(1.0), o.fconst(-1.0));
    let sat = o.select(neg, mone, one);
    let r = o.select(inner, r, sat);
    let nan = o.fisnan(x);
    o.select(nan, x, r)
}

/// Shared by sin and cos (Cephes): for `ax = |x|`, the reduced argument `z`,
/// whether the octant pair wants the other polynomial (`j == 2`), and whether the
/// octant is in 0..3 (no sign flip from the half turn).
fn sincos_reduce<O: MathOps>(o: &mut O, ax: O::F) -> (O::F, O::M, O::M) {
    let fopi = o.fconst(std::f32::consts::FRAC_PI_4.recip());
    let k = o.fmul(ax, fopi);
    let k = o.floor(k);
    // y = (k + 1) & !1 = 2·floor((k + 1)/2), exact below 2^23.
    let (one, half, two) = (o.fconst(1.0), o.fconst(0.5), o.fconst(2.0));
    let k1 = o.fadd(k, one);
    let h = o.fmul(k1, half);
    let h = o.floor(h);
    let y = o.fmul(h, two);
    // Octant j = y mod 8 ∈ {0, 2, 4, 6}; j > 3 flips the sign and subtracts 4.
    let (eighth, m8) = (o.fconst(0.125), o.fconst(-8.0));
    let t = o.fmul(y, eighth);
    let t = o.floor(t);
    let j = o.fma(t, m8, y);
    let four = o.fconst(4.0);
    let low = o.flt(j, four);
    let j4 = o.fsub(j, four);
    let j = o.select(low, j, j4); // 0 or 2
    let other = o.flt(one, j); // j == 2
    let (d1, d2, d3) = (o.fconst(-0.785_156_25), o.fconst(-2.418_756_5e-4), o.fconst(-3.774_895e-8));
    let z = o.fma(y, d1, ax);
    let z = o.fma(y, d2, z);
    let z = o.fma(y, d3, z);
    (z, other, low)
}

fn sin_poly<O: MathOps>(o: &mut O, z: O::F) -> O::F {
    let zz = o.fmul(z, z);
    let p = horner(o, zz, &[-1.951_529_6e-4, 8.332_161e-3, -1.666_665_5e-1]);
    let t = o.fmul(p, zz);
    o.fma(t, z, z)
}

fn cos_poly<O: MathOps>(o: &mut O, z: O::F) -> O::F {
    let zz = o.fmul(z, z);
    let p = horner(o, zz, &[2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2]);
    let zz2 = o.fmul(zz, zz);
    let t = o.fmul(p, zz2);
    let mh = o.fconst(-0.5);
    let t = o.fma(zz, mh, t);
    let one = o.fconst(1.0);
    o.fadd(t, one)
}

/// `sin x` (Cephes `sinf`: reduction by π/4 in three parts; accurate for |x| up to
/// about 8192).
pub fn sin<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let ax = o.fabs(x);
    let (z, use_cos, low_octant) = sincos_reduce(o, ax);
    let s = sin_poly(o, z);
    let c = cos_poly(o, z);
    let r = o.select(use_cos, c, s);
    let nr = o.fneg(r);
    // Negative when x < 0 xor the octant is 4..7.
    let zero = o.fconst(0.0);
    let xneg = o.flt(x, zero);
    let pos_a = o.select(low_octant, r, nr);
    let neg_a = o.select(low_octant, nr, r);
    o.select(xneg, neg_a, pos_a)
}

/// `cos x` (Cephes `cosf`).
pub fn cos<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let ax = o.fabs(x);
    let (z, use_cos, low_octant) = sincos_reduce(o, ax);
    let s = sin_poly(o, z);
    let c = cos_poly(o, z);
    // Octant after reduction j ∈ {0, 2} (from q); cos uses the cosine polynomial
    // where sin uses the sine one, and flips sign when j (mod 4) > 1, and again in
    // octants 4..7.
    let r = o.select(use_cos, s, c);
    let nr = o.fneg(r);
    // sign: negative when (use_cos) xor (not low_octant).
    let a = o.select(use_cos, nr, r);
    let na = o.fneg(a);
    o.select(low_octant, a, na)
}

/// `ln(1 + eˣ)` as `max(x, 0) + log1p(e^-|x|)`.
pub fn softplus<O: MathOps>(o: &mut O, x: O::F) -> O::F {
    let ax = o.fabs(x);
    let nax = o.fneg(ax);
    let t = exp(o, nax);
    // log1p(t) = log(u)·t/(u − 1) with u = 1 + t (exact correction), or t when u == 1.
    let one = o.fconst(1.0);
    let u = o.fadd(one, t);
    let lu = log(o, u);
    let um1 = o.fsub(u, one);
    let q = o.fdiv(t, um1);
    let l = o.fmul(lu, q);
    let u_is_one = o.feq(u, one);
    let l = o.select(u_is_one, t, l);
    let zero = o.fconst(0.0);
    let mx = o.fmax(x, zero);
    let r = o.fadd(mx, l);
    let nan = o.fisnan(x);
    o.select(nan, x, r)
}

/// `aᵇ` as `exp(b·ln|a|)` with C `powf` rules for signs and special values:
/// a negative finite base gives NaN unless b is an integer (then the sign of
/// (-1)^b); −0 and −∞ take that sign for odd integers b and are positive
/// otherwise (never NaN); |a| = 1 with b = ±∞ gives 1; `pow(x, 0)` and
/// `pow(1, y)` are 1 even for NaN.
pub fn pow<O: MathOps>(o: &mut O, a: O::F, b: O::F) -> O::F {
    let zero = o.fconst(0.0);
    let one = o.fconst(1.0);
    let aa = o.fabs(a);
    let la = log(o, aa);
    let t = o.fmul(b, la);
    // |a| = 1: ln|a| = 0, and 0·±∞ would be NaN; the magnitude is 1.
    let la0 = o.feq(la, zero);
    let t = o.select(la0, zero, t);
    let m = exp_scaled(o, t, false);
    // The sign bit of a: a < 0, or a = −0 (1/−0 = −∞).
    let lt0 = o.flt(a, zero);
    let is0 = o.feq(a, zero);
    let inv = o.fdiv(one, a);
    let inv_neg = o.flt(inv, zero);
    let neg0 = o.mand(is0, inv_neg);
    let neg = o.mor(lt0, neg0);
    let fb = o.floor(b);
    let integral = o.feq(fb, b);
    let half = o.fconst(0.5);
    let hb = o.fmul(b, half);
    let fhb = o.floor(hb);
    let even = o.feq(fhb, hb);
    // Odd integers b negate (even ⇒ integral); other b keep m.
    let nm = o.fneg(m);
    let odd_or_not = o.select(integral, nm, m);
    let signed = o.select(even, m, odd_or_not);
    // −0 and −∞ never give NaN; other negative bases do unless b is an integer.
    let inf = o.fconst(f32::INFINITY);
    let is_inf = o.feq(aa, inf);
    let special = o.mor(is0, is_inf);
    let ok = o.mor(integral, special);
    let nan = o.fconst(f32::NAN);
    let negr = o.select(ok, signed, nan);
    let r = o.select(neg, negr, m);
    let b0 = o.feq(b, zero);
    let a1 = o.feq(a, one);
    let unit = o.mor(b0, a1);
    o.select(unit, one, r)
}

/// The scalar reference: the same operations on Rust `f32`s (fused `mul_add`).
#[derive(Debug, Clone, Copy, Default)]
pub struct F32Ref;

impl MathOps for F32Ref {
    type F = f32;
    type I = i32;
    type M = bool;
    fn fconst(&mut self, c: f32) -> f32 {
        c
    }
    fn iconst(&mut self, c: i32) -> i32 {
        c
    }
    fn fadd(&mut self, a: f32, b: f32) -> f32 {
        a + b
    }
    fn fsub(&mut self, a: f32, b: f32) -> f32 {
        a - b
    }
    fn fmul(&mut self, a: f32, b: f32) -> f32 {
        a * b
    }
    fn fdiv(&mut self, a: f32, b: f32) -> f32 {
        a / b
    }
    fn fma(&mut self, a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    fn fneg(&mut self, a: f32) -> f32 {
        -a
    }
    fn fabs(&mut self, a: f32) -> f32 {
        a.abs()
    }
    fn floor(&mut self, a: f32) -> f32 {
        a.floor()
    }
    fn fmin(&mut self, a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    fn fmax(&mut self, a: f32, b: f32) -> f32 {
        if b < a { a } else { b }
    }
    fn flt(&mut self, a: f32, b: f32) -> bool {
        a < b
    }
    fn feq(&mut self, a: f32, b: f32) -> bool {
        a == b
    }
    fn fisnan(&mut self, a: f32) -> bool {
        a.is_nan()
    }
    fn mor(&mut self, a: bool, b: bool) -> bool {
        a || b
    }
    fn mand(&mut self, a: bool, b: bool) -> bool {
        a && b
    }
    fn select(&mut self, m: bool, a: f32, b: f32) -> f32 {
        if m { a } else { b }
    }
    fn f2i(&mut self, a: f32) -> i32 {
        a as i32
    }
    fn i2f(&mut self, a: i32) -> f32 {
        a as f32
    }
    fn fbits(&mut self, a: f32) -> i32 {
        a.to_bits() as i32
    }
    fn bitsf(&mut self, a: i32) -> f32 {
        f32::from_bits(a as u32)
    }
    fn iadd(&mut self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    fn isub(&mut self, a: i32, b: i32) -> i32 {
        a.wrapping_sub(b)
    }
    fn iand(&mut self, a: i32, b: i32) -> i32 {
        a & b
    }
    fn ior(&mut self, a: i32, b: i32) -> i32 {
        a | b
    }
    fn ishl(&mut self, a: i32, n: u32) -> i32 {
        a.wrapping_shl(n)
    }
    fn isra(&mut self, a: i32, n: u32) -> i32 {
        a >> n
    }
}
