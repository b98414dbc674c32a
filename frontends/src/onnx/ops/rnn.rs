//! ONNX recurrent ops. LSTM and GRU map onto smelt's `lstm`/`gru` (default
//! activations, no clip, full sequence lengths; LSTM peepholes P as `lstm`'s
//! seventh input; `layout = 1` by
//! transposes; a missing bias becomes zeros). RNN, which smelt lacks, is unrolled
//! over its (fixed) time steps: `h_t = f(x_t·Wᵀ + h_{t−1}·Rᵀ + Wb + Rb)`.
//! com.microsoft DynamicQuantizeLSTM is an LSTM over its dequantized weights.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::{Direction, Rnn, Slice};
use smelt_ir::{BinaryOp, Dim, Op, Tensor, UnaryOp, Value};

type Out = Result<Vec<Value>>;

fn direction(n: &NodeRef) -> Result<Direction> {
    Ok(match n.string("direction")?.as_deref().unwrap_or("forward") {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        d => return Err(n.err(format!("unknown direction `{d}`"))),
    })
}

/// Checks the sequence lengths (input 4) cover the whole sequence.
fn full_sequences(cx: &Ctx, n: &NodeRef, t: &Dim) -> Result<()> {
    if !n.has_input(4) {
        return Ok(());
    }
    let lens = cx.need_ints(n, 4, "sequence lengths")?;
    match t.fixed() {
        Some(t) if lens.iter().all(|&l| l == t as i64) => Ok(()),
        _ => Err(n.unsupported("sequence lengths shorter than the input")),
    }
}

/// The most time steps [`rnn`] unrolls (each step is several nodes).
const MAX_UNROLL: usize = 1 << 16;

/// Fails unless `x` is 3-d (`[T, N, I]`, or `[N, T, I]` with `layout = 1`).
fn three_d(cx: &Ctx, n: &NodeRef, x: Value) -> Result<()> {
    match cx.rank(x) {
        3 => Ok(()),
        _ => Err(n.err(format!("input X {} is not 3-d", cx.ty(x)))),
    }
}

/// `[T, N, ·]` from `[N, T, ·]` when `layout = 1`.
fn to_seq_major(cx: &mut Ctx, n: &NodeRef, v: Option<Value>) -> Result<Option<Value>> {
    match v {
        Some(v) if n.int("layout", 0)? == 1 => Ok(Some(cx.op(Op::Transpose { perm: Some(vec![1, 0, 2]) }, &[v])?)),
        v => Ok(v),
    }
}

/// Outputs back to `layout = 1`: Y `[T, D, N, H]` → `[N, T, D, H]`, states
/// `[D, N, H]` → `[N, D, H]`.
fn from_seq_major(cx: &mut Ctx, n: &NodeRef, outs: Vec<Value>) -> Out {
    if n.int("layout", 0)? != 1 {
        return Ok(outs);
    }
    let mut v = Vec::new();
    for (i, o) in outs.into_iter().enumerate() {
        let perm = if i == 0 { vec![2, 0, 1, 3] } else { vec![1, 0, 2] };
        v.push(cx.op(Op::Transpose { perm: Some(perm) }, &[o])?);
    }
    Ok(v)
}

pub fn lstm_gru(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (w, r) = (cx.input(n, 1)?, cx.input(n, 2)?);
    lstm_gru_with(cx, n, w, r)
}

/// com.microsoft's DynamicQuantizeLSTM (ONNX Runtime's `quantize_dynamic` of an
/// LSTM): W `[D, I, 4H]` and R `[D, H, 4H]` in int8 or uint8 with scales and zero
/// points per direction (`[D]`) or per gate row (`[D, 4H]`), inputs 8–11; the
/// rest as LSTM. Imported as an LSTM over the dequantized, transposed weights
/// (computed at import): ONNX Runtime also quantizes the activations at each
/// step, so its outputs differ from these by that rounding.
pub fn dynamic_quantize_lstm(cx: &mut Ctx, n: &NodeRef) -> Out {
    let mut wr = Vec::new();
    for (i, what) in [(1, "W"), (2, "R")] {
        let q = cx.need_tensor(n, i, &format!("the quantized weights {what}"))?;
        let scale = cx.need_floats(n, 6 + 2 * i, &format!("{what}'s scale"))?;
        let zp = cx.need_ints(n, 7 + 2 * i, &format!("{what}'s zero point"))?;
        let (d, k, g) = match q.shape() {
            &[d, k, g] if d > 0 && g > 0 => (d, k, g),
            s => return Err(n.err(format!("{what} is {s:?}, expected [directions, inputs, 4·hidden]"))),
        };
        let per = |v: usize, name: &str| -> Result<()> {
            if v == d || v == d * g {
                Ok(())
            } else {
                Err(n.err(format!("{what}'s {name} has {v} values: expected {d} (per direction) or {} (per row)", d * g)))
            }
        };
        per(scale.len(), "scale")?;
        per(zp.len(), "zero point")?;
        let at = |v: &[f32], dd: usize, gg: usize| if v.len() == d { v[dd] } else { v[dd * g + gg] };
        let zps: Vec<f32> = zp.iter().map(|&z| z as f32).collect();
        let vals: Vec<f32> = match q.data() {
            smelt_ir::Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            smelt_ir::Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            _ => return Err(n.err(format!("{what} is {}, expected int8 or uint8", q.dtype()))),
        };
        // [D, K, G] quantized → [D, G, K] float, as LSTM's W and R.
        let mut out = vec![0f32; d * g * k];
        for dd in 0..d {
            for kk in 0..k {
                for gg in 0..g {
                    out[(dd * g + gg) * k + kk] = (vals[(dd * k + kk) * g + gg] - at(&zps, dd, gg)) * at(&scale, dd, gg);
                }
            }
        }
        let t = Tensor::new(vec![d, g, k], smelt_ir::Data::F32(out)).map_err(|e| n.err(e.to_string()))?;
        // A param, as an initializer would be (the e-graph hashes inline
        // constants by value).
        let name = format!("{}.dequantized", n.input_name(i).unwrap_or_default());
        cx.add_initializer(&name, t);
        wr.push(cx.value_of(&name)?);
    }
    lstm_gru_with(cx, n, wr[0], wr[1])
}

fn lstm_gru_with(cx: &mut Ctx, n: &NodeRef, w: Value, r: Value) -> Out {
    let lstm = n.op_type() != "GRU";
    let x = cx.input(n, 0)?;
    let dir = direction(n)?;
    let d = dir.count();
    let defaults: &[&str] = if lstm { &["Sigmoid", "Tanh", "Tanh"] } else { &["Sigmoid", "Tanh"] };
    if let Some(acts) = n.strings("activations")? {
        let want: Vec<&str> = defaults.iter().copied().cycle().take(defaults.len() * d).collect();
        if acts.len() != want.len() || acts.iter().zip(&want).any(|(a, b)| !a.eq_ignore_ascii_case(b)) {
            return Err(n.unsupported(format!("activations {acts:?} (smelt's {} uses the defaults)", n.op_type())));
        }
    }
    if n.has_attr("clip") {
        return Err(n.unsupported("clip"));
    }
    if n.int("input_forget", 0)? != 0 {
        return Err(n.unsupported("input_forget"));
    }
    three_d(cx, n, x)?;
    let rd = cx.fixed_dims(n, r, "the recurrence weights")?;
    let h = match n.int_opt("hidden_size")? {
        Some(h) if (1..=1 << 24).contains(&h) => h as usize,
        Some(h) => return Err(n.err(format!("hidden_size {h} is out of range"))),
        None => match rd.last() {
            Some(&h) if h > 0 => h,
            _ => return Err(n.err(format!("recurrence weights {} give no hidden size", cx.ty(r)))),
        },
    };
    let x = to_seq_major(cx, n, Some(x))?.expect("given");
    full_sequences(cx, n, &cx.dims(x)[0])?;
    let gates = if lstm { 8 } else { 6 };
    let b = match cx.opt_input(n, 3)? {
        Some(b) => b,
        None => {
            let dt = cx.ty(x).dtype;
            let zero = Tensor::new(vec![], smelt_ir::Data::from_f32(dt, &[0.0])).expect("scalar");
            cx.filled(&zero, &[Dim::Fixed(d as u64), Dim::Fixed((gates * h) as u64)])?
        }
    };
    let h0 = cx.opt_input(n, 5)?;
    let h0 = to_seq_major(cx, n, h0)?;
    let c0 = if lstm { cx.opt_input(n, 6)? } else { None };
    let c0 = to_seq_major(cx, n, c0)?;
    let mut ins = vec![x, w, r, b];
    let rnn = Rnn { hidden: h, direction: dir, linear_before_reset: !lstm && n.bool("linear_before_reset", false)? };
    let zeros = |cx: &mut Ctx| -> Result<Value> {
        let dt = cx.ty(x).dtype;
        let zero = Tensor::new(vec![], smelt_ir::Data::from_f32(dt, &[0.0])).expect("scalar");
        let nb = cx.dims(x)[1].clone();
        cx.filled(&zero, &[Dim::Fixed(d as u64), nb, Dim::Fixed(h as u64)])
    };
    let peep = if lstm { cx.opt_input(n, 7)? } else { None };
    // Inputs are positional: peepholes need both initial states before them.
    let (h0, c0) = match (h0, c0, peep) {
        (None, None, None) => (None, None),
        (Some(h0), None, None) => (Some(h0), None),
        (h0, c0, _) => {
            let h0 = match h0 {
                Some(v) => v,
                None => zeros(cx)?,
            };
            let c0 = match c0 {
                Some(v) => v,
                None => zeros(cx)?,
            };
            (Some(h0), Some(c0))
        }
    };
    ins.extend(h0.into_iter().chain(c0).chain(peep));
    let outs = cx.op_multi(if lstm { Op::Lstm(rnn) } else { Op::Gru(rnn) }, &ins)?;
    from_seq_major(cx, n, outs)
}

/// The activation of an unrolled RNN.
fn activation(name: &str, alpha: Option<f32>, beta: Option<f32>) -> Option<UnaryOp> {
    Some(match name.to_ascii_lowercase().as_str() {
        "tanh" => UnaryOp::Tanh,
        "relu" => UnaryOp::Relu,
        "sigmoid" => UnaryOp::Sigmoid,
        "softplus" => UnaryOp::Softplus,
        "leakyrelu" => UnaryOp::LeakyRelu { alpha: alpha.unwrap_or(0.01) },
        "elu" => UnaryOp::Elu { alpha: alpha.unwrap_or(1.0) },
        "hardsigmoid" => UnaryOp::HardSigmoid { alpha: alpha.unwrap_or(0.2), beta: beta.unwrap_or(0.5) },
        _ => return None,
    })
}

/// `v[k]` along axis 0, without that axis.
fn index0(cx: &mut Ctx, v: Value, k: usize) -> Result<Value> {
    let s = Slice { starts: vec![k as i64], ends: vec![k as i64 + 1], axes: Some(vec![0]), steps: None };
    let y = cx.op(Op::Slice(s), &[v])?;
    let dims = cx.dims(y)[1..].to_vec();
    cx.reshape(y, &dims)
}

pub fn rnn(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let (w, r) = (cx.input(n, 1)?, cx.input(n, 2)?);
    let dir = direction(n)?;
    let dn = dir.count();
    three_d(cx, n, x)?;
    let x = to_seq_major(cx, n, Some(x))?.expect("given");
    let xd = cx.dims(x);
    full_sequences(cx, n, &xd[0])?;
    let t = xd[0].fixed().ok_or_else(|| n.unsupported("RNN over a symbolic number of time steps"))? as usize;
    if t == 0 {
        return Err(n.err("an RNN over no time steps"));
    }
    if t > MAX_UNROLL {
        return Err(n.unsupported(format!("RNN over {t} time steps (it is unrolled, to at most {MAX_UNROLL})")));
    }
    let rd = cx.fixed_dims(n, r, "the recurrence weights")?;
    let h = *rd.last().ok_or_else(|| n.err("bad R"))?;
    let names = n.strings("activations")?.unwrap_or_else(|| vec!["Tanh".into(); dn]);
    let alphas = n.floats("activation_alpha")?.unwrap_or_default();
    let betas = n.floats("activation_beta")?.unwrap_or_default();
    let clip = n.float_opt("clip")?;
    let b = cx.opt_input(n, 3)?;
    let h0 = cx.opt_input(n, 5)?;
    let h0 = to_seq_major(cx, n, h0)?;
    let (mut ys, mut hs) = (Vec::new(), Vec::new());
    for k in 0..dn {
        let name = names.get(k).ok_or_else(|| n.err("too few activations"))?;
        let f = activation(name, alphas.get(k).copied(), betas.get(k).copied())
            .ok_or_else(|| n.unsupported(format!("activation {name}")))?;
        let wk = index0(cx, w, k)?;
        let wt = cx.op(Op::Transpose { perm: Some(vec![1, 0]) }, &[wk])?;
        let rk = index0(cx, r, k)?;
        let rt = cx.op(Op::Transpose { perm: Some(vec![1, 0]) }, &[rk])?;
        // x·Wᵀ for all steps at once, plus both biases.
        let mut xw = cx.op(Op::MatMul, &[x, wt])?;
        if let Some(b) = b {
            let bk = index0(cx, b, k)?;
            let parts = cx.op_multi(Op::Split { axis: 0, sizes: vec![h, h] }, &[bk])?;
            let bsum = cx.binary(BinaryOp::Add, parts[0], parts[1])?;
            xw = cx.binary(BinaryOp::Add, xw, bsum)?;
        }
        // Without an initial state the first step has no recurrent term.
        let mut state = match h0 {
            Some(h0) => Some(index0(cx, h0, k)?),
            None => None,
        };
        let reverse = dir == Direction::Reverse || (dir == Direction::Bidirectional && k == 1);
        let mut steps: Vec<Option<Value>> = vec![None; t];
        for i in 0..t {
            let s = if reverse { t - 1 - i } else { i };
            let xs = index0(cx, xw, s)?;
            let mut a = match state {
                Some(st) => {
                    let hr = cx.op(Op::MatMul, &[st, rt])?;
                    cx.binary(BinaryOp::Add, xs, hr)?
                }
                None => xs,
            };
            if let Some(c) = clip {
                a = cx.unary(UnaryOp::Clip { min: -c, max: c }, a)?;
            }
            let st = cx.unary(f, a)?;
            state = Some(st);
            let mut d4 = vec![Dim::Fixed(1), Dim::Fixed(1)];
            d4.extend(cx.dims(st));
            steps[s] = Some(cx.reshape(st, &d4)?);
        }
        let steps: Vec<Value> = steps.into_iter().flatten().collect();
        ys.push(if steps.len() == 1 { steps[0] } else { cx.op(Op::Concat { axis: 0 }, &steps)? });
        let last = state.ok_or_else(|| n.err("an RNN over no time steps"))?;
        let mut d3 = vec![Dim::Fixed(1)];
        d3.extend(cx.dims(last));
        hs.push(cx.reshape(last, &d3)?);
    }
    let y = if ys.len() == 1 { ys[0] } else { cx.op(Op::Concat { axis: 1 }, &ys)? };
    let yh = if hs.len() == 1 { hs[0] } else { cx.op(Op::Concat { axis: 0 }, &hs)? };
    from_seq_major(cx, n, vec![y, yh])
}

/// The op types this family imports, with their importers (read by
/// `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[
    ("LSTM", lstm_gru),
    ("GRU", lstm_gru),
    ("RNN", rnn),
];
