//! i64 tensors as data: values drawn over the whole range with the awkward ones
//! (`i64::MIN`, `MAX`, ±2³¹, ±2³², beyond 2⁵³, small values that compare equal)
//! through every op family that takes i64 — elementwise arithmetic (wrapping),
//! division (truncating; divisors include −1 and `MIN`), comparisons, logic,
//! `where`, casts both ways (floats beyond the range, NaN, ±inf), reductions
//! (short rows and long cooperative ones), arg-reductions, topk, matmul (wrapping
//! sums) and data movement. Sizes are odd or prime.

use super::cases::{Case, Dist, case};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smelt_ir::{DType, Data, Tensor};
use std::collections::BTreeMap;

/// The values every draw favours.
pub const SPECIAL: &[i64] = &[
    i64::MIN,
    i64::MIN + 1,
    i64::MAX,
    i64::MAX - 1,
    0,
    1,
    -1,
    2,
    -2,
    1 << 31,
    -(1 << 31),
    (1 << 31) - 1,
    -(1 << 31) - 1,
    1 << 32,
    -(1 << 32),
    (1 << 32) - 1,
    (1 << 32) + 1,
    1 << 53,
    (1 << 53) + 1,
    -(1 << 53) - 1,
    1 << 62,
    -(1 << 62),
    0x0123_4567_89ab_cdef,
    -0x0123_4567_89ab_cdef,
];

/// One value: a special one, the whole range, ±2⁴⁰, ±2³³ or [−3, 3].
pub fn draw(rng: &mut ChaCha8Rng) -> i64 {
    match rng.random_range(0..5) {
        0 => SPECIAL[rng.random_range(0..SPECIAL.len())],
        1 => rng.random(),
        2 => rng.random_range(-(1i64 << 40)..(1 << 40)),
        3 => rng.random_range(-(1i64 << 33)..(1 << 33)),
        _ => rng.random_range(-3..=3),
    }
}

fn wide(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::new(shape.to_vec(), Data::I64((0..n).map(|_| draw(rng)).collect())).expect("sized")
}

fn shape_text(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// A case whose i64 inputs are drawn by [`draw`] (others as given).
fn wcase(name: &str, seed: u64, ins: &[(&str, DType, &[usize])], outs: &[&str], body: &str) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut c = case(name, seed, &ins.iter().map(|(n, d, s)| (*n, *d, *s, Dist::Any)).collect::<Vec<_>>(), outs, body);
    for (n, d, s) in ins {
        if *d == DType::I64 {
            c.inputs.insert(n.to_string(), wide(&mut rng, s));
        }
    }
    c
}

/// f32 values for casts to i64: beyond ±2⁶³, at it, NaN, ±inf, fractions,
/// values around 2³¹, 2³², 2⁵³, subnormals, then random ones of every magnitude.
fn cast_floats(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let p63 = 9.223_372e18f32;
    let mut v = vec![
        f32::NAN, f32::INFINITY, f32::NEG_INFINITY, p63, -p63, 3e19, -3e19, 1e30, -1e30, 0.0, -0.0, 0.5, -0.5, 1.5, -1.5,
        2.5, -2.75, 2147483648.0, -2147483648.0, 4294967296.0, -4294967296.0, 9.007_199e15, -9.007_199e15, 1e-40, -1e-40,
        8.5e18, -8.5e18, 16777217.0, 123456789.0,
    ];
    while v.len() < n {
        let m: f32 = rng.random_range(-1.0..1.0);
        v.push(m * 2f32.powi(rng.random_range(-3..66)));
    }
    v.truncate(n);
    v
}

pub fn cases() -> Vec<Case> {
    use DType::*;
    let mut v = vec![];
    let mut seed = 7000;
    let mut next = || {
        seed += 1;
        seed
    };
    for u in ["neg", "abs", "sign", "relu", "identity"] {
        v.push(wcase(&format!("{u}_i64"), next(), &[("x", I64, &[7, 13])], &["y"], &format!("  y = {u}(x)")));
    }
    for b in ["add", "sub", "mul", "max", "min", "equal", "less", "less_equal", "greater", "greater_equal"] {
        for (sa, sb) in [(&[7usize, 13][..], &[13usize][..]), (&[41], &[41])] {
            let name = format!("{b}_i64_{}", sa.len());
            v.push(wcase(&name, next(), &[("a", I64, sa), ("b", I64, sb)], &["y"], &format!("  y = {b}(a, b)")));
        }
    }
    // Division: no zero divisor and no MIN / -1 (the interpreter's errors; see
    // the run-time error test), but MIN, -1 and every other special value.
    for (sa, sb) in [(&[7usize, 13][..], &[7usize, 13][..]), (&[59], &[59])] {
        let mut c = wcase(&format!("div_i64_{}", sa.len()), next(), &[("a", I64, sa), ("b", I64, sb)], &["y"], "  y = div(a, b)");
        let (Data::I64(a), Data::I64(b)) = (c.inputs["a"].data().clone(), c.inputs["b"].data().clone()) else { unreachable!() };
        let b: Vec<i64> = b.iter().map(|&x| if x == 0 { 7 } else { x }).collect();
        let a: Vec<i64> = a.iter().zip(&b).map(|(&x, &y)| if x == i64::MIN && y == -1 { i64::MIN + 1 } else { x }).collect();
        c.inputs.insert("a".into(), Tensor::new(sa.to_vec(), Data::I64(a)).unwrap());
        c.inputs.insert("b".into(), Tensor::new(sb.to_vec(), Data::I64(b)).unwrap());
        v.push(c);
    }
    v.push(wcase("where_i64", next(), &[("c", Bool, &[7, 13]), ("a", I64, &[7, 13]), ("b", I64, &[13])], &["y"], "  y = where(c, a, b)"));
    // Casts from i64, and to i64 from every other dtype.
    for to in ["f32", "f16", "bf16", "i32", "i8", "u8", "bool"] {
        v.push(wcase(&format!("cast_i64_{to}"), next(), &[("x", I64, &[97])], &["y"], &format!("  y = cast(x) {{to = {to}}}")));
    }
    for (from, d) in [("i32", I32), ("i8", I8), ("u8", U8), ("bool", Bool)] {
        let dist = if d == I32 { Dist::Range(i32::MIN as i64, i32::MAX as i64) } else { Dist::Any };
        v.push(case(&format!("cast_{from}_i64"), next(), &[("x", d, &[97], dist)], &["y"], "  y = cast(x) {to = i64}"));
    }
    for from in ["f32", "f16", "bf16"] {
        let mut rng = ChaCha8Rng::seed_from_u64(next());
        let f = cast_floats(&mut rng, 101);
        let data = if from == "f32" { Data::F32(f) } else { Data::from_f32(if from == "f16" { F16 } else { BF16 }, &f) };
        let src = format!("graph cast_{from}_i64(x: {from}[101]) -> (y) {{\n  y = cast(x) {{to = i64}}\n}}\n");
        let inputs = BTreeMap::from([("x".to_string(), Tensor::new(vec![101], data).unwrap())]);
        v.push(Case { name: format!("cast_{from}_i64"), src, inputs, weights: BTreeMap::new() });
    }
    // Reductions: short rows (one output per invocation), long rows (a
    // workgroup per row on the GPU), leading axes, everything.
    for r in ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min"] {
        for (shape, attrs) in [
            (&[7usize, 13][..], "{axes = [1], keepdims = false}"),
            (&[3, 301], "{axes = [1]}"),
            (&[263, 3], "{axes = [0], keepdims = false}"),
            (&[5, 3, 7], "{axes = [0, 2]}"),
            (&[11, 5], "{keepdims = false}"),
        ] {
            let name = format!("{r}_i64_{}", shape_text(shape).replace([',', ' ', '[', ']'], "_"));
            v.push(wcase(&name, next(), &[("x", I64, shape)], &["y"], &format!("  y = {r}(x) {attrs}")));
        }
    }
    // Small factors, so that products are not all wrapped to zero.
    v.push(case("reduce_prod_i64_small", next(), &[("x", I64, &[5, 29], Dist::Range(-3, 3))], &["y"], "  y = reduce_prod(x) {axes = [1]}"));
    for (a, attrs) in [("argmax", "{axis = 1}"), ("argmin", "{axis = 0, keepdims = false}"), ("argmax", "{axis = -1, keepdims = false}")] {
        v.push(wcase(&format!("{a}_i64"), next(), &[("x", I64, &[13, 7])], &["y"], &format!("  y = {a}(x) {attrs}")));
    }
    // Few distinct values: ties broken by position.
    v.push(case("argmax_i64_ties", next(), &[("x", I64, &[9, 17], Dist::Range(-2, 2))], &["y"], "  y = argmax(x) {axis = 1}"));
    v.push(wcase("topk_i64", next(), &[("x", I64, &[5, 19])], &["vals", "idx"], "  vals, idx = topk(x) {k = 4}"));
    v.push(wcase("topk_i64_smallest", next(), &[("x", I64, &[23])], &["vals", "idx"], "  vals, idx = topk(x) {k = 5, largest = false}"));
    for (a, b) in [(&[7usize, 11][..], &[11usize, 13][..]), (&[2, 3, 5], &[5, 4]), (&[1, 17], &[17, 3])] {
        let name = format!("matmul_i64_{}x{}", a.len(), b.len());
        v.push(wcase(&name, next(), &[("a", I64, a), ("b", I64, b)], &["y"], "  y = matmul(a, b)"));
    }
    // Data movement copies both words.
    v.push(wcase("transpose_i64", next(), &[("x", I64, &[3, 5, 7])], &["y"], "  y = transpose(x) {perm = [2, 0, 1]}"));
    v.push(wcase("concat_i64", next(), &[("a", I64, &[3, 5]), ("b", I64, &[3, 7])], &["y"], "  y = concat(a, b) {axis = 1}"));
    v.push(wcase("slice_i64", next(), &[("x", I64, &[7, 11])], &["y"], "  y = slice(x) {starts = [1, -1], ends = [6, 0], axes = [0, 1], steps = [2, -3]}"));
    v.push(wcase("pad_i64", next(), &[("x", I64, &[5, 7])], &["y"], "  y = pad(x) {pads = [1, 0, 2, 3]}"));
    v.push(wcase("pad_i64_reflect", next(), &[("x", I64, &[5, 7])], &["y"], "  y = pad(x) {pads = [1, 2, 2, 3], mode = reflect}"));
    v.push(wcase("expand_i64", next(), &[("x", I64, &[3, 1, 5])], &["y"], "  y = expand(x) {shape = [2, 3, 4, 5]}"));
    v.push(wcase("split_i64", next(), &[("x", I64, &[3, 13])], &["p", "q"], "  p, q = split(x) {axis = 1, sizes = [6, 7]}"));
    for (id, n) in [(I64, "i64"), (I32, "i32")] {
        let mut c = wcase(&format!("gather_i64_by_{n}"), next(), &[("x", I64, &[7, 5]), ("i", id, &[4, 3])], &["y"], "  y = gather(x, i)");
        let idx: Vec<i64> = (0..12).map(|k| (k * 5 % 14) - 7).collect();
        let data = if id == I64 { Data::I64(idx) } else { Data::I32(idx.iter().map(|&x| x as i32).collect()) };
        c.inputs.insert("i".into(), Tensor::new(vec![4, 3], data).unwrap());
        v.push(c);
    }
    // nonzero: a count the data binds, then compiled work on it (stages cut at
    // the op on the compiled backends): the positive elements gathered and
    // squared; a count of 0; a bool input read directly (no stage before the
    // op); two in a row (a third stage).
    let nz = |name: &str, seed, ins: &[(&str, DType, &[usize])], outs: &[&str], body: &str| {
        case(name, seed, &ins.iter().map(|(n, d, s)| (*n, *d, *s, Dist::Any)).collect::<Vec<_>>(), outs, body)
    };
    let pick = |z: f32| format!("  z = const f32[] [{z:?}]\n  r0 = const i64[] [0]\n  r1 = const i64[] [1]\n  w = const i64[] [13]\n  m = greater(x, z)\n  idx = nonzero(m) {{count = K}}\n  rows = gather(idx, r0) {{axis = 0}}\n  cols = gather(idx, r1) {{axis = 0}}\n  rw = mul(rows, w)\n  flat = add(rw, cols)\n  xf = reshape(x) {{shape = [91]}}\n  p = gather(xf, flat) {{axis = 0}}\n  y = mul(p, p)");
    v.push(nz("nonzero_gather", next(), &[("x", F32, &[7, 13])], &["y", "idx"], &pick(0.0)));
    v.push(nz("nonzero_none", next(), &[("x", F32, &[7, 13])], &["y", "idx"], &pick(1000.0)));
    v.push(nz("nonzero_bool_3d", next(), &[("b", Bool, &[3, 1, 5])], &["idx"], "  idx = nonzero(b) {count = K}"));
    // unique's four outputs feeding compiled work: the values plus their
    // counts, and the input rebuilt from the values and the inverse indices.
    v.push(case(
        "unique_then_work",
        next(),
        &[("x", I64, &[23], Dist::Range(-3, 3))],
        &["s", "back"],
        "  y, idx, inv, cnt = unique(x) {count = K}\n  s = add(y, cnt)\n  back = gather(y, inv) {axis = 0}",
    ));
    v.push(nz(
        "nonzero_twice",
        next(),
        &[("x", F32, &[41])],
        &["y", "s"],
        "  z = const f32[] [0.0]\n  one = const f32[] [1.0]\n  r0 = const i64[] [0]\n  g1 = greater(x, z)\n  i1 = nonzero(g1) {count = K}\n  f1 = gather(i1, r0) {axis = 0}\n  p = gather(x, f1) {axis = 0}\n  g2 = greater(p, one)\n  i2 = nonzero(g2) {count = J}\n  f2 = gather(i2, r0) {axis = 0}\n  q = gather(p, f2) {axis = 0}\n  y = sqrt(q)\n  s = reduce_sum(p) {keepdims = false}",
    ));
    v
}
