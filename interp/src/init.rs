//! Random weights for a graph's params and random inputs (seeded), for examples and
//! tests.
//!
//! Each tensor draws from its own ChaCha8 stream, chosen by a hash of its name, so a
//! tensor's values depend only on the seed, its name, its type and its role — adding
//! a param to a model does not change the others. The role of a param is read from
//! its first user:
//!
//! | role | values |
//! |---|---|
//! | `batch_norm` var (input 4) | uniform in [0.5, 1.5] (must be positive) |
//! | `batch_norm` / `layer_norm` scale (input 1) | 1 + N(0, 0.1²) |
//! | `batch_norm` bias, mean; `layer_norm` bias | N(0, 0.1²) |
//! | a weight matrix (rank ≥ 2) | N(0, 1/fan_in): fan_in is the size of the contracted dims |
//! | any other 1-d or scalar float | N(0, 0.1²) |
//! | a quantized (`quant(...)`) i8/u8 | uniform over the dtype's range |
//! | the i32 bias of `qmatmul`/`qconv` | uniform in [-64, 64] |
//! | any other integer or bool param | an error: such data (indices, masks) can't be invented |
//!
//! fan_in is the product of the dims after the first (a conv weight `[M, C, k…]`), except
//! where the op says otherwise: the right operand of `matmul` `[.., K, N]` and of `gemm`
//! contract over K; `lstm`/`gru` weights `[D, G·H, I]` over I; `moe` expert weights
//! `[E, D, H]` over D.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use smelt_ir::{Bindings, DType, Data, Dim, Graph, NodeId, Op, Tensor, TensorType};
use std::collections::BTreeMap;

/// How a param's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// N(0, 1/fan_in).
    Weight { fan_in: usize },
    /// N(0, 0.1²).
    Small,
    /// 1 + N(0, 0.1²).
    NearOne,
    /// Uniform in [0.5, 1.5].
    Variance,
    /// i32 accumulator bias of an integer kernel.
    QBias,
}

/// A ChaCha8 generator for one named tensor under `seed`.
fn rng_for(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a: stable across platforms and Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(h);
    rng
}

fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let d = Normal::new(mean, std).expect("finite, positive std");
    (0..n).map(|_| d.sample(rng)).collect()
}

/// The role of a param of shape `dims`, from its first user.
fn role(g: &Graph, id: NodeId, dims: &[usize]) -> Role {
    let default = || match dims.len() {
        0 | 1 => Role::Small,
        _ => Role::Weight { fan_in: dims[1..].iter().product() },
    };
    let Some(&(user, port)) = g.users(smelt_ir::Value { node: id, output: 0 }).first() else {
        return default();
    };
    let r = dims.len();
    match (&g.node(user).op, port) {
        (Op::BatchNorm { .. }, 4) => Role::Variance,
        (Op::BatchNorm { .. } | Op::LayerNorm { .. }, 1) => Role::NearOne,
        (Op::BatchNorm { .. } | Op::LayerNorm { .. }, _) => Role::Small,
        (Op::MatMul, 1) if r >= 2 => Role::Weight { fan_in: dims[r - 2] },
        (Op::MatMul, 1) if r == 1 => Role::Weight { fan_in: dims[0] },
        (Op::Gemm(gm), 1) if r == 2 => Role::Weight { fan_in: if gm.trans_b { dims[1] } else { dims[0] } },
        (Op::Lstm(_) | Op::Gru(_), 1 | 2) if r == 3 => Role::Weight { fan_in: dims[2] },
        (Op::Lstm(_) | Op::Gru(_), _) => Role::Small,
        (Op::Moe(_), 2..=4) if r == 3 => Role::Weight { fan_in: dims[1] },
        (Op::QMatMul(_) | Op::QConv(..), 2) => Role::QBias,
        _ => default(),
    }
}

/// Draws the value of one param (node `id` of `g`) as [`random_weights`] does; the
/// error says why this param can't be drawn.
pub fn random_param(g: &Graph, id: NodeId, seed: u64) -> Result<Tensor, String> {
    let n = g.node(id);
    let (name, ty) = (n.name(), &n.types[0]);
    let dims = ty
        .shape
        .fixed()
        .ok_or_else(|| format!("param `{name}` has a symbolic shape ({ty}); params need fixed shapes"))?;
    let numel: usize = dims.iter().product();
    let mut rng = rng_for(seed, name);
    let role = role(g, id, &dims);
    let data = if ty.dtype.is_float() {
        let v = match role {
            Role::Weight { fan_in } => normal(&mut rng, numel, 0.0, (1.0 / fan_in.max(1) as f32).sqrt()),
            Role::Small | Role::QBias => normal(&mut rng, numel, 0.0, 0.1),
            Role::NearOne => normal(&mut rng, numel, 1.0, 0.1),
            Role::Variance => (0..numel).map(|_| rng.random_range(0.5f32..=1.5)).collect(),
        };
        Data::from_f32(ty.dtype, &v)
    } else if ty.quant.is_some() && ty.dtype.is_quantizable() {
        let (lo, hi) = ty.dtype.int_range().expect("integer dtype");
        Data::from_i64(ty.dtype, &(0..numel).map(|_| rng.random_range(lo..=hi)).collect::<Vec<_>>())
    } else if role == Role::QBias && ty.dtype == DType::I32 {
        Data::I32((0..numel).map(|_| rng.random_range(-64..=64)).collect())
    } else {
        return Err(format!(
            "param `{name}` is {ty}: integer and bool params (indices, masks) can't be drawn at random; \
             they must come from a real weights file"
        ));
    };
    Tensor::new(dims, data).map_err(|e| format!("param `{name}`: {e}"))
}

/// Seeded random values for every param of `g`, by name. Deterministic for a seed.
/// Fails, naming the param, when one can't be invented (an integer param that isn't
/// quantized, such as the index arrays of `sparse_matmul`) or has a symbolic shape.
/// Every failing param is reported, one per line.
pub fn random_weights(g: &Graph, seed: u64) -> Result<BTreeMap<String, Tensor>, String> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for id in g.params() {
        match random_param(g, id, seed) {
            Ok(t) => {
                out.insert(g.node(id).name().to_string(), t);
            }
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems.join("\n")) }
}

/// The concrete shape of `ty` with symbols bound from `dims`; unbound symbols are 1.
fn concrete(ty: &TensorType, dims: &Bindings) -> Vec<usize> {
    ty.dims()
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n as usize,
            Dim::Sym(s) => dims.get(&**s).copied().unwrap_or(1) as usize,
        })
        .collect()
}

/// Seeded random values for every input of `g`, by name: floats N(0, 1), i32/i64
/// uniform in [0, 10), i8/u8 uniform over their range, bools fair coins. Symbolic
/// dims take their size from `dims`; symbols not bound there are 1.
pub fn random_inputs(g: &Graph, seed: u64, dims: &Bindings) -> Result<BTreeMap<String, Tensor>, String> {
    let mut out = BTreeMap::new();
    for &id in g.inputs() {
        let n = g.node(id);
        let (name, ty) = (n.name(), &n.types[0]);
        let shape = concrete(ty, dims);
        let numel: usize = shape.iter().product();
        let mut rng = rng_for(seed, name);
        let data = match ty.dtype {
            d if d.is_float() => Data::from_f32(d, &normal(&mut rng, numel, 0.0, 1.0)),
            d @ (DType::I32 | DType::I64) => {
                Data::from_i64(d, &(0..numel).map(|_| rng.random_range(0..10)).collect::<Vec<_>>())
            }
            d @ (DType::I8 | DType::U8) => {
                let (lo, hi) = d.int_range().expect("integer dtype");
                Data::from_i64(d, &(0..numel).map(|_| rng.random_range(lo..=hi)).collect::<Vec<_>>())
            }
            _ => Data::Bool((0..numel).map(|_| rng.random::<bool>()).collect()),
        };
        let t = Tensor::new(shape, data).map_err(|e| format!("input `{name}`: {e}"))?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::text::parse;

    const NET: &str = "graph net(x: f32[N, 8, 4, 4], ids: i64[N]) -> (y, z) {
  w = param f32[16, 8, 3, 3]
  s = param f32[16]
  b = param f32[16]
  m = param f32[16]
  v = param f32[16]
  fc = param f32[16, 10]
  c = conv2d(x, w) {pad = [1, 1, 1, 1]}
  n = batch_norm(c, s, b, m, v)
  p = global_avg_pool(n)
  f = reshape(p) {shape = [0, -1]}
  y = matmul(f, fc)
  z = cast(ids) {to = f32}
}
";

    #[test]
    fn weights_are_deterministic_and_typed() {
        let g = parse(NET).unwrap();
        let a = random_weights(&g, 7).unwrap();
        let b = random_weights(&g, 7).unwrap();
        let c = random_weights(&g, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a["w"], c["w"]);
        assert_eq!(a.keys().cloned().collect::<Vec<_>>(), ["b", "fc", "m", "s", "v", "w"]);
        for id in g.params() {
            let n = g.node(id);
            assert!(a[n.name()].fits(&n.types[0]), "{}", n.name());
        }
    }

    #[test]
    fn roles_shape_the_values() {
        let g = parse(NET).unwrap();
        let w = random_weights(&g, 1).unwrap();
        let var = w["v"].to_f32();
        assert!(var.iter().all(|&x| (0.5..=1.5).contains(&x)), "{var:?}");
        let scale = w["s"].to_f32();
        assert!(scale.iter().all(|&x| (0.5..1.5).contains(&x)), "{scale:?}");
        // conv weight: fan_in = 8·3·3 = 72, std ≈ 0.118.
        let conv = w["w"].to_f32();
        let std = (conv.iter().map(|x| x * x).sum::<f32>() / conv.len() as f32).sqrt();
        assert!((0.09..0.15).contains(&std), "conv std {std}");
        // matmul rhs [16, 10]: fan_in = 16, std = 0.25.
        let fc = w["fc"].to_f32();
        let std = (fc.iter().map(|x| x * x).sum::<f32>() / fc.len() as f32).sqrt();
        assert!((0.15..0.35).contains(&std), "fc std {std}");
    }

    #[test]
    fn adding_a_param_leaves_the_others_alone() {
        let g1 = parse("graph g(x: f32[2]) -> (y) {\n  a = param f32[2]\n  y = add(x, a)\n}\n").unwrap();
        let g2 = parse("graph g(x: f32[2]) -> (y) {\n  z = param f32[2]\n  a = param f32[2]\n  t = add(x, z)\n  y = add(t, a)\n}\n")
            .unwrap();
        assert_eq!(random_weights(&g1, 3).unwrap()["a"], random_weights(&g2, 3).unwrap()["a"]);
    }

    #[test]
    fn quantized_params_span_their_range_and_indices_are_refused() {
        let g = parse(
            "graph g(x: f32[4, 8]) -> (y) {
  q = param i8[8, 8] quant(scale = 0.1)
  d = dequantize(q)
  y = matmul(x, d)
}
",
        )
        .unwrap();
        let w = random_weights(&g, 0).unwrap();
        let v = w["q"].to_i64();
        assert!(v.iter().any(|&x| x < -64) && v.iter().any(|&x| x > 64), "{v:?}");

        let g = parse(
            "graph s(x: f32[2, 4]) -> (y) {
  vals = param f32[3]
  idx = param i32[3]
  off = param i32[5]
  y = sparse_matmul(x, vals, idx, off) {cols = 4}
}
",
        )
        .unwrap();
        let e = random_weights(&g, 0).unwrap_err();
        assert!(e.contains("param `idx` is i32[3]") && e.contains("param `off`"), "{e}");
    }

    #[test]
    fn inputs_bind_symbols_and_follow_dtypes() {
        let g = parse(NET).unwrap();
        let dims = Bindings::from([("N".to_string(), 3)]);
        let i = random_inputs(&g, 5, &dims).unwrap();
        assert_eq!(i["x"].shape(), [3, 8, 4, 4]);
        assert_eq!(i["ids"].shape(), [3]);
        assert!(i["ids"].to_i64().iter().all(|&x| (0..10).contains(&x)));
        assert_eq!(i, random_inputs(&g, 5, &dims).unwrap());
        let one = random_inputs(&g, 5, &Bindings::new()).unwrap();
        assert_eq!(one["x"].shape(), [1, 8, 4, 4]);
        // A weights-ready graph runs on them.
        let mut g = g;
        for (k, v) in random_weights(&g, 1).unwrap() {
            g.set_weight(k, v);
        }
        smelt_ir::verify(&g, smelt_ir::Weights::Required).unwrap();
    }
}
