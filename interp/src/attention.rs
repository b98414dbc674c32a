//! Interpreter: multi-head scaled dot-product `attention` (optional additive mask and
//! causal masking), computed in f64 with a max-subtracted softmax.

use super::{Arg, util};
use smelt_ir::ops::Attention;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    match op {
        Op::Attention(a) => attention(a, ins, out),
        _ => Err(format!("attention::eval does not run {}", op.name())),
    }
}

fn f64s(a: &Arg) -> Vec<f64> {
    a.value.to_f32().into_iter().map(f64::from).collect()
}

/// Softmax of one row, max-subtracted. A row of all −inf gives NaN (as numpy).
fn softmax(row: &mut [f64]) {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for x in row.iter_mut() {
        *x = (*x - m).exp();
    }
    let s: f64 = row.iter().sum();
    for x in row.iter_mut() {
        *x /= s;
    }
}

fn attention(a: &Attention, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let [q, k, v, rest @ ..] = ins else { return Err(format!("attention expects 3 or 4 inputs, found {}", ins.len())) };
    let [b, tq, e] = q.value.shape()[..] else {
        return Err(format!("expected q [B, Tq, E], found {:?}", q.value.shape()));
    };
    let [bk, tk, ek] = k.value.shape()[..] else {
        return Err(format!("expected k [B, Tk, E], found {:?}", k.value.shape()));
    };
    let [bv, tv, ev] = v.value.shape()[..] else {
        return Err(format!("expected v [B, Tk, Ev], found {:?}", v.value.shape()));
    };
    let heads = a.heads;
    if bk != b || bv != b || ek != e || tv != tk || heads == 0 || e % heads != 0 || ev % heads != 0 {
        return Err(format!(
            "attention shapes do not agree: q {:?}, k {:?}, v {:?}, heads {heads}",
            q.value.shape(),
            k.value.shape(),
            v.value.shape()
        ));
    }
    let (dh, dv) = (e / heads, ev / heads);
    let scale = match a.scale {
        Some(s) => s as f64,
        None => 1.0 / ((e / heads) as f64).sqrt(),
    };
    // The mask broadcast to [B, heads, Tq, Tk], as one flat position per element.
    let full = [b, heads, tq, tk];
    let mask = match rest.first() {
        Some(m) => {
            let ms = m.value.shape();
            let fits = ms.len() <= 4 && ms.iter().rev().zip(full.iter().rev()).all(|(&d, &f)| d == 1 || d == f);
            if !fits {
                return Err(format!("attention mask {ms:?} does not broadcast to {full:?}"));
            }
            Some((f64s(m), util::broadcast_map(&full, ms)))
        }
        None => None,
    };
    let (qv, kv, vv) = (f64s(q), f64s(k), f64s(v));
    let offset = tk as i64 - tq as i64;
    let mut y = vec![0.0f32; b * tq * ev];
    let mut s = vec![0.0f64; tk];
    for bi in 0..b {
        for h in 0..heads {
            for i in 0..tq {
                for (j, sj) in s.iter_mut().enumerate() {
                    let qo = (bi * tq + i) * e + h * dh;
                    let ko = (bi * tk + j) * e + h * dh;
                    let dot: f64 = (0..dh).map(|c| qv[qo + c] * kv[ko + c]).sum();
                    *sj = dot * scale;
                    if let Some((mv, map)) = &mask {
                        *sj += mv[map[((bi * heads + h) * tq + i) * tk + j]];
                    }
                    if a.causal && j as i64 > i as i64 + offset {
                        *sj = f64::NEG_INFINITY;
                    }
                }
                softmax(&mut s);
                for c in 0..dv {
                    let acc: f64 = (0..tk).map(|j| s[j] * vv[(bi * tk + j) * ev + h * dv + c]).sum();
                    y[(bi * tq + i) * ev + h * dv + c] = acc as f32;
                }
            }
        }
    }
    let ty = out.first().ok_or("attention has one output")?;
    Ok(vec![util::from_f32(ty, y)])
}

#[cfg(test)]
mod tests {
    use smelt_ir::Tensor;
    use std::collections::BTreeMap;

    fn run(src: &str, inputs: &[(&str, Tensor)]) -> BTreeMap<String, Tensor> {
        let g = smelt_ir::text::parse(src).expect("parses");
        let m = inputs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        crate::run(&g, &m).expect("runs")
    }

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::f32(shape.to_vec(), v.to_vec()).expect("sized")
    }

    fn close(a: &Tensor, want: &[f32]) {
        let got = a.to_f32();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    /// One key: the softmax over one score is 1, so the output is v itself.
    #[test]
    fn one_key_passes_value_through() {
        let src = "graph g(q: f32[1, 2, 2], k: f32[1, 1, 2], v: f32[1, 1, 3]) -> (y) {
            y = attention(q, k, v)
        }";
        let o = run(
            src,
            &[
                ("q", t(&[1, 2, 2], &[1.0, -2.0, 3.0, 0.5])),
                ("k", t(&[1, 1, 2], &[0.3, 0.7])),
                ("v", t(&[1, 1, 3], &[4.0, 5.0, 6.0])),
            ],
        );
        close(&o["y"], &[4.0, 5.0, 6.0, 4.0, 5.0, 6.0]);
    }

    /// Two keys, E = 1, scale = 1/√1 = 1, q = [0, ln 3]; k = [0, 1]; v = [10, 20].
    /// Row 0: scores [0, 0] → weights [½, ½] → 15. Row 1: scores [0, ln 3] → [¼, ¾] → 17.5.
    /// Causal (Tq = Tk, offset 0): row 0 sees only key 0 → 10; row 1 unchanged → 17.5.
    /// An additive mask [0, −inf] on every row: 10 and 10.
    #[test]
    fn two_keys_causal_and_mask() {
        let q = t(&[1, 2, 1], &[0.0, 3f32.ln()]);
        let k = t(&[1, 2, 1], &[0.0, 1.0]);
        let v = t(&[1, 2, 1], &[10.0, 20.0]);
        let ins = [("q", q), ("k", k), ("v", v)];
        let plain = "graph g(q: f32[1, 2, 1], k: f32[1, 2, 1], v: f32[1, 2, 1]) -> (y) { y = attention(q, k, v) }";
        close(&run(plain, &ins)["y"], &[15.0, 17.5]);
        let causal = plain.replace("attention(q, k, v)", "attention(q, k, v) {causal = true}");
        close(&run(&causal, &ins)["y"], &[10.0, 17.5]);
        let masked = "graph g(q: f32[1, 2, 1], k: f32[1, 2, 1], v: f32[1, 2, 1], m: f32[2]) -> (y) {
            y = attention(q, k, v, m)
        }";
        let mut ins2 = ins.to_vec();
        ins2.push(("m", t(&[2], &[0.0, f32::NEG_INFINITY])));
        close(&run(masked, &ins2)["y"], &[10.0, 10.0]);
    }

    /// Causal with Tq = 2 > Tk = 1: row i masks key j when j > i + (Tk − Tq) = i − 1, so
    /// row 0 masks its only key: softmax of all −inf is NaN (as numpy); row 1 sees v.
    #[test]
    fn causal_fully_masked_row_is_nan() {
        let src = "graph g(q: f32[1, 2, 1], k: f32[1, 1, 1], v: f32[1, 1, 1]) -> (y) {
            y = attention(q, k, v) {causal = true}
        }";
        let o =
            run(src, &[("q", t(&[1, 2, 1], &[1.0, 2.0])), ("k", t(&[1, 1, 1], &[1.0])), ("v", t(&[1, 1, 1], &[3.0]))]);
        let y = o["y"].to_f32();
        assert!(y[0].is_nan() && y[1] == 3.0, "{y:?}");
    }

    /// Two heads with E = Ev = 2: head 0 uses column 0 and head 1 column 1; one query,
    /// two keys, scale = 2 (set). q = [ln 3 / 2, 0]; k rows [0, 0], [1, 0]; v rows [1, 5], [3, 7].
    /// Head 0: scores [0, ln 3] → [¼, ¾] → 0.25 + 2.25 = 2.5. Head 1: scores [0, 0] → 6.
    #[test]
    fn heads_split_columns() {
        let src = "graph g(q: f32[1, 1, 2], k: f32[1, 2, 2], v: f32[1, 2, 2]) -> (y) {
            y = attention(q, k, v) {heads = 2, scale = 2.0}
        }";
        let o = run(
            src,
            &[
                ("q", t(&[1, 1, 2], &[3f32.ln() / 2.0, 0.0])),
                ("k", t(&[1, 2, 2], &[0.0, 0.0, 1.0, 0.0])),
                ("v", t(&[1, 2, 2], &[1.0, 5.0, 3.0, 7.0])),
            ],
        );
        close(&o["y"], &[2.5, 6.0]);
    }
}
