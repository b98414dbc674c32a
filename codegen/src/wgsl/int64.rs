//! 64-bit integer *data* in WGSL, which has no 64-bit integers (and whose native
//! `shader-int64` lavapipe's LLVM miscompiles).
//!
//! The kernel IR's `i64` is both index arithmetic (loop variables, offsets:
//! below 2³¹ because buffers are) and tensor data. A small pass over the kernel
//! ([`classes`]) gives every `i64` value a [`Cls`]:
//! - `Index` (loop variables, constants and arithmetic on them) and `Narrow(b)`
//!   (data that provably fits in `b` ≤ 32 signed bits: casts of i32/i8/u8/bool
//!   and arithmetic whose result still fits) compute in `i32`;
//! - `Wide` (loads of i64 buffers, casts from floats, constants beyond i32, and
//!   arithmetic that could leave 32 bits — data mixed with index values, sums in
//!   a loop) is a two-word integer `vec2<u32>` (`.x` the low word, `.y` the high
//!   word, two's complement), computed by the helper functions below, each
//!   emitted once per shader: wrapping add/sub/mul/neg/abs, signed division and
//!   remainder (long division), comparisons, shifts, and conversions to and from
//!   f32/f64 with the interpreter's semantics (`as f32` rounds to nearest even;
//!   float → int truncates and saturates, NaN → 0; int → int saturates).
//!
//! A wide value used as a position (load/store index, loop bound) is its low
//! word: positions are below 2³¹, and the kernels check data used as an index
//! on its full value before using it. Wrapping add/sub/mul commute with taking
//! the low word, so the index math over such a value is i32 (`Emitter::low`).
//! Casts to i32 saturate (`i64_to_i32`), as the interpreter's.

use crate::kernel::{BinOp, Expr, Kernel, Lit, LoopKind, Scalar, Stmt, UnOp};

/// What an `i64` value is known to be (see the module doc). `Bottom`: a variable
/// not assigned yet in the fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cls {
    Bottom,
    /// A constant of this many signed bits (≤ 32): an index with index values,
    /// narrow data with data.
    Const(u32),
    Index,
    Narrow(u32),
    Wide,
}

/// Signed bits that hold `v`.
pub fn bits(v: i64) -> u32 {
    let m = if v < 0 { !v } else { v };
    65 - m.leading_zeros()
}

fn narrow(b: u32) -> Cls {
    if b <= 32 { Cls::Narrow(b) } else { Cls::Wide }
}

/// The class of a constant.
pub fn of_const(v: i64) -> Cls {
    let b = bits(v);
    if b <= 32 { Cls::Const(b) } else { Cls::Wide }
}

/// The class of a value that may be either of two (a variable's assignments, a
/// select's branches).
pub fn join(a: Cls, b: Cls) -> Cls {
    use Cls::*;
    match (a, b) {
        (Bottom, x) | (x, Bottom) => x,
        (Wide, _) | (_, Wide) => Wide,
        (Const(x), Const(y)) => Const(x.max(y)),
        (Index, Index) | (Const(_), Index) | (Index, Const(_)) => Index,
        (Index, Narrow(_)) | (Narrow(_), Index) => Wide,
        (Const(x) | Narrow(x), Const(y) | Narrow(y)) => narrow(x.max(y)),
    }
}

/// The class of `a op b` on i64.
pub fn binary(op: BinOp, a: Cls, b: Cls, b_const: Option<i64>) -> Cls {
    use Cls::*;
    match (a, b) {
        (Bottom, _) | (_, Bottom) => Bottom,
        (Wide, _) | (_, Wide) => Wide,
        (Index | Const(_), Index | Const(_)) => Index,
        (Index, Narrow(_)) | (Narrow(_), Index) => Wide,
        (Const(x) | Narrow(x), Const(y) | Narrow(y)) => narrow(match op {
            BinOp::Add | BinOp::Sub => x.max(y) + 1,
            BinOp::Mul => x + y,
            BinOp::Div => x + 1,
            BinOp::Rem | BinOp::Min | BinOp::Max | BinOp::And | BinOp::Or | BinOp::Xor => x.max(y),
            BinOp::Shl => match b_const {
                Some(c) if (0..32).contains(&c) => x + c as u32,
                _ => 64,
            },
            BinOp::Shr => x,
        }),
    }
}

/// The class of `op a` on i64.
pub fn unary(op: UnOp, a: Cls) -> Cls {
    match (op, a) {
        (UnOp::Neg | UnOp::Abs, Cls::Const(x)) => Cls::Const(x + 1).min_wide(),
        (UnOp::Neg | UnOp::Abs, Cls::Narrow(x)) => narrow(x + 1),
        _ => a,
    }
}

impl Cls {
    fn min_wide(self) -> Cls {
        match self {
            Cls::Const(b) if b > 32 => Cls::Wide,
            c => c,
        }
    }
}

/// The class of a cast to i64 from `from` (`a` is the operand's class when it
/// is i64 already).
pub fn cast_to(from: Scalar, a: Cls) -> Cls {
    match from {
        Scalar::I64 => a,
        Scalar::I32 => Cls::Narrow(32),
        Scalar::I8 => Cls::Narrow(8),
        Scalar::U8 => Cls::Narrow(9),
        Scalar::Bool => Cls::Narrow(2),
        _ => Cls::Wide,
    }
}

/// The class of an i64 expression given the variables' classes (other types: `Index`).
pub fn class(k: &Kernel, vars: &[Cls], e: &Expr) -> Cls {
    let Ok(t) = e.ty(k) else { return Cls::Index };
    if t.scalar != Scalar::I64 {
        return Cls::Index;
    }
    match e {
        Expr::Const(Lit::Int(v, _)) => of_const(*v),
        Expr::Const(_) => Cls::Index,
        Expr::Var(v) => vars[v.0 as usize],
        Expr::Load { .. } => Cls::Wide,
        Expr::Un(op, a) => unary(*op, class(k, vars, a)),
        Expr::Bin(op, a, b) => binary(*op, class(k, vars, a), class(k, vars, b), b.as_int()),
        Expr::Fma(a, b, c) => {
            let m = binary(BinOp::Mul, class(k, vars, a), class(k, vars, b), None);
            binary(BinOp::Add, m, class(k, vars, c), None)
        }
        Expr::Select(_, a, b) => join(class(k, vars, a), class(k, vars, b)),
        Expr::Cast(_, a) => {
            let from = a.ty(k).map(|t| t.scalar).unwrap_or(Scalar::F32);
            cast_to(from, class(k, vars, a))
        }
        Expr::Splat(a, _) | Expr::Lane(a, _) | Expr::HReduce(_, a) => class(k, vars, a),
        Expr::Cmp(..) | Expr::Call(..) => Cls::Wide,
    }
}

/// The classes of the kernel's variables: loop variables are `Index`; the rest
/// the join of everything assigned to them, to a fixed point (classes only grow
/// and bits are bounded, so it ends).
pub fn classes(k: &Kernel) -> Vec<Cls> {
    let mut vars: Vec<Cls> = k.vars.iter().map(|v| if v.ty.scalar == Scalar::I64 { Cls::Bottom } else { Cls::Index }).collect();
    fn loops(body: &[Stmt], vars: &mut [Cls]) {
        for s in body {
            match s {
                Stmt::Loop(l) => {
                    vars[l.var.0 as usize] = Cls::Index;
                    loops(&l.body, vars);
                }
                Stmt::If { then, els, .. } => {
                    loops(then, vars);
                    loops(els, vars);
                }
                _ => {}
            }
        }
    }
    loops(&k.body, &mut vars);
    fn sets(k: &Kernel, body: &[Stmt], vars: &mut [Cls], changed: &mut bool) {
        for s in body {
            match s {
                Stmt::Set(v, e) => {
                    let i = v.0 as usize;
                    if k.vars[i].ty.scalar != Scalar::I64 {
                        continue;
                    }
                    let n = join(vars[i], class(k, vars, e));
                    if n != vars[i] {
                        vars[i] = n;
                        *changed = true;
                    }
                }
                Stmt::Loop(l) => {
                    // A reduction's accumulator also takes the combination of
                    // partial results: the same op on two of its values.
                    if let LoopKind::Reduce(op, acc) = l.kind {
                        let i = acc.0 as usize;
                        if k.vars[i].ty.scalar == Scalar::I64 {
                            let n = join(vars[i], binary(op, vars[i], vars[i], None));
                            if n != vars[i] {
                                vars[i] = n;
                                *changed = true;
                            }
                        }
                    }
                    sets(k, &l.body, vars, changed);
                }
                Stmt::If { then, els, .. } => {
                    sets(k, then, vars, changed);
                    sets(k, els, vars, changed);
                }
                _ => {}
            }
        }
    }
    loop {
        let mut changed = false;
        sets(k, &k.body, &mut vars, &mut changed);
        if !changed {
            return vars;
        }
    }
}

/// `vec2<u32>` literal of `v`.
pub fn lit(v: i64) -> String {
    let u = v as u64;
    format!("vec2<u32>({}u, {}u)", u as u32, (u >> 32) as u32)
}

/// The helpers a helper calls (added with it).
pub fn deps(name: &str) -> &'static [&'static str] {
    match name {
        "i64_neg" => &["i64_sub"],
        "i64_abs" => &["i64_neg"],
        "i64_mul" => &["i64_mulhi32"],
        "i64_min" | "i64_max" => &["i64_lt"],
        "i64_udivrem" => &["i64_sub"],
        "i64_div" | "i64_rem" => &["i64_udivrem", "i64_abs"],
        "i64_from_f32" => &["i64_neg", "i64_shl"],
        "i64_to_f32" => &["i64_abs"],
        _ => &[],
    }
}

/// The WGSL source of helper `name` (see the module doc), or `None` for an
/// unknown name.
pub fn source(name: &str) -> Option<String> {
    const W: &str = "vec2<u32>";
    let s = match name {
        // i32 → i64: sign extension.
        "i64_from_i32" => format!("fn i64_from_i32(x: i32) -> {W} {{\n  return {W}(bitcast<u32>(x), bitcast<u32>(x >> 31u));\n}}\n"),
        // i64 → i32, saturating (`cast` to i32 and narrower).
        "i64_to_i32" => format!(
            "fn i64_to_i32(a: {W}) -> i32 {{\n  let lo = bitcast<i32>(a.x);\n  let hi = bitcast<i32>(a.y);\n  return select(select(2147483647i, -2147483647i - 1i, hi < 0i), lo, hi == (lo >> 31u));\n}}\n"
        ),
        "i64_add" => format!(
            "fn i64_add(a: {W}, b: {W}) -> {W} {{\n  let lo = a.x + b.x;\n  return {W}(lo, a.y + b.y + select(0u, 1u, lo < a.x));\n}}\n"
        ),
        "i64_sub" => format!(
            "fn i64_sub(a: {W}, b: {W}) -> {W} {{\n  return {W}(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));\n}}\n"
        ),
        "i64_neg" => format!("fn i64_neg(a: {W}) -> {W} {{\n  return i64_sub({W}(0u), a);\n}}\n"),
        // Wrapping: |i64::MIN| is i64::MIN (as the interpreter's `wrapping_abs`).
        "i64_abs" => format!("fn i64_abs(a: {W}) -> {W} {{\n  return select(a, i64_neg(a), bitcast<i32>(a.y) < 0i);\n}}\n"),
        // The high word of the unsigned 64-bit product of two u32s, by 16-bit halves.
        "i64_mulhi32" => "fn i64_mulhi32(a: u32, b: u32) -> u32 {
  let al = a & 65535u;
  let ah = a >> 16u;
  let bl = b & 65535u;
  let bh = b >> 16u;
  let lh = al * bh;
  let hl = ah * bl;
  let mid = ((al * bl) >> 16u) + (lh & 65535u) + (hl & 65535u);
  return ah * bh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}
"
        .to_string(),
        // Wrapping 64×64 → 64.
        "i64_mul" => format!(
            "fn i64_mul(a: {W}, b: {W}) -> {W} {{\n  return {W}(a.x * b.x, i64_mulhi32(a.x, b.x) + a.x * b.y + a.y * b.x);\n}}\n"
        ),
        "i64_lt" => format!(
            "fn i64_lt(a: {W}, b: {W}) -> bool {{\n  let ah = bitcast<i32>(a.y);\n  let bh = bitcast<i32>(b.y);\n  return ah < bh || (ah == bh && a.x < b.x);\n}}\n"
        ),
        "i64_min" => format!("fn i64_min(a: {W}, b: {W}) -> {W} {{\n  return select(a, b, i64_lt(b, a));\n}}\n"),
        "i64_max" => format!("fn i64_max(a: {W}, b: {W}) -> {W} {{\n  return select(a, b, i64_lt(a, b));\n}}\n"),
        // Shifts by `n` in [0, 63] (the caller takes the amount modulo 64).
        "i64_shl" => format!(
            "fn i64_shl(a: {W}, n: u32) -> {W} {{\n  if (n == 0u) {{\n    return a;\n  }}\n  if (n >= 32u) {{\n    return {W}(0u, a.x << (n - 32u));\n  }}\n  return {W}(a.x << n, (a.y << n) | (a.x >> (32u - n)));\n}}\n"
        ),
        "i64_shr" => format!(
            "fn i64_shr(a: {W}, n: u32) -> {W} {{\n  let h = bitcast<i32>(a.y);\n  if (n == 0u) {{\n    return a;\n  }}\n  if (n >= 32u) {{\n    return {W}(bitcast<u32>(h >> (n - 32u)), bitcast<u32>(h >> 31u));\n  }}\n  return {W}((a.x >> n) | (a.y << (32u - n)), bitcast<u32>(h >> n));\n}}\n"
        ),
        // Unsigned 64-bit quotient (.xy) and remainder (.zw) by restoring long
        // division (one bit per step; a one-word fast path); 0 and 0 for d = 0.
        "i64_udivrem" => format!(
            "fn i64_udivrem(n: {W}, d: {W}) -> vec4<u32> {{
  if (d.x == 0u && d.y == 0u) {{
    return vec4<u32>(0u);
  }}
  if (n.y == 0u && d.y == 0u) {{
    return vec4<u32>(n.x / d.x, 0u, n.x % d.x, 0u);
  }}
  var q = {W}(0u);
  var r = {W}(0u);
  for (var i = 63u; i < 64u; i -= 1u) {{
    let w = select(n.x, n.y, i >= 32u);
    r = {W}((r.x << 1u) | ((w >> (i & 31u)) & 1u), (r.y << 1u) | (r.x >> 31u));
    if (r.y > d.y || (r.y == d.y && r.x >= d.x)) {{
      r = i64_sub(r, d);
      if (i >= 32u) {{
        q.y = q.y | (1u << (i - 32u));
      }} else {{
        q.x = q.x | (1u << i);
      }}
    }}
  }}
  return vec4<u32>(q, r);
}}
"
        ),
        // Signed division truncating toward zero (wrapping: MIN / -1 = MIN; the
        // lowering never divides by zero, which gives 0 here).
        "i64_div" => format!(
            "fn i64_div(a: {W}, b: {W}) -> {W} {{\n  let q = i64_udivrem(i64_abs(a), i64_abs(b)).xy;\n  return select(q, i64_neg(q), ((a.y ^ b.y) >> 31u) != 0u);\n}}\n"
        ),
        // Remainder with the dividend's sign.
        "i64_rem" => format!(
            "fn i64_rem(a: {W}, b: {W}) -> {W} {{\n  let r = i64_udivrem(i64_abs(a), i64_abs(b)).zw;\n  return select(r, i64_neg(r), bitcast<i32>(a.y) < 0i);\n}}\n"
        ),
        // `x as f32`: the magnitude normalized to bit 63, its top 24 bits rounded
        // to nearest even by the 40 below (the carry of a round-up moves into the
        // exponent field by itself).
        "i64_to_f32" => format!(
            "fn i64_to_f32(a: {W}) -> f32 {{
  let m = i64_abs(a);
  if (m.x == 0u && m.y == 0u) {{
    return 0.0f;
  }}
  let lz = select(countLeadingZeros(m.y), 32u + countLeadingZeros(m.x), m.y == 0u);
  var n = m;
  if (lz >= 32u) {{
    n = {W}(0u, m.x << (lz - 32u));
  }} else if (lz > 0u) {{
    n = {W}(m.x << lz, (m.y << lz) | (m.x >> (32u - lz)));
  }}
  let man = n.y >> 8u;
  let half = (n.y & 128u) != 0u;
  let sticky = (n.y & 127u) != 0u || n.x != 0u;
  let up = select(0u, 1u, half && (sticky || (man & 1u) != 0u));
  let bits = ((189u - lz) << 23u) + man + up;
  return bitcast<f32>(bits | (a.y & 2147483648u));
}}
"
        ),
        // `x as f64`: hi·2³² + lo, both exact, one rounding in the sum.
        "i64_to_f64" => format!("fn i64_to_f64(a: {W}) -> f64 {{\n  return f64(bitcast<i32>(a.y)) * 4294967296.0lf + f64(a.x);\n}}\n"),
        // `x as i64` of an f32: truncates, saturates, NaN → 0; all from the
        // bits (float comparisons with NaN are not dependable in shaders): the
        // 24-bit significand shifted by the exponent.
        "i64_from_f32" => format!(
            "fn i64_from_f32(x: f32) -> {W} {{
  let b = bitcast<u32>(x);
  if ((b & 2147483647u) > 2139095040u) {{
    return {W}(0u);
  }}
  if ((b & 2147483647u) >= 1593835520u) {{
    return select({W}(4294967295u, 2147483647u), {W}(0u, 2147483648u), (b >> 31u) != 0u);
  }}
  let e = i32((b >> 23u) & 255u) - 150i;
  let m = (b & 8388607u) | 8388608u;
  var r = {W}(0u);
  if (e >= 0i) {{
    r = i64_shl({W}(m, 0u), u32(e));
  }} else if (e > -24i) {{
    r = {W}(m >> u32(-e), 0u);
  }}
  return select(r, i64_neg(r), (b >> 31u) != 0u);
}}
"
        ),
        // `x as i64` of an f64: the truncated value split into words exactly
        // (the high word by flooring t / 2³², the low word the exact difference).
        "i64_from_f64" => format!(
            "fn i64_from_f64(x: f64) -> {W} {{
  if (!(x == x)) {{
    return {W}(0u);
  }}
  if (x >= 9223372036854775808.0lf) {{
    return {W}(4294967295u, 2147483647u);
  }}
  if (x <= -9223372036854775808.0lf) {{
    return {W}(0u, 2147483648u);
  }}
  let t = trunc(x);
  let hi = floor(t * 2.3283064365386963e-10lf);
  let lo = t - hi * 4294967296.0lf;
  return {W}(u32(lo), bitcast<u32>(i32(hi)));
}}
"
        ),
        _ => return None,
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Access, Expr, KernelBuilder, Ty};

    #[test]
    fn bits_of_constants() {
        assert_eq!([bits(0), bits(-1), bits(1), bits(127), bits(-128), bits(128)], [1, 1, 2, 8, 8, 9]);
        assert_eq!(of_const(i32::MAX as i64), Cls::Const(32));
        assert_eq!(of_const(i32::MIN as i64), Cls::Const(32));
        assert_eq!(of_const(i32::MAX as i64 + 1), Cls::Wide);
    }

    #[test]
    fn narrow_data_grows_until_wide() {
        use Cls::*;
        assert_eq!(binary(BinOp::Add, Narrow(8), Narrow(8), None), Narrow(9));
        assert_eq!(binary(BinOp::Mul, Narrow(32), Narrow(2), None), Wide);
        assert_eq!(binary(BinOp::Add, Narrow(32), Const(1), None), Wide);
        assert_eq!(binary(BinOp::Mul, Index, Const(20), None), Index);
        assert_eq!(binary(BinOp::Add, Index, Narrow(8), None), Wide);
        assert_eq!(unary(UnOp::Neg, Narrow(32)), Wide);
        assert_eq!(join(Const(1), Index), Index);
        assert_eq!(join(Const(1), Narrow(9)), Narrow(9));
    }

    /// A counter stays an index, a max of i8 data stays narrow, a sum of i8
    /// data in a loop and anything loaded from an i64 buffer are wide.
    #[test]
    fn variables_by_fixed_point() {
        let mut kb = KernelBuilder::new("k");
        let x = kb.buffer("x", Scalar::I8, 9, Access::Read);
        let w = kb.buffer("w", Scalar::I64, 9, Access::Read);
        let y = kb.buffer("y", Scalar::I64, 4, Access::Write);
        let (cnt, mx, sum, big) = (kb.var("cnt", Ty::I64), kb.var("mx", Ty::I64), kb.var("sum", Ty::I64), kb.var("big", Ty::I64));
        for v in [cnt, mx, sum, big] {
            kb.set(v, Expr::i(0));
        }
        kb.for_n("i", 9, |kb, i| {
            let v = Expr::cast(Scalar::I64, Expr::load(x, i.clone()));
            kb.set(cnt, Expr::var(cnt) + Expr::i(1));
            kb.set(mx, Expr::bin(BinOp::Max, Expr::var(mx), v.clone()));
            kb.set(sum, Expr::var(sum) + v);
            kb.set(big, Expr::load(w, i));
        });
        for (k, v) in [cnt, mx, sum, big].into_iter().enumerate() {
            kb.store(y, Expr::i(k as i64), Expr::var(v));
        }
        let k = kb.finish();
        let c = classes(&k);
        let at = |v: crate::kernel::VarId| c[v.0 as usize];
        assert_eq!([at(cnt), at(mx), at(sum), at(big)], [Cls::Index, Cls::Narrow(8), Cls::Wide, Cls::Wide]);
    }
}
