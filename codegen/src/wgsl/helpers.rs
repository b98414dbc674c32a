//! WGSL helper functions a kernel's shader may need, each generated from its
//! types: loads and stores (packed bytes included), casts with smelt's semantics,
//! NaN-propagating float min/max, integer division, horizontal reductions.

use super::lit::{f32_lit, f64_lit, int_lit, ty_name};
use super::{packed, scalar_name};
use crate::kernel::{Buffer, HOp, Scalar, Ty};

fn lanes_list(lanes: u32, f: impl Fn(u32) -> String) -> String {
    (0..lanes).map(f).collect::<Vec<_>>().join(", ")
}

/// `fn NAME(i: i64) -> T`: `lanes` consecutive elements of buffer `b` from `i`
/// (a vector load calls the scalar one, `ld1_bB`, which the emitter adds too).
/// With `native_f16`, an f16 buffer is an `array<f16>`.
pub fn load(name: &str, b: u32, buf: &Buffer, lanes: u32, native_f16: bool) -> String {
    let t = ty_name(Ty::vec(buf.scalar, lanes));
    let bn = format!("b{b}");
    if lanes > 1 {
        // Vector loads are lane loads (WGSL arrays of scalars have no unaligned vector view).
        let one = format!("ld1_b{b}");
        let body = lanes_list(lanes, |l| format!("{one}(i + {l}i)"));
        return format!("fn {name}(i: i32) -> {t} {{\n  return {t}({body});\n}}\n");
    }
    if native_f16 && buf.scalar == Scalar::F16 {
        // The element's bits (registers hold f16 as bits, as in the packed form):
        // its exact f32 value, rounded to 16 bits (nothing to round). WGSL has no
        // 16-bit integer to bitcast to (the emitter reads `f32(b[i])` directly
        // where the load is cast to f32).
        return format!("fn {name}(i: i32) -> u32 {{\n  return smelt_f32_to_f16(f32({bn}[u32(i)]));\n}}\n");
    }
    if !packed(buf.scalar, native_f16) {
        return format!("fn {name}(i: i32) -> {t} {{\n  return {bn}[u32(i)];\n}}\n");
    }
    if buf.scalar.is_storage() {
        // 16-bit floats: two to a word, the even element in the low half.
        let word = if buf.access.writes() { format!("atomicLoad(&{bn}[u32(i >> 1u)])") } else { format!("{bn}[u32(i >> 1u)]") };
        return format!("fn {name}(i: i32) -> u32 {{\n  return ({word} >> (u32(i & 1i) * 16u)) & 65535u;\n}}\n");
    }
    let word = if buf.access.writes() { format!("atomicLoad(&{bn}[u32(i >> 2u)])") } else { format!("{bn}[u32(i >> 2u)]") };
    let conv = match buf.scalar {
        Scalar::I8 => "bitcast<i32>(byte << 24u) >> 24u",
        Scalar::U8 => "i32(byte)",
        _ => "byte != 0u",
    };
    format!(
        "fn {name}(i: i32) -> {t} {{\n  let w = {word};\n  let byte = (w >> (u32(i & 3i) * 8u)) & 255u;\n  return {conv};\n}}\n"
    )
}

/// `fn NAME(i: i64, v: T)`: stores `lanes` consecutive elements of buffer `b`.
pub fn store(name: &str, b: u32, buf: &Buffer, lanes: u32, native_f16: bool) -> String {
    let t = ty_name(Ty::vec(buf.scalar, lanes));
    let bn = format!("b{b}");
    if lanes > 1 {
        let one = format!("st1_b{b}");
        let body: String = (0..lanes).map(|l| format!("  {one}(i + {l}i, v[{l}]);\n")).collect();
        return format!("fn {name}(i: i32, v: {t}) {{\n{body}}}\n");
    }
    if buf.scalar == Scalar::I64 {
        // An i64 held in i32 (an index or narrow data), sign-extended; wide
        // values have their own store (`Emitter::store_wide_fn`).
        return format!("fn {name}(i: i32, v: i32) {{\n  {bn}[u32(i) * 2u] = v;\n  {bn}[u32(i) * 2u + 1u] = v >> 31u;\n}}\n");
    }
    if native_f16 && buf.scalar == Scalar::F16 {
        // The bits the exact conversion made, as the f32 value they denote: a
        // value f16 represents converts exactly whatever the rounding mode. Each
        // f16 element is its own memory location, so no atomics.
        return format!("fn {name}(i: i32, v: u32) {{\n  {bn}[u32(i)] = f16(smelt_f16_bits_to_f32(v));\n}}\n");
    }
    if !packed(buf.scalar, native_f16) {
        return format!("fn {name}(i: i32, v: {t}) {{\n  {bn}[u32(i)] = v;\n}}\n");
    }
    if buf.scalar.is_storage() {
        return format!(
            "fn {name}(i: i32, v: u32) {{\n  let w = u32(i >> 1u);\n  let sh = u32(i & 1i) * 16u;\n  atomicAnd(&{bn}[w], ~(65535u << sh));\n  atomicOr(&{bn}[w], (v & 65535u) << sh);\n}}\n"
        );
    }
    let conv = match buf.scalar {
        Scalar::Bool => "select(0u, 1u, v)",
        _ => "bitcast<u32>(v) & 255u",
    };
    // Invocations may write other bytes of the same word concurrently: clear and
    // set this byte's bits atomically.
    format!(
        "fn {name}(i: i32, v: {t}) {{\n  let w = u32(i >> 2u);\n  let sh = u32(i & 3i) * 8u;\n  atomicAnd(&{bn}[w], ~(255u << sh));\n  atomicOr(&{bn}[w], ({conv}) << sh);\n}}\n"
    )
}

/// A constant of scalar `s` as a value of `lanes` lanes.
fn konst(v: &str, s: Scalar, lanes: u32) -> String {
    if lanes == 1 { v.to_string() } else { format!("vec{lanes}<{}>({v})", scalar_name(s)) }
}

fn float_lit(x: f64, s: Scalar) -> String {
    if s == Scalar::F64 { f64_lit(x) } else { f32_lit(x as f32) }
}

/// `fn NAME(x: FROM) -> TO` with smelt's conversion semantics: float → int
/// truncates and saturates (NaN → 0), int → int saturates, to bool is `!= 0`,
/// bool → number is 0 or 1.
pub fn cast(name: &str, from: Ty, to: Scalar) -> String {
    let n = from.lanes;
    let (fs, ft) = (from.scalar, ty_name(from));
    let tt = ty_name(Ty::vec(to, n));
    let k = |v: String, s: Scalar| konst(&v, s, n);
    let body = match (fs, to) {
        // 16-bit floats (scalars only: the kernel IR converts them one at a time).
        (Scalar::F16, _) => F16_TO_F32.to_string(),
        (Scalar::BF16, _) => "bitcast<f32>(x << 16u)".to_string(),
        (_, Scalar::F16) => "smelt_f32_to_f16(x)".to_string(),
        (_, Scalar::BF16) => F32_TO_BF16.to_string(),
        (_, Scalar::Bool) => {
            let zero = if fs.is_float() { float_lit(0.0, fs) } else { int_lit(0, fs) };
            // `!(x == 0)`: naga's `!=` on floats is SPIR-V's ordered
            // `FOrdNotEqual`, false for NaN (which is true, as in Rust).
            if fs.is_float() { format!("!(x == {})", k(zero, fs)) } else { format!("x != {}", k(zero, fs)) }
        }
        (Scalar::Bool, _) => format!("select({}, {}, x)", k(int_lit(0, to), to), k(int_lit(1, to), to)),
        (_, Scalar::F32 | Scalar::F64) => format!("{tt}(x)"),
        (Scalar::F32 | Scalar::F64, _) => {
            // i64 computes as i32 (see the module doc of `wgsl`).
            let (lo, hi) = if to == Scalar::I64 { (i32::MIN as i64, i32::MAX as i64) } else { to.int_range().unwrap_or((0, 0)) };
            let nan = "!(x == x)".to_string();
            if matches!(to, Scalar::I8 | Scalar::U8) {
                let c = format!("clamp(x, {}, {})", k(float_lit(lo as f64, fs), fs), k(float_lit(hi as f64, fs), fs));
                format!("select({tt}({c}), {}, {nan})", k(int_lit(0, to), to))
            } else {
                // hi + 1 and lo are powers of two, exact in f32 and f64.
                let (flo, fhi) = (float_lit(lo as f64, fs), float_lit(hi as f64 + 1.0, fs));
                format!(
                    "select(select(select({tt}(x), {}, x >= {}), {}, x <= {}), {}, {nan})",
                    k(int_lit(hi, to), to),
                    k(fhi, fs),
                    k(int_lit(lo, to), to),
                    k(flo, fs),
                    k(int_lit(0, to), to)
                )
            }
        }
        _ => {
            // int → int: widen, clamp, narrow.
            if matches!(to, Scalar::I64 | Scalar::I32) {
                format!("{tt}(x)")
            } else {
                let (lo, hi) = to.int_range().unwrap_or((0, 0));
                format!("{tt}(clamp(x, {}, {}))", k(int_lit(lo, Scalar::I32), Scalar::I32), k(int_lit(hi, Scalar::I32), Scalar::I32))
            }
        }
    };
    format!("fn {name}(x: {ft}) -> {tt} {{\n  return {body};\n}}\n")
}

/// f16 bits → f32, exactly: normal numbers and inf/NaN by moving the fields (NaN
/// made quiet, as `half`), subnormals and zeros as `mantissa · 2^-24` with the sign.
const F16_TO_F32: &str = "bitcast<f32>(select(select(\
(x & 32768u) << 16u | (((x >> 10u) & 31u) + 112u) << 23u | (x & 1023u) << 13u, \
select((x & 32768u) << 16u | 2139095040u, (x & 32768u) << 16u | 2143289344u | (x & 1023u) << 13u, (x & 1023u) != 0u), \
(x & 31744u) == 31744u), \
bitcast<u32>(ldexp(f32(x & 1023u), -24i)) | (x & 32768u) << 16u, \
(x & 31744u) == 0u))";

/// f32 → bf16 bits as `half::bf16::from_f32`: the top half rounded to nearest
/// even; NaN stays a quiet NaN.
const F32_TO_BF16: &str = "select((bitcast<u32>(x) >> 16u) + smelt_round_up(bitcast<u32>(x), 32768u), \
(bitcast<u32>(x) >> 16u) | 64u, (bitcast<u32>(x) & 2147483647u) > 2139095040u) & 65535u";

/// The functions the conversions to 16 bits call (added once to a shader that
/// has one): `smelt_round_up(m, bit)` rounds half to even after dropping the
/// bits of `m` below `bit`; `smelt_f32_to_f16` is `half::f16::from_f32` — rounded
/// to nearest even (normal and subnormal results), overflow to ±inf, NaN kept a
/// NaN with its top payload bits.
pub fn half_support() -> String {
    "fn smelt_round_up(m: u32, bit: u32) -> u32 {
  return select(0u, 1u, (m & bit) != 0u && (m & (3u * bit - 1u)) != 0u);
}

fn smelt_f32_to_f16(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 32768u;
  let e = (x >> 23u) & 255u;
  let man = x & 8388607u;
  let special = sign | 31744u | select(0u, 512u, man != 0u) | (man >> 13u);
  let hexp = i32(e) - 112i;
  let normal = (sign | (u32(hexp) << 10u) | (man >> 13u)) + smelt_round_up(man, 4096u);
  let shift = 14i - hexp;
  let sc = u32(clamp(shift, 1i, 24i));
  let m = man | 8388608u;
  let sub = select(sign | ((m >> sc) + smelt_round_up(m, 1u << (sc - 1u))), sign, shift > 24i);
  var r = select(normal, sub, hexp <= 0i);
  r = select(r, sign | 31744u, hexp >= 31i);
  r = select(r, special, e == 255u);
  return r & 65535u;
}
"
    .to_string()
}

/// `fn smelt_f16_bits_to_f32(x: u32) -> f32`: the exact f16 → f32 conversion of
/// bits (native-f16 stores use it).
pub fn f16_bits_to_f32() -> String {
    format!("fn smelt_f16_bits_to_f32(x: u32) -> f32 {{\n  return {F16_TO_F32};\n}}\n")
}

/// Float min/max that propagate NaN (WGSL's builtins may return either operand).
/// NaN tests are `!(x == x)`: naga emits `!=` on floats as SPIR-V's ordered
/// `FOrdNotEqual`, which is false for NaN.
pub fn fminmax(name: &str, t: Ty, min: bool) -> String {
    let tn = ty_name(t);
    let f = if min { "min" } else { "max" };
    format!("fn {name}(a: {tn}, b: {tn}) -> {tn} {{\n  return select({f}(a, b), a + b, !(a == a) | !(b == b));\n}}\n")
}

/// Signed integer division (truncating) or remainder (sign of the dividend).
pub fn int_divrem(name: &str, t: Ty, div: bool) -> String {
    let tn = ty_name(t);
    let o = if div { "/" } else { "%" };
    format!("fn {name}(a: {tn}, b: {tn}) -> {tn} {{\n  return a {o} b;\n}}\n")
}

/// A vector reduced to a scalar, lane by lane in order.
pub fn hreduce(name: &str, op: HOp, t: Ty) -> String {
    let tn = ty_name(t);
    let sn = ty_name(Ty::scalar(t.scalar));
    let mut body = "  var r = v[0];\n".to_string();
    for l in 1..t.lanes {
        let step = match op {
            HOp::Add => format!("r + v[{l}]"),
            HOp::Max | HOp::Min if t.scalar.is_float() => {
                let f = if op == HOp::Max { "max" } else { "min" };
                format!("select({f}(r, v[{l}]), r + v[{l}], !(r == r) | !(v[{l}] == v[{l}]))")
            }
            HOp::Max => format!("max(r, v[{l}])"),
            HOp::Min => format!("min(r, v[{l}])"),
        };
        body.push_str(&format!("  r = {step};\n"));
    }
    format!("fn {name}(v: {tn}) -> {sn} {{\n{body}  return r;\n}}\n")
}
