//! The op cases of the suite: each a one-node (or small) graph in the text format
//! with seeded random inputs, over shapes that include primes, sizes that are not
//! multiples of the vector width, broadcasting, and sizes large enough for the
//! parallel path.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smelt_ir::{DType, Data, Tensor};
use std::collections::BTreeMap;

/// One case: a name, the model text and inputs (it is filed under the labels of
/// its graph, `report::labels`).
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub src: String,
    pub inputs: BTreeMap<String, Tensor>,
    /// Values of the graph's params.
    pub weights: BTreeMap<String, Tensor>,
}

/// How input values are drawn.
#[derive(Debug, Clone, Copy)]
pub enum Dist {
    /// Uniform in [-3, 3] (floats), the dtype's range or [-100, 100] (integers).
    Any,
    /// Uniform in [0.05, 4] (floats), [1, 100] (integers).
    Positive,
    /// Integers in [lo, hi] (floats: uniform in [lo, hi)).
    Range(i64, i64),
    /// Integers in [-100, 100] without 0 (u8: [1, 255]).
    NonZero,
}

/// An integer drawn by `dist` and clamped into `[lo, hi]` (the dtype's range).
fn int(rng: &mut ChaCha8Rng, dist: Dist, lo: i64, hi: i64) -> i64 {
    let v = match dist {
        Dist::Any => rng.random_range(lo.max(-100)..=hi.min(100)),
        Dist::Positive => rng.random_range(1..=100),
        Dist::Range(a, b) => rng.random_range(a..=b),
        Dist::NonZero => {
            let v = rng.random_range(lo.max(-100)..=hi.min(100) - 1);
            if v >= 0 { v + 1 } else { v }
        }
    };
    v.clamp(lo, hi)
}

pub fn tensor(rng: &mut ChaCha8Rng, d: DType, shape: &[usize], dist: Dist) -> Tensor {
    let n: usize = shape.iter().product();
    let data = match d {
        DType::F32 => Data::F32(
            (0..n)
                .map(|_| match dist {
                    Dist::Any | Dist::NonZero => rng.random_range(-3.0f32..3.0),
                    Dist::Positive => rng.random_range(0.05f32..4.0),
                    Dist::Range(a, b) => rng.random_range(a as f32..b as f32),
                })
                .collect(),
        ),
        DType::I8 => Data::I8((0..n).map(|_| match dist {
            Dist::Any => rng.random_range(-128i32..128) as i8,
            d => int(rng, d, -128, 127) as i8,
        }).collect()),
        DType::U8 => Data::U8((0..n).map(|_| match dist {
            Dist::Any => rng.random_range(0u32..256) as u8,
            Dist::NonZero => rng.random_range(1u32..256) as u8,
            d => int(rng, d, 0, 255) as u8,
        }).collect()),
        DType::I32 => Data::I32((0..n).map(|_| match dist {
            Dist::Any => rng.random_range(-100..100),
            d => int(rng, d, i32::MIN as i64, i32::MAX as i64) as i32,
        }).collect()),
        DType::I64 => Data::I64((0..n).map(|_| match dist {
            Dist::Any => rng.random_range(-100..100),
            d => int(rng, d, i64::MIN, i64::MAX),
        }).collect()),
        DType::Bool => Data::Bool((0..n).map(|_| rng.random_bool(0.5)).collect()),
        DType::F16 | DType::BF16 => {
            let v: Vec<f32> = (0..n)
                .map(|_| match dist {
                    Dist::Positive => rng.random_range(0.05f32..4.0),
                    Dist::Range(a, b) => rng.random_range(a as f32..b as f32),
                    _ => rng.random_range(-3.0f32..3.0),
                })
                .collect();
            Data::from_f32(d, &v)
        }
    };
    Tensor::new(shape.to_vec(), data).expect("sized")
}

fn shape_text(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Builds a case from typed inputs `(name, dtype, shape, dist)` and the body.
pub fn case(name: &str, seed: u64, ins: &[(&str, DType, &[usize], Dist)], outs: &[&str], body: &str) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sig: Vec<String> = ins.iter().map(|(n, d, s, _)| format!("{n}: {d}{}", shape_text(s))).collect();
    let src = format!("graph {}({}) -> ({}) {{\n{body}\n}}\n", name.replace(['-', '.'], "_"), sig.join(", "), outs.join(", "));
    let inputs = ins.iter().map(|(n, d, s, dist)| (n.to_string(), tensor(&mut rng, *d, s, *dist))).collect();
    Case { name: name.to_string(), src, inputs, weights: BTreeMap::new() }
}

/// Adds a param `name` of `shape` (declared in the body) with random values.
pub fn with_param(mut c: Case, name: &str, shape: &[usize], seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    c.weights.insert(name.to_string(), tensor(&mut rng, DType::F32, shape, Dist::Any));
    c
}

/// An f32 weight uniform in [-s, s) (e.g. a recurrent matrix at its usual
/// initialisation scale 1/√h: drawn from [-3, 3], a long recurrence is chaotic
/// and magnifies any rounding difference past the tolerance).
pub fn with_param_scaled(mut c: Case, name: &str, shape: &[usize], seed: u64, s: f32) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v = tensor(&mut rng, DType::F32, shape, Dist::Any).to_f32().iter().map(|x| x * s / 3.0).collect();
    c.weights.insert(name.to_string(), Tensor::f32(shape.to_vec(), v).expect("shape"));
    c
}

pub fn linalg() -> Vec<Case> {
    use DType::F32;
    use Dist::Any;
    let mut v = vec![];
    let mut seed = 1000;
    let mut next = || {
        seed += 1;
        seed
    };
    let mm: &[(&[usize], &[usize])] = &[
        (&[7, 11], &[11, 13]),
        (&[1, 64], &[64, 48]),
        (&[6, 8], &[8, 8]),
        (&[37, 300], &[300, 29]),
        (&[97, 50], &[50, 130]),
        (&[2, 3, 5, 7], &[7, 4]),
        (&[3, 1, 4, 6], &[2, 6, 5]),
        (&[9], &[9, 5]),
        (&[5, 9], &[9]),
        (&[9], &[9]),
        (&[2, 4, 9], &[9]),
        (&[9], &[3, 9, 2]),
        (&[130, 300], &[300, 262]),
        // Rows a multiple of every MR (4, 6, 8): A is read in place, not packed;
        // batched and broadcast, and deeper than one K block.
        (&[48, 37], &[37, 45]),
        (&[2, 3, 24, 19], &[19, 33]),
        (&[3, 1, 24, 10], &[2, 10, 17]),
        (&[24, 1000], &[1000, 40]),
    ];
    for (a, b) in mm {
        let name = format!("matmul_{}x{}", a.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("_"), b.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("_"));
        v.push(case(&name, next(), &[("a", F32, a, Any), ("b", F32, b, Any)], &["y"], "  y = matmul(a, b)"));
    }
    // Weights as params: B packed at compile time.
    let c = case("matmul_param_b", next(), &[("x", F32, &[5, 33], Any)], &["y"], "  w = param f32[33, 21]\n  y = matmul(x, w)");
    v.push(with_param(c, "w", &[33, 21], next()));
    let c = case("matmul_param_a", next(), &[("x", F32, &[2, 33, 7], Any)], &["y"], "  w = param f32[19, 33]\n  y = matmul(w, x)");
    v.push(with_param(c, "w", &[19, 33], next()));
    for (ta, tb, alpha, beta, cs) in [
        (false, false, 1.0, 1.0, Some(&[13usize][..])),
        (true, false, 2.0, 0.5, Some(&[7, 1][..])),
        (false, true, 1.0, 1.0, None),
        (true, true, -0.5, 2.0, Some(&[7, 13][..])),
        (false, false, 1.0, 1.0, Some(&[1][..])),
    ] {
        let ash: &[usize] = if ta { &[11, 7] } else { &[7, 11] };
        let bsh: &[usize] = if tb { &[13, 11] } else { &[11, 13] };
        let attrs = format!("{{trans_a = {ta}, trans_b = {tb}, alpha = {alpha}, beta = {beta}}}");
        let name = format!("gemm_{ta}_{tb}_{}", cs.map_or(0, |s| s.len()));
        v.push(match cs {
            Some(cs) => case(&name, next(), &[("a", F32, ash, Any), ("b", F32, bsh, Any), ("c", F32, cs, Any)], &["y"], &format!("  y = gemm(a, b, c) {attrs}")),
            None => case(&name, next(), &[("a", F32, ash, Any), ("b", F32, bsh, Any)], &["y"], &format!("  y = gemm(a, b) {attrs}")),
        });
    }
    for (i, (e, a, b, extra)) in [
        ("relu(add($0, $1))", &[5usize, 17][..], &[17usize, 23][..], &[23usize][..]),
        ("gelu(add($0, $1))", &[13, 270], &[270, 21], &[13, 1]),
        ("mul(sigmoid($0), $1)", &[2, 6, 9], &[9, 16], &[2, 6, 16]),
        ("tanh($0)", &[300, 40], &[40, 70], &[1]),
        ("relu(add($0, $1))", &[2, 24, 50], &[50, 37], &[2, 24, 37]),
    ]
    .into_iter()
    .enumerate()
    {
        let (sig, call) = if e.contains("$1") {
            (vec![("a", F32, a, Any), ("b", F32, b, Any), ("e", F32, extra, Any)], "fused_matmul(a, b, e)")
        } else {
            (vec![("a", F32, a, Any), ("b", F32, b, Any)], "fused_matmul(a, b)")
        };
        v.push(case(&format!("fused_matmul_{i}"), next(), &sig, &["y"], &format!("  y = {call} {{epilogue = {e}}}")));
    }
    // A bool attention mask on a product (a 1-layer BERT's): at -O2 the mask's
    // region must not become the GEMM's epilogue, which loads f32 extras only.
    let masked = "  w = param f32[24, 16]\n  mm = matmul(x, w)\n  k = and(a, b)\n  zero = const f32[] [0.0]\n  big = const f32[] [-10000.0]\n  m = where(k, zero, big)\n  y = add(mm, m)";
    let c = case("matmul_bool_mask", next(), &[("x", F32, &[2, 12, 24], Any), ("a", DType::Bool, &[2, 1, 16], Any), ("b", DType::Bool, &[2, 12, 1], Any)], &["y"], masked);
    v.push(with_param(c, "w", &[24, 16], next()));
    v
}

/// Shapes for unary ops: odd, prime, not multiples of 4, and a parallel-sized one.
const UNARY_SHAPES: &[&[usize]] = &[&[1], &[7], &[13, 3], &[2, 3, 37], &[40_009]];

pub fn elementwise() -> Vec<Case> {
    use DType::*;
    use Dist::*;
    let mut v = vec![];
    let mut seed = 1;
    let mut next = || {
        seed += 1;
        seed
    };
    let positive = ["log", "sqrt", "rsqrt", "reciprocal"];
    let unary = [
        "relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "exp", "log", "sqrt", "rsqrt", "neg", "abs", "erf", "sin", "cos",
        "reciprocal", "floor", "ceil", "round", "sign", "softplus", "silu", "identity",
    ];
    for (i, u) in unary.iter().enumerate() {
        let s = UNARY_SHAPES[i % UNARY_SHAPES.len()];
        let dist = if positive.contains(u) { Positive } else { Any };
        v.push(case(&format!("{u}_f32"), next(), &[("x", F32, s, dist)], &["y"], &format!("  y = {u}(x)")));
        // Every op also on a vector-unfriendly small shape.
        v.push(case(&format!("{u}_f32_odd"), next(), &[("x", F32, &[5, 3], dist)], &["y"], &format!("  y = {u}(x)")));
    }
    for (u, attrs) in [
        ("leaky_relu", "{alpha = 0.2}"),
        ("elu", "{alpha = 0.7}"),
        ("hard_sigmoid", "{alpha = 0.3, beta = 0.4}"),
        ("clip", "{min = -1, max = 2}"),
        ("clip", "{max = 0.5}"),
    ] {
        v.push(case(&format!("{u}_params"), next(), &[("x", F32, &[3, 41], Any)], &["y"], &format!("  y = {u}(x) {attrs}")));
    }
    for d in [I32, I8, I64] {
        for u in ["neg", "abs", "sign", "relu", "identity"] {
            v.push(case(&format!("{u}_{d}"), next(), &[("x", d, &[3, 11], Any)], &["y"], &format!("  y = {u}(x)")));
        }
    }
    v.push(case("not_bool", next(), &[("x", Bool, &[19], Any)], &["y"], "  y = not(x)"));
    // Binary, with broadcasting.
    let shapes: &[(&[usize], &[usize])] =
        &[(&[3, 1, 5], &[4, 5]), (&[7], &[1]), (&[2, 3, 37], &[2, 3, 37]), (&[6, 1], &[1, 9]), (&[257, 129], &[129])];
    let binary = ["add", "sub", "mul", "div", "max", "min", "pow", "prelu"];
    for (i, b) in binary.iter().enumerate() {
        let (sa, sb) = shapes[i % shapes.len()];
        let da = if *b == "pow" { Positive } else { Any };
        v.push(case(&format!("{b}_f32"), next(), &[("a", F32, sa, da), ("b", F32, sb, Any)], &["y"], &format!("  y = {b}(a, b)")));
    }
    for (i, b) in ["equal", "less", "less_equal", "greater", "greater_equal"].iter().enumerate() {
        let (sa, sb) = shapes[i % shapes.len()];
        v.push(case(&format!("{b}_f32"), next(), &[("a", F32, sa, Any), ("b", F32, sb, Any)], &["y"], &format!("  y = {b}(a, b)")));
        v.push(case(&format!("{b}_i32"), next(), &[("a", I32, sa, Any), ("b", I32, sb, Any)], &["y"], &format!("  y = {b}(a, b)")));
    }
    for d in [I32, I8, U8, I64] {
        for b in ["add", "sub", "mul", "max", "min"] {
            v.push(case(&format!("{b}_{d}"), next(), &[("a", d, &[4, 9], Any), ("b", d, &[9], Any)], &["y"], &format!("  y = {b}(a, b)")));
        }
    }
    for b in ["and", "or", "xor", "equal"] {
        v.push(case(&format!("{b}_bool"), next(), &[("a", Bool, &[3, 7], Any), ("b", Bool, &[7], Any)], &["y"], &format!("  y = {b}(a, b)")));
    }
    v.push(case("where_bcast", next(), &[("c", Bool, &[4, 1], Any), ("a", F32, &[4, 6], Any), ("b", F32, &[6], Any)], &["y"], "  y = where(c, a, b)"));
    v.push(case("where_i64", next(), &[("c", Bool, &[9], Any), ("a", I64, &[9], Any), ("b", I64, &[1], Any)], &["y"], "  y = where(c, a, b)"));
    for (from, to) in [(F32, I32), (F32, I8), (F32, U8), (F32, I64), (F32, Bool), (I32, F32), (Bool, F32), (I64, U8), (I8, I32), (U8, F32), (I32, Bool)] {
        v.push(case(&format!("cast_{from}_{to}"), next(), &[("x", from, &[5, 7], Any)], &["y"], &format!("  y = cast(x) {{to = {to}}}")));
    }
    for (i, e) in [
        "relu(add($0, $1))",
        "clip(add($0, $1), 0, 6)",
        "leaky_relu(sub($0, $1), 0.1)",
        "where(greater($0, 0), $0, mul($1, 0.1))",
        "mul(sigmoid($1), tanh($0))",
        "gelu(add(mul($0, $1), 0.5))",
        "greater($0, $1)",
    ]
    .iter()
    .enumerate()
    {
        let s: &[usize] = if i == 4 { &[33, 65] } else { &[3, 17] };
        v.push(case(&format!("region_{i}"),
            next(),
            &[("a", F32, s, Any), ("b", F32, &s[1..], Any)],
            &["y"],
            &format!("  y = elementwise(a, b) {{expr = {e}}}"),
        ));
    }
    v.push(case("region_i32_in", next(), &[("a", I32, &[4, 5], Any)], &["y"], "  y = elementwise(a) {expr = mul($0, 0.5)}"));
    v
}

/// A case from its model text and named inputs.
pub fn explicit(name: &str, src: String, inputs: Vec<(&str, Tensor)>) -> Case {
    Case { name: name.into(), src, inputs: inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), weights: BTreeMap::new() }
}

/// Integer `div` (which the reference checks at run time; these cases have no
/// error) and integer `matmul` and `gemm`, filed as `div(int)` etc.
pub fn integer() -> Vec<Case> {
    use DType::*;
    use Dist::*;
    let mut v = vec![];
    let mut seed = 3000;
    let mut next = || {
        seed += 1;
        seed
    };
    // Division truncates toward zero; i8 −128 / −1 saturates to 127.
    for (d, sa, sb) in [(I32, &[7usize, 13][..], &[13usize][..]), (I64, &[3, 1, 5], &[4, 5]), (I8, &[11, 3], &[11, 1]), (U8, &[37], &[1])] {
        v.push(case(&format!("div_{d}"), next(), &[("a", d, sa, Any), ("b", d, sb, NonZero)], &["y"], "  y = div(a, b)"));
    }
    v.push(case("div_i8_small", next(), &[("a", I8, &[41], Any), ("b", I8, &[41], Range(-2, -1))], &["y"], "  y = div(a, b)"));
    for (d, a, b) in [
        (I32, &[7usize, 11][..], &[11usize, 13][..]),
        (I64, &[2, 3, 5], &[5, 4]),
        (I64, &[5, 9], &[9][..]),
        (I32, &[9][..], &[9, 5][..]),
        (I32, &[3, 1, 4, 6], &[2, 6, 5]),
    ] {
        let name = format!("matmul_{d}_{}x{}", a.len(), b.len());
        v.push(case(&name, next(), &[("a", d, a, Any), ("b", d, b, Any)], &["y"], "  y = matmul(a, b)"));
    }
    // gemm on integers goes through f64, truncating: alpha and beta not integers.
    for (d, ta, tb, cs) in [(I32, false, true, Some(&[13usize][..])), (I64, true, false, Some(&[7, 1][..])), (I32, false, false, None), (I64, true, true, Some(&[7, 13][..]))] {
        let ash: &[usize] = if ta { &[11, 7] } else { &[7, 11] };
        let bsh: &[usize] = if tb { &[13, 11] } else { &[11, 13] };
        let attrs = format!("{{trans_a = {ta}, trans_b = {tb}, alpha = 0.37, beta = -1.5}}");
        let name = format!("gemm_{d}_{ta}_{tb}");
        v.push(match cs {
            Some(cs) => case(&name, next(), &[("a", d, ash, Any), ("b", d, bsh, Any), ("c", d, cs, Any)], &["y"], &format!("  y = gemm(a, b, c) {attrs}")),
            None => case(&name, next(), &[("a", d, ash, Any), ("b", d, bsh, Any)], &["y"], &format!("  y = gemm(a, b) {attrs}")),
        });
    }
    v
}

/// i32 arithmetic where it overflows: the interpreter computes in i64 and
/// saturates into i32 (full-range operands overflow add, sub and mul about half
/// the time; operands near `i32::MIN` hit `-MIN`, `|MIN|` and `MIN / -1`), and
/// i32 matmul whose i64 sums wrap.
pub fn saturating() -> Vec<Case> {
    use DType::*;
    use Dist::*;
    let mut v = vec![];
    let mut seed = 3500;
    let mut next = || {
        seed += 1;
        seed
    };
    let full = Range(i32::MIN as i64, i32::MAX as i64);
    let low = Range(i32::MIN as i64, i32::MIN as i64 + 8);
    for b in ["add", "sub", "mul"] {
        for (tag, da, db) in [("full", full, full), ("small", Any, Any), ("low", low, Range(-3, 3))] {
            v.push(case(&format!("{b}_i32_{tag}"), next(), &[("a", I32, &[7, 13], da), ("b", I32, &[13], db)], &["y"], &format!("  y = {b}(a, b)")));
        }
    }
    v.push(case("div_i32_min", next(), &[("a", I32, &[37], low), ("b", I32, &[37], Range(-1, -1))], &["y"], "  y = div(a, b)"));
    v.push(case("div_i32_full", next(), &[("a", I32, &[41], full), ("b", I32, &[41], NonZero)], &["y"], "  y = div(a, b)"));
    // Products up to 2^62: their sums wrap in i64 (as the reference) and saturate.
    for (tag, a, b) in [("5x7x3", &[5usize, 7][..], &[7usize, 3][..]), ("2x3x2x9", &[2, 3, 2], &[2, 9])] {
        v.push(case(&format!("matmul_i32_full_{tag}"), next(), &[("a", I32, a, full), ("b", I32, b, full)], &["y"], "  y = matmul(a, b)"));
    }
    // Integer reductions accumulate in i64 (wrapping), then saturate.
    v.push(case("reduce_sum_i32_full", next(), &[("x", I32, &[3, 37], full)], &["y"], "  y = reduce_sum(x) {axes = [1]}"));
    v.push(case("reduce_sum_i32_all", next(), &[("x", I32, &[5, 7], Any)], &["y"], "  y = reduce_sum(x) {keepdims = false}"));
    v.push(case("reduce_prod_i32_full", next(), &[("x", I32, &[4, 3], full)], &["y"], "  y = reduce_prod(x) {axes = [0]}"));
    v.push(case("reduce_prod_i32_small", next(), &[("x", I32, &[3, 13], Range(-9, 9))], &["y"], "  y = reduce_prod(x) {axes = [1]}"));
    v.push(case("reduce_prod_i8", next(), &[("x", I8, &[6, 5], Any)], &["y"], "  y = reduce_prod(x) {axes = [1]}"));
    v.push(case("reduce_prod_u8", next(), &[("x", U8, &[2, 9], Any)], &["y"], "  y = reduce_prod(x) {axes = [1]}"));
    v.push(case("matmul_i32_low", next(), &[("a", I32, &[4, 3], low), ("b", I32, &[3, 5], Range(-3, 3))], &["y"], "  y = matmul(a, b)"));
    for u in ["neg", "abs"] {
        v.push(case(&format!("{u}_i32_low"), next(), &[("x", I32, &[5, 11], low)], &["y"], &format!("  y = {u}(x)")));
        v.push(case(&format!("{u}_i32_full"), next(), &[("x", I32, &[67], full)], &["y"], &format!("  y = {u}(x)")));
    }
    v
}

/// Quantized convolutions, mixture of experts and sparse products with index
/// arrays as inputs.
pub fn quant_and_routing() -> Vec<Case> {
    use DType::*;
    use Dist::*;
    let mut v = vec![];
    let mut seed = 4000;
    let mut next = || {
        seed += 1;
        seed
    };
    let mut rng = ChaCha8Rng::seed_from_u64(4999);
    // qconv: (x dtype, x shape, w shape, attrs, w quant, output).
    type QConvCase<'a> = (DType, &'a [usize], &'a [usize], &'a str, &'a str, &'a str);
    let convs: &[QConvCase] = &[
        (U8, &[2, 3, 11], &[5, 3, 3], "stride = [2], pad = [2, 1]", "quant(axis = 0, scale = [0.5, 0.25, 0.125, 0.5, 1], zero_point = [0, 1, -2, 0, 3])", "dtype = i8, scale = 0.75, zero_point = 3"),
        (I8, &[1, 4, 13], &[6, 2, 5], "dilation = [2], pad = [3, 3], groups = 2", "quant(scale = 0.01, zero_point = -1)", ""),
        (I8, &[2, 3, 7, 9], &[5, 3, 3, 3], "pad = [1, 1, 1, 1]", "quant(axis = 0, scale = [0.01, 0.02, 0.03, 0.04, 0.05], zero_point = [1, 0, -1, 2, 0])", "dtype = u8, scale = 0.37, zero_point = 100"),
        (U8, &[1, 6, 11, 10], &[9, 2, 3, 2], "stride = [2, 3], pad = [1, 0, 2, 1], dilation = [2, 1], groups = 3", "quant(scale = 0.02, zero_point = 5)", "dtype = i8, scale = 0.9"),
        (I8, &[3, 5, 6, 7], &[7, 5, 1, 1], "", "quant(scale = 0.05, zero_point = 0)", ""),
    ];
    for (i, (xd, xs, ws, attrs, wq, out)) in convs.iter().enumerate() {
        let rank = xs.len() - 2;
        let op = format!("qconv{rank}d");
        let xq = "quant(scale = 0.03, zero_point = 7)";
        let dims = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
        let m = ws[0];
        let all: Vec<&str> = [*attrs, *out].into_iter().filter(|a| !a.is_empty()).collect();
        let attrs = if all.is_empty() { String::new() } else { format!(" {{{}}}", all.join(", ")) };
        let bias = i % 2 == 0;
        // Half the cases take the weights as a param (packed at compile time), half as an input.
        let as_param = i % 3 != 1;
        let wdecl = format!("i8[{}] {wq}", dims(ws));
        let (sig_w, body_w) = if as_param { (String::new(), format!("  w = param {wdecl}\n")) } else { (format!(", w: {wdecl}"), String::new()) };
        let (sig_b, body_b, args) = if bias { (String::new(), format!("  bias = param i32[{m}]\n"), "x, w, bias") } else { (String::new(), String::new(), "x, w") };
        let name = format!("{op}_{i}");
        let src = format!("graph {name}(x: {xd}[{}] {xq}{sig_w}{sig_b}) -> (y) {{\n{body_w}{body_b}  y = {op}({args}){attrs}\n}}\n", dims(xs));
        let mut inputs = vec![("x", tensor(&mut rng, *xd, xs, Any))];
        let w = tensor(&mut rng, I8, ws, Any);
        let mut c = if as_param { explicit(&name, src, inputs) } else { inputs.push(("w", w.clone())); explicit(&name, src, inputs) };
        if as_param {
            c.weights.insert("w".into(), w);
        }
        if bias {
            c.weights.insert("bias".into(), tensor(&mut rng, I32, &[m], Range(-500, 500)));
        }
        v.push(c);
    }
    // moe, each in every strategy: (T, D, E, H, k, activation, capacity factor,
    // gated, normalize, routing). Routing "one" sends every token to expert 0 first
    // (its logit +20); "none" gives expert E−1 the top logit of every token and a
    // capacity of 1, so all tokens but one lose that pair (and with k = 1 are
    // routed to no expert at all). "nan": no token chooses expert E−1 (its logit
    // −20), whose w1 is NaN: it must not reach the output (dense computes it, and
    // must leave it out rather than weight it by 0).
    let moe_cases = [
        (8, 5, 4, 6, 2, "relu", 0.0, false, true, "nan"),
        (7, 5, 3, 6, 2, "relu", 0.0, false, true, ""),
        (13, 6, 4, 5, 1, "gelu", 0.6, false, true, ""),
        (1, 3, 2, 3, 2, "silu", 0.0, false, true, ""),
        (11, 9, 5, 7, 3, "identity", 1.0, false, true, ""),
        (9, 10, 6, 19, 2, "silu", 0.0, true, true, ""),
        (17, 7, 8, 11, 2, "relu", 0.0, false, false, ""),
        (10, 4, 4, 9, 2, "gelu", 0.0, true, false, "one"),
        (12, 5, 3, 4, 1, "relu", 0.2, false, true, "none"),
        (37, 33, 5, 35, 2, "relu", 0.5, false, true, "one"),
    ];
    for (t, d, e, h, k, act, cf, gated, normalize, routing) in moe_cases {
        for strategy in ["dense", "gather", "loop"] {
            let g = if gated { "_gated" } else { "" };
            let n = if normalize { "" } else { "_softmax" };
            let r = if routing.is_empty() { String::new() } else { format!("_{routing}") };
            let name = format!("moe_{t}_{e}_{k}_{act}{g}{n}{r}_{strategy}");
            let cap = if cf > 0.0 { format!(", capacity_factor = {cf}") } else { String::new() };
            let norm = if normalize { "" } else { ", normalize = false" };
            let (w3_decl, w3_arg) = if gated { (format!("  w3 = param f32[{e}, {d}, {h}]\n"), ", w3") } else { (String::new(), "") };
            let src = format!(
                "graph {name}(x: f32[{t}, {d}], logits: f32[{t}, {e}]) -> (y) {{\n  w1 = param f32[{e}, {d}, {h}]\n  w2 = param f32[{e}, {h}, {d}]\n{w3_decl}  y = moe(x, logits, w1, w2{w3_arg}) {{k = {k}, activation = {act}{cap}{norm}, strategy = {strategy}}}\n}}\n"
            );
            let mut logits = tensor(&mut rng, F32, &[t, e], Any).to_f32();
            for row in logits.chunks_mut(e) {
                match routing {
                    "one" => row[0] += 20.0,
                    "none" => row[e - 1] += 20.0,
                    "nan" => row[e - 1] -= 20.0,
                    _ => {}
                }
            }
            let logits = Tensor::f32(vec![t, e], logits).expect("sized");
            let mut c = explicit(&name, src, vec![("x", tensor(&mut rng, F32, &[t, d], Any)), ("logits", logits)]);
            let mut mats = vec![("w1", vec![e, d, h]), ("w2", vec![e, h, d])];
            if gated {
                mats.push(("w3", vec![e, d, h]));
            }
            for (p, s) in mats {
                let mut w = tensor(&mut rng, F32, &s, Any);
                if routing == "nan" && p == "w1" {
                    let mut v = w.to_f32();
                    let per = v.len() / e;
                    v[(e - 1) * per..].fill(f32::NAN);
                    w = Tensor::f32(s.clone(), v).expect("sized");
                }
                c.weights.insert(p.into(), w);
            }
            v.push(c);
        }
    }
    // sparse_matmul with its index arrays as graph inputs: (rows, K, cols, block).
    for (rows, k, cols, block) in [(&[5usize][..], 12usize, 7usize, [1usize, 1]), (&[2, 3][..], 12, 9, [2, 3]), (&[1][..], 13, 5, [1, 1]), (&[4][..], 8, 12, [4, 4])] {
        let (br, bc) = (block[0], block[1]);
        let (block_rows, block_cols) = (k / br, cols / bc);
        // Each block row stores a random subset of block columns, in random order.
        let mut indices = vec![];
        let mut offsets = vec![0i64];
        for _ in 0..block_rows {
            let mut cs: Vec<i64> = (0..block_cols as i64).filter(|_| rng.random_bool(0.4)).collect();
            if cs.len() > 1 && rng.random_bool(0.5) {
                cs.reverse();
            }
            indices.extend(cs);
            offsets.push(indices.len() as i64);
        }
        let nnz = indices.len();
        let csr = br == 1 && bc == 1;
        let vshape: Vec<usize> = if csr { vec![nnz] } else { vec![nnz, br, bc] };
        let xs: Vec<usize> = rows.iter().copied().chain([k]).collect();
        let dims = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
        let attrs = if csr { format!("{{cols = {cols}}}") } else { format!("{{format = bsr, cols = {cols}, block = [{br}, {bc}]}}") };
        let name = format!("sparse_inputs_{}x{k}x{cols}_{br}x{bc}", dims(rows).replace(", ", "_"));
        let src = format!(
            "graph {name}(x: f32[{}], values: f32[{}], indices: i32[{nnz}], offsets: i32[{}]) -> (y) {{\n  y = sparse_matmul(x, values, indices, offsets) {attrs}\n}}\n",
            dims(&xs),
            dims(&vshape),
            offsets.len()
        );
        let off32: Vec<i32> = offsets.iter().map(|&o| o as i32).collect();
        v.push(explicit(&name,
            src,
            vec![
                ("x", tensor(&mut rng, F32, &xs, Any)),
                ("values", tensor(&mut rng, F32, &vshape, Any)),
                ("indices", Tensor::new(vec![nnz], Data::I32(indices.iter().map(|&c| c as i32).collect())).expect("sized")),
                ("offsets", Tensor::new(vec![off32.len()], Data::I32(off32)).expect("sized")),
            ],
        ));
        let _ = next();
    }
    v
}

/// The normalization family (row reductions long enough to be cooperative on
/// the GPU are in `cases_rows.rs`): batch norm over 2-, 3- and 4-d inputs with
/// odd channel counts and positions; `lrn` with odd and even windows, one wider
/// than the channels, a 2-d input (one position) and one large enough for the
/// parallel rows.
pub fn norm() -> Vec<Case> {
    use DType::F32;
    use Dist::{Any, Positive};
    let mut v = vec![];
    for (i, shape) in [&[5usize, 7][..], &[2, 3, 11], &[2, 13, 5, 7]].into_iter().enumerate() {
        let ch = shape[1];
        let ins: Vec<(&str, DType, &[usize], Dist)> = vec![
            ("x", F32, shape, Any),
            ("scale", F32, &shape[1..2], Any),
            ("bias", F32, &shape[1..2], Any),
            ("mean", F32, &shape[1..2], Any),
            ("var", F32, &shape[1..2], Positive),
        ];
        let name = format!("batch_norm_{i}_{ch}ch");
        v.push(case(&name, 9400 + i as u64, &ins, &["y"], "  y = batch_norm(x, scale, bias, mean, var) {epsilon = 0.001}"));
    }
    for (i, (shape, attrs)) in [
        (&[2usize, 7, 5, 3][..], "size = 5"),
        (&[1, 13, 11][..], "size = 4, alpha = 0.01, beta = 0.5, bias = 2.0"),
        (&[3, 6][..], "size = 9, alpha = 0.2"),
        (&[2, 24, 37, 41][..], "size = 3, beta = 1.25"),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(case(&format!("lrn_{i}"), 9500 + i as u64, &[("x", F32, shape, Any)], &["y"], &format!("  y = lrn(x) {{{attrs}}}")));
    }
    v
}

/// Resize: every mode and coordinate transformation, one axis and several,
/// the axis last (rows of one element) or not, antialiased downsampling with
/// more taps than are unrolled, a cropped region extrapolating, an identity
/// (copy), and one size large enough for the parallel path.
pub fn resize() -> Vec<Case> {
    use DType::F32;
    use Dist::Any;
    let cases: &[(&[usize], &str)] = &[
        (&[1, 3, 5, 7], "sizes = [-1, -1, 10, 14], scales = [1.0, 1.0, 2.0, 2.0], coord = asymmetric, nearest = simple"),
        (&[2, 3, 17, 13], "sizes = [-1, -1, 9, 6], mode = linear"),
        (&[1, 2, 6, 11], "sizes = [-1, -1, 13, 5], mode = cubic, coord = align_corners, exclude_outside = true"),
        (&[1, 4, 37, 29], "sizes = [-1, -1, 9, 7], mode = linear, antialias = true"),
        (&[1, 2, 23, 5], "sizes = [-1, -1, 6, 5], mode = cubic, antialias = true, cubic_a = -0.5"),
        (
            &[1, 1, 8, 9],
            "sizes = [-1, -1, 5, 7], mode = linear, coord = tf_crop_and_resize, roi = [0.0, 0.0, 0.2, -0.1, 1.0, 1.0, 0.9, 1.3], extrapolation = 2.5",
        ),
        (&[3, 19], "sizes = [7, 1], mode = linear, coord = pytorch_half_pixel"),
        (
            &[1, 1, 4, 5],
            "sizes = [-1, -1, 7, 11], scales = [1.0, 1.0, 1.75, 2.3], coord = half_pixel_symmetric, nearest = round_prefer_ceil",
        ),
        (&[2, 5, 33], "sizes = [-1, 9, -1], mode = cubic"),
        (&[2, 6, 10], "sizes = [-1, 3, 4], nearest = floor, coord = align_corners"),
        (&[4, 7], "sizes = [-1, -1]"),
        (&[1, 16, 48, 64], "sizes = [-1, -1, 96, 128], mode = linear"),
    ];
    cases
        .iter()
        .enumerate()
        .map(|(i, (shape, attrs))| case(&format!("resize_{i}"), 9600 + i as u64, &[("x", F32, shape, Any)], &["y"], &format!("  y = resize(x) {{{attrs}}}")))
        .collect()
}

/// Multi-head attention on sizes around the register tiles: query rows not a
/// multiple of MR, keys not a multiple of NR, head widths with vector and scalar
/// tails, masks of every broadcast, causal with Tq < Tk and Tq > Tk.
pub fn attention() -> Vec<Case> {
    use DType::F32;
    use Dist::Any;
    let mut v = vec![];
    let mut seed = 5000;
    // (b, tq, tk, e, ev, heads, mask shape, attrs)
    type Shape = (usize, usize, usize, usize, usize, usize, Option<&'static [usize]>, &'static str);
    let shapes: &[Shape] = &[
        (1, 37, 29, 38, 70, 2, None, ""),
        (2, 13, 130, 24, 40, 1, None, ", scale = 0.3"),
        (1, 128, 128, 64, 64, 1, None, ""),
        (2, 7, 17, 12, 36, 3, Some(&[2, 3, 7, 17]), ""),
        (1, 19, 23, 16, 16, 2, Some(&[19, 23]), ", causal = true"),
        (2, 6, 33, 8, 9, 1, Some(&[2, 1, 1, 33]), ""),
        (1, 41, 41, 20, 20, 4, None, ", causal = true"),
        (1, 9, 50, 18, 27, 3, None, ", causal = true"),
        (1, 50, 9, 18, 27, 3, None, ", causal = true"),
    ];
    for (i, &(b, tq, tk, e, ev, heads, mask, attrs)) in shapes.iter().enumerate() {
        seed += 1;
        let (q, k, vv) = ([b, tq, e], [b, tk, e], [b, tk, ev]);
        let mut sig = vec![("q", F32, &q[..], Any), ("k", F32, &k[..], Any), ("v", F32, &vv[..], Any)];
        let call = match mask {
            Some(m) => {
                sig.push(("mask", F32, m, Any));
                "attention(q, k, v, mask)"
            }
            None => "attention(q, k, v)",
        };
        let body = format!("  y = {call} {{heads = {heads}{attrs}}}");
        v.push(case(&format!("attention_{i}"), seed, &sig, &["y"], &body));
    }
    v
}

/// f16 and bf16, stored as 16 bits and computed in f32: elementwise ops, casts,
/// matmul, conv, softmax and copies, filed as `f16 <op>` / `bf16 <op>`.
pub fn half() -> Vec<Case> {
    use DType::*;
    use Dist::*;
    let mut v = vec![];
    let mut seed = 5000;
    let mut next = || {
        seed += 1;
        seed
    };
    for d in [F16, BF16] {
        for u in ["relu", "exp", "tanh", "gelu"] {
            v.push(case(&format!("{u}_{d}"), next(), &[("x", d, &[7, 13], Any)], &["y"], &format!("  y = {u}(x)")));
        }
        for (b, sa, sb) in [("add", &[3usize, 1, 5][..], &[4usize, 5][..]), ("mul", &[37], &[37]), ("div", &[6, 7], &[7])] {
            v.push(case(&format!("{b}_{d}"), next(), &[("a", d, sa, Any), ("b", d, sb, Positive)], &["y"], &format!("  y = {b}(a, b)")));
        }
        v.push(case(&format!("less_{d}"), next(), &[("a", d, &[19], Any), ("b", d, &[19], Any)], &["y"], "  y = less(a, b)"));
        v.push(case(&format!("where_{d}"), next(), &[("c", Bool, &[5, 1], Any), ("a", d, &[5, 6], Any), ("b", d, &[6], Any)], &["y"], "  y = where(c, a, b)"));
        for (from, to) in [(F32, d), (d, F32), (d, I32), (I32, d), (d, if d == F16 { BF16 } else { F16 })] {
            v.push(case(&format!("cast_{from}_{to}"), next(), &[("x", from, &[5, 7], Any)], &["y"], &format!("  y = cast(x) {{to = {to}}}")));
        }
        v.push(case(&format!("matmul_{d}"), next(), &[("a", d, &[7, 11], Any), ("b", d, &[11, 13], Any)], &["y"], "  y = matmul(a, b)"));
        v.push(case(&format!("softmax_{d}"), next(), &[("x", d, &[3, 29], Any)], &["y"], "  y = softmax(x)"));
        v.push(case(&format!("transpose_{d}"), next(), &[("x", d, &[3, 5, 7], Any)], &["y"], "  y = transpose(x) {perm = [2, 0, 1]}"));
        v.push(case(&format!("conv2d_{d}"), next(), &[("x", d, &[1, 3, 9, 7], Any), ("w", d, &[5, 3, 3, 3], Any)], &["y"], "  y = conv2d(x, w) {pad = [1, 1, 1, 1]}"));
        v.push(case(&format!("region_{d}"),
            next(),
            &[("a", d, &[4, 9], Any), ("b", d, &[9], Any)],
            &["y"],
            "  y = elementwise(a, b) {expr = relu(add(mul($0, $1), 0.5))}",
        ));
    }
    v
}
