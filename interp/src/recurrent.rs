//! Interpreter: the recurrent op family (`lstm`, `gru`) with ONNX semantics (layout 0,
//! default activations, LSTM peepholes), computed in f64 and stored in the node's dtype.

use super::{Arg, util};
use smelt_ir::ops::Rnn;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    match op {
        Op::Lstm(r) => lstm(r, ins, out),
        Op::Gru(r) => gru(r, ins, out),
        _ => Err(format!("recurrent::eval does not run {}", op.name())),
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The inputs of one LSTM/GRU as f64, with their sizes checked.
struct Rec {
    t: usize,
    n: usize,
    i: usize,
    h: usize,
    d: usize,
    /// Gates (4 for LSTM, 3 for GRU).
    g: usize,
    x: Vec<f64>,
    w: Vec<f64>,
    r: Vec<f64>,
    b: Vec<f64>,
    /// Optional initial states [D, N, H], by input position 4, 5.
    states: Vec<Option<Vec<f64>>>,
    /// LSTM peepholes [D, 3H] (input 6, order i, o, f); zeros when absent.
    peep: Vec<f64>,
}

fn f64s(a: &Arg) -> Vec<f64> {
    a.value.to_f32().into_iter().map(f64::from).collect()
}

fn read(r: &Rnn, ins: &[Arg], gates: usize) -> Result<Rec, String> {
    let get = |k: usize, what: &str| ins.get(k).ok_or_else(|| format!("missing input {what}"));
    let x = get(0, "x")?;
    let [t, n, i] = x.value.shape()[..] else {
        return Err(format!("expected x [T, N, I], found {:?}", x.value.shape()));
    };
    let (h, d) = (r.hidden, r.direction.count());
    let gh = gates * h;
    let want = |k: usize, what: &str, shape: &[usize]| -> Result<Vec<f64>, String> {
        let a = get(k, what)?;
        if a.value.shape() != shape {
            return Err(format!("expected {what} of shape {shape:?}, found {:?}", a.value.shape()));
        }
        Ok(f64s(a))
    };
    let w = want(1, "w", &[d, gh, i])?;
    let rr = want(2, "r", &[d, gh, h])?;
    let b = want(3, "b", &[d, 2 * gh])?;
    let mut states = vec![];
    for (k, what) in [(4, "h0"), (5, "c0")] {
        states.push(if ins.len() > k { Some(want(k, what, &[d, n, h])?) } else { None });
    }
    let peep = if ins.len() > 6 { want(6, "p", &[d, 3 * h])? } else { vec![0.0; d * 3 * h] };
    Ok(Rec { t, n, i, h, d, g: gates, x: f64s(x), w, r: rr, b, states, peep })
}

impl Rec {
    /// `x[t, n] · W[dir, row]ᵀ` (row indexes the `gates·H` rows).
    fn xw(&self, dir: usize, t: usize, n: usize, row: usize) -> f64 {
        let xo = (t * self.n + n) * self.i;
        let wo = (dir * self.g * self.h + row) * self.i;
        (0..self.i).map(|k| self.x[xo + k] * self.w[wo + k]).sum()
    }

    /// `v · R[dir, row]ᵀ` for a hidden vector `v` of length H.
    fn hr(&self, dir: usize, v: &[f64], row: usize) -> f64 {
        let ro = (dir * self.g * self.h + row) * self.h;
        (0..self.h).map(|k| v[k] * self.r[ro + k]).sum()
    }

    /// Wb[row] and Rb[row] of direction `dir`.
    fn bias(&self, dir: usize, row: usize) -> (f64, f64) {
        let bo = dir * 2 * self.g * self.h;
        (self.b[bo + row], self.b[bo + self.g * self.h + row])
    }

    /// The initial state (input `k` − 4) of direction `dir`, batch row `n`.
    fn init(&self, which: usize, dir: usize, n: usize) -> Vec<f64> {
        match self.states.get(which).and_then(Option::as_ref) {
            Some(s) => s[(dir * self.n + n) * self.h..][..self.h].to_vec(),
            None => vec![0.0; self.h],
        }
    }

    /// Time steps in the order direction `dir` visits them.
    fn steps(&self, r: &Rnn, dir: usize) -> Vec<usize> {
        let reverse = r.direction == smelt_ir::ops::Direction::Reverse || dir == 1;
        if reverse { (0..self.t).rev().collect() } else { (0..self.t).collect() }
    }

    /// The pre-activation `xWᵀ + hRᵀ + Wb + Rb` of gate `gate` at hidden unit `u`.
    fn pre(&self, dir: usize, t: usize, n: usize, h: &[f64], gate: usize, u: usize) -> f64 {
        let row = gate * self.h + u;
        let (wb, rb) = self.bias(dir, row);
        self.xw(dir, t, n, row) + self.hr(dir, h, row) + wb + rb
    }
}

fn lstm(r: &Rnn, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let p = read(r, ins, 4)?;
    let (hs, ds, ns) = (p.h, p.d, p.n);
    let mut y = vec![0.0f32; p.t * ds * ns * hs];
    let mut hn = vec![0.0f32; ds * ns * hs];
    let mut cn = vec![0.0f32; ds * ns * hs];
    for dir in 0..ds {
        for n in 0..ns {
            let mut h = p.init(0, dir, n);
            let mut c = p.init(1, dir, n);
            for t in p.steps(r, dir) {
                let mut h2 = vec![0.0; hs];
                let mut c2 = vec![0.0; hs];
                let pp = &p.peep[dir * 3 * hs..][..3 * hs];
                for u in 0..hs {
                    // gate order i, o, f, c; peepholes i and f see the old cell, o the new.
                    let i = sigmoid(p.pre(dir, t, n, &h, 0, u) + pp[u] * c[u]);
                    let f = sigmoid(p.pre(dir, t, n, &h, 2, u) + pp[2 * hs + u] * c[u]);
                    let ct = p.pre(dir, t, n, &h, 3, u).tanh();
                    c2[u] = f * c[u] + i * ct;
                    let o = sigmoid(p.pre(dir, t, n, &h, 1, u) + pp[hs + u] * c2[u]);
                    h2[u] = o * c2[u].tanh();
                }
                h = h2;
                c = c2;
                for u in 0..hs {
                    y[((t * ds + dir) * ns + n) * hs + u] = h[u] as f32;
                }
            }
            for u in 0..hs {
                hn[(dir * ns + n) * hs + u] = h[u] as f32;
                cn[(dir * ns + n) * hs + u] = c[u] as f32;
            }
        }
    }
    let [ty, th, tc] = out else { return Err(format!("lstm has 3 outputs, found {} types", out.len())) };
    Ok(vec![util::from_f32(ty, y), util::from_f32(th, hn), util::from_f32(tc, cn)])
}

fn gru(r: &Rnn, ins: &[Arg], out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    let p = read(r, ins, 3)?;
    let (hs, ds, ns) = (p.h, p.d, p.n);
    let mut y = vec![0.0f32; p.t * ds * ns * hs];
    let mut hn = vec![0.0f32; ds * ns * hs];
    for dir in 0..ds {
        for n in 0..ns {
            let mut h = p.init(0, dir, n);
            for t in p.steps(r, dir) {
                // gate order z, r, h
                let z: Vec<f64> = (0..hs).map(|u| sigmoid(p.pre(dir, t, n, &h, 0, u))).collect();
                let rg: Vec<f64> = (0..hs).map(|u| sigmoid(p.pre(dir, t, n, &h, 1, u))).collect();
                let rh: Vec<f64> = (0..hs).map(|u| rg[u] * h[u]).collect();
                let mut h2 = vec![0.0; hs];
                for u in 0..hs {
                    let row = 2 * hs + u;
                    let (wb, rb) = p.bias(dir, row);
                    let xw = p.xw(dir, t, n, row);
                    let ht = if r.linear_before_reset {
                        (xw + rg[u] * (p.hr(dir, &h, row) + rb) + wb).tanh()
                    } else {
                        (xw + p.hr(dir, &rh, row) + rb + wb).tanh()
                    };
                    h2[u] = (1.0 - z[u]) * ht + z[u] * h[u];
                }
                h = h2;
                for u in 0..hs {
                    y[((t * ds + dir) * ns + n) * hs + u] = h[u] as f32;
                }
            }
            for u in 0..hs {
                hn[(dir * ns + n) * hs + u] = h[u] as f32;
            }
        }
    }
    let [ty, th] = out else { return Err(format!("gru has 2 outputs, found {} types", out.len())) };
    Ok(vec![util::from_f32(ty, y), util::from_f32(th, hn)])
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

    fn close(a: &Tensor, want: &[f64]) {
        let got = a.to_f32();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    /// H = 1, I = 1, one step, x = 1, h0 = c0 = 0 (default), R unused since h0 = 0.
    /// W (gate order i, o, f, c) = [1, 2, 3, 0.5]; Wb = [0, 0, 0, 0.5]; Rb = 0.
    /// i = σ(1), o = σ(2), f = σ(3) (times c = 0), c̃ = tanh(1);
    /// c = σ(1)·tanh(1) = 0.7310586·0.7615942 = 0.5567699;
    /// h = σ(2)·tanh(0.5567699) = 0.8807971·0.5055770 = 0.4453107.
    #[test]
    fn lstm_one_step() {
        let src = "graph g(x: f32[1, 1, 1], w: f32[1, 4, 1], r: f32[1, 4, 1], b: f32[1, 8]) -> (y, h, c) {
            y, h, c = lstm(x, w, r, b) {hidden = 1}
        }";
        let o = run(
            src,
            &[
                ("x", t(&[1, 1, 1], &[1.0])),
                ("w", t(&[1, 4, 1], &[1.0, 2.0, 3.0, 0.5])),
                ("r", t(&[1, 4, 1], &[9.0, 9.0, 9.0, 9.0])),
                ("b", t(&[1, 8], &[0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0])),
            ],
        );
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let c = s(1.0) * 1f64.tanh();
        let h = s(2.0) * c.tanh();
        assert!((c - 0.5567699).abs() < 1e-6 && (h - 0.4453107).abs() < 1e-6);
        close(&o["c"], &[c]);
        close(&o["h"], &[h]);
        close(&o["y"], &[h]);
    }

    /// GRU, H = 1, I = 1, one step, x = 1, h0 = 1, W = [0, 0, 1] (z, r, h), R = [0, 0, 1],
    /// biases 0. z = σ(0) = 0.5, r = σ(0) = 0.5.
    /// Default: h̃ = tanh(1 + (0.5·1)·1) = tanh(1.5) = 0.9051483; h = 0.5·h̃ + 0.5·1 = 0.9525741.
    /// linear_before_reset: h̃ = tanh(1 + 0.5·(1·1 + Rbh)); with Rbh = 1 (Rb index 5):
    /// tanh(2) = 0.9640276, h = 0.9820138; the default form with Rbh = 1 gives
    /// tanh(1 + 0.5 + 1) = tanh(2.5) = 0.9866143, h = 0.9933071.
    #[test]
    fn gru_one_step_both_forms() {
        for (lbr, rbh, want) in [(false, 0.0, 0.9525741), (false, 1.0, 0.9933071), (true, 1.0, 0.9820138)] {
            let attr = if lbr { ", linear_before_reset = true" } else { "" };
            let src = format!(
                "graph g(x: f32[1, 1, 1], w: f32[1, 3, 1], r: f32[1, 3, 1], b: f32[1, 6], h0: f32[1, 1, 1]) -> (y, h) {{
                    y, h = gru(x, w, r, b, h0) {{hidden = 1{attr}}}
                }}"
            );
            let o = run(
                &src,
                &[
                    ("x", t(&[1, 1, 1], &[1.0])),
                    ("w", t(&[1, 3, 1], &[0.0, 0.0, 1.0])),
                    ("r", t(&[1, 3, 1], &[0.0, 0.0, 1.0])),
                    ("b", t(&[1, 6], &[0.0, 0.0, 0.0, 0.0, 0.0, rbh])),
                    ("h0", t(&[1, 1, 1], &[1.0])),
                ],
            );
            close(&o["h"], &[want]);
        }
    }

    /// Bidirectional GRU, T = 2, H = 1, all weights 0 except W_h = 1, h0 = 0:
    /// z = r = 0.5 each step; h' = 0.5·tanh(x + 0) + 0.5·h... with R = 0, h̃ = tanh(x).
    /// Forward over x = [1, 2]: h1 = 0.5·tanh(1) = 0.3807971, h2 = 0.5·tanh(2) + 0.5·h1 = 0.6724124.
    /// Reverse: visits t = 1 then 0: g1 = 0.5·tanh(2) = 0.4820138, g0 = 0.5·tanh(1) + 0.5·g1 = 0.6218040.
    /// y[t, d]: [[h1, g0], [h2, g1]]; h = [h2, g0].
    #[test]
    fn gru_bidirectional_order() {
        let src = "graph g(x: f32[2, 1, 1], w: f32[2, 3, 1], r: f32[2, 3, 1], b: f32[2, 6]) -> (y, h) {
            y, h = gru(x, w, r, b) {hidden = 1, direction = bidirectional}
        }";
        let o = run(
            src,
            &[
                ("x", t(&[2, 1, 1], &[1.0, 2.0])),
                ("w", t(&[2, 3, 1], &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0])),
                ("r", t(&[2, 3, 1], &[0.0; 6])),
                ("b", t(&[2, 6], &[0.0; 12])),
            ],
        );
        let (h1, g1) = (0.5 * 1f64.tanh(), 0.5 * 2f64.tanh());
        let (h2, g0) = (0.5 * 2f64.tanh() + 0.5 * h1, 0.5 * 1f64.tanh() + 0.5 * g1);
        close(&o["y"], &[h1, g0, h2, g1]);
        close(&o["h"], &[h2, g0]);
    }
}
