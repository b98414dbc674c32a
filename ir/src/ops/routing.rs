//! Routing and mixture of experts: `topk`, `moe_dispatch`, `moe_combine` and the
//! whole-layer `moe` with its strategies and their cost ([`MoeShape::cost`]);
//! `nms`, the detectors' selection of boxes.

use super::elementwise::UnaryOp;
use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue, DimSpec};
use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopK {
    pub k: usize,
    pub axis: i64,
    pub largest: bool,
    pub sorted: bool,
}

/// Non-maximum suppression (as ONNX NonMaxSuppression): per batch and class,
/// the boxes scoring above `score_threshold` (when given), best first (ties:
/// the lower index), each kept unless its IoU with a kept one exceeds
/// `iou_threshold`, at most `max_per_class`. Output `i64[count, 3]` (batch,
/// class, box), `count` a symbol the data binds (see [`Op::NonZero`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nms {
    pub max_per_class: usize,
    pub iou_threshold: f32,
    pub score_threshold: Option<f32>,
    /// Boxes as `[x_center, y_center, width, height]` (else `[y1, x1, y2, x2]`,
    /// any two opposite corners).
    pub center_point_box: bool,
    pub count: DimSpec,
}

/// The distinct elements of `x` (as ONNX Unique): flattened, or the distinct
/// slices along `axis`; sorted ascending (NaN last) or in order of first
/// appearance. Four outputs: the values (`count` of them along the axis), the
/// index of each one's first appearance, each input position's index into the
/// values, and each one's count; `count` is a symbol the data binds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unique {
    pub axis: Option<i64>,
    pub sorted: bool,
    pub count: DimSpec,
}

/// The whole MoE layer `y = moe(x, logits, w1, w2[, w3])`: each token's top `k`
/// logits choose its experts, weighted by the softmax over all `E` logits
/// (renormalized over the chosen `k` when `normalize`); expert `e` computes
/// `act(x·w1[e])·w2[e]`, or `(act(x·w1[e]) ⊙ (x·w3[e]))·w2[e]` when gated
/// (SwiGLU with `silu`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moe {
    pub k: usize,
    pub activation: UnaryOp,
    /// The routing weights renormalized over the chosen experts (default), or
    /// the softmax over all experts as it is.
    pub normalize: bool,
    /// 0: no capacity limit.
    pub capacity_factor: f32,
    /// How the experts are computed; `Auto` leaves the choice to the cost model
    /// for each token count.
    pub strategy: MoeStrategy,
}

/// How a `moe` layer computes its experts. All give the same result (up to f32
/// rounding); they differ in the work done and the expert weight bytes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MoeStrategy {
    /// Chosen by [`MoeShape::choose`] when the token count is known.
    Auto,
    /// Every expert on every token (a grouped GEMM over all `T·E` pairs), the
    /// unchosen pairs weighted 0: the most FLOPs, no data-dependent shapes.
    Dense,
    /// Tokens sorted by expert into row panels, one grouped GEMM over them (each
    /// panel multiplies its own expert's weights), scattered back with weights:
    /// each touched expert's weights read once.
    Gather,
    /// Per chosen (token, expert) pair, a matrix-vector product: no packing and
    /// no padding, but each pair reads its expert's weights again.
    Loop,
}

impl MoeStrategy {
    pub const ALL: [MoeStrategy; 3] = [MoeStrategy::Dense, MoeStrategy::Gather, MoeStrategy::Loop];

    pub fn name(self) -> &'static str {
        match self {
            MoeStrategy::Auto => "auto",
            MoeStrategy::Dense => "dense",
            MoeStrategy::Gather => "gather",
            MoeStrategy::Loop => "loop",
        }
    }

    pub fn from_name(s: &str) -> Option<MoeStrategy> {
        [MoeStrategy::Auto, MoeStrategy::Dense, MoeStrategy::Gather, MoeStrategy::Loop].into_iter().find(|m| m.name() == s)
    }
}

/// A machine as the MoE strategy cost sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeMachine {
    /// f32 FLOP/s of the register-tiled GEMM (dense and gather) on long panels.
    pub gemm_flops: f64,
    /// f32 FLOP/s of the loop strategy's row-by-row products on many rows.
    pub loop_flops: f64,
    /// Bytes/s of expert weights streamed in.
    pub bandwidth: f64,
    /// Rows of a GEMM panel: each expert's rows are padded to a multiple.
    pub panel_rows: usize,
}

/// The sizes that decide a `moe` layer's cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeShape {
    pub tokens: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub experts: usize,
    pub k: usize,
    pub gated: bool,
}

impl MoeShape {
    /// Weight matrices per expert (w1, w2 and w3 when gated).
    fn mats(&self) -> f64 {
        if self.gated { 3.0 } else { 2.0 }
    }

    /// Bytes of one expert's f32 weights.
    pub fn expert_bytes(&self) -> f64 {
        self.mats() * (self.d_model * self.d_ff * 4) as f64
    }

    /// The expected number of distinct experts `tokens` tokens touch when each
    /// picks `k` of `E` uniformly: `E·(1 − (1 − k/E)^T)`.
    pub fn touched(&self) -> f64 {
        let e = self.experts as f64;
        e * (1.0 - (1.0 - self.k as f64 / e).powi(self.tokens.min(1 << 20) as i32))
    }

    /// Expert weight bytes a strategy reads (the expected count for `Gather` and
    /// `Loop`: each touched expert once).
    pub fn weight_bytes(&self, s: MoeStrategy) -> f64 {
        match s {
            MoeStrategy::Dense => self.experts as f64 * self.expert_bytes(),
            MoeStrategy::Gather | MoeStrategy::Loop | MoeStrategy::Auto => self.touched() * self.expert_bytes(),
        }
    }

    /// Estimated seconds of the experts' work under `s` on `m`: its FLOPs at the
    /// strategy's rate, which falls with few rows per expert (`m/(m + m₀)`: a
    /// weight loaded is used by `m` rows), plus the time to stream the weights it
    /// reads. Dense and gather pad each expert's rows to whole panels (half a
    /// panel more on average); the loop's rows are the pairs themselves. `Auto`
    /// costs what [`MoeShape::choose`] picks.
    pub fn cost(&self, s: MoeStrategy, m: &MoeMachine) -> f64 {
        let per_row = 2.0 * self.mats() * (self.d_model * self.d_ff) as f64;
        let pairs = (self.tokens * self.k) as f64;
        let panel = m.panel_rows as f64;
        let (rows, experts, rate, m0) = match s {
            MoeStrategy::Dense => {
                let per = (self.tokens as f64 / panel).ceil() * panel;
                (per * self.experts as f64, self.experts as f64, m.gemm_flops, GEMM_M0)
            }
            MoeStrategy::Auto => return self.cost(self.choose(m), m),
            MoeStrategy::Gather => {
                let touched = self.touched();
                (touched * panel * (pairs / touched / panel + 0.5).max(1.0), touched, m.gemm_flops, GEMM_M0)
            }
            MoeStrategy::Loop => (pairs, self.touched(), m.loop_flops, LOOP_M0),
        };
        let per_expert = rows / experts;
        rows * per_row / (rate * per_expert / (per_expert + m0)) + self.weight_bytes(s) / m.bandwidth
    }

    /// The cheapest strategy on `m` (ties to the earlier of dense, gather, loop).
    pub fn choose(&self, m: &MoeMachine) -> MoeStrategy {
        let mut best = (MoeStrategy::Gather, f64::INFINITY);
        for s in MoeStrategy::ALL {
            let c = self.cost(s, m);
            if c < best.1 {
                best = (s, c);
            }
        }
        best.0
    }
}

/// Rows per expert at which the GEMM reaches half its rate (its packed weight
/// panels are reused by few rows below that); measured, docs/performance.md
/// (*Mixture of experts*).
const GEMM_M0: f64 = 20.0;
/// The same for the loop strategy, whose weight rows each feed every row of the
/// expert from L1.
const LOOP_M0: f64 = 2.0;

impl Moe {
    /// Slots per expert for `tokens` tokens and `experts` experts (`None`: unlimited).
    pub fn capacity(&self, tokens: usize, experts: usize) -> Option<usize> {
        (self.capacity_factor > 0.0)
            .then(|| ((tokens * self.k) as f64 * self.capacity_factor as f64 / experts as f64).ceil() as usize)
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    Some(match name {
        "topk" => Op::TopK(TopK {
            k: a.usize("k", None),
            axis: a.int("axis", Some(-1)),
            largest: a.bool("largest", true),
            sorted: a.bool("sorted", true),
        }),
        "moe_dispatch" => Op::MoeDispatch { experts: a.usize("experts", None), capacity: a.usize("capacity", None) },
        "moe_combine" => Op::MoeCombine { capacity: a.usize("capacity", None) },
        "unique" => Op::Unique(Unique { axis: a.opt_int("axis"), sorted: a.bool("sorted", true), count: a.dim_spec("count") }),
        "nms" => Op::Nms(Nms {
            max_per_class: a.usize("max_per_class", Some(0)),
            iou_threshold: a.float("iou_threshold", Some(0.0)),
            score_threshold: a.opt_float("score_threshold"),
            center_point_box: a.bool("center_point_box", false),
            count: a.dim_spec("count"),
        }),
        "moe" => {
            let k = a.usize("k", None);
            let normalize = a.bool("normalize", true);
            let strategy = a
                .choice(
                    "strategy",
                    &[
                        ("auto", MoeStrategy::Auto),
                        ("dense", MoeStrategy::Dense),
                        ("gather", MoeStrategy::Gather),
                        ("loop", MoeStrategy::Loop),
                    ],
                    Some(MoeStrategy::Auto),
                )
                .unwrap_or(MoeStrategy::Auto);
            let act_name = a.choice(
                "activation",
                &[("relu", "relu"), ("gelu", "gelu"), ("gelu_tanh", "gelu_tanh"), ("silu", "silu"), ("identity", "identity")],
                Some("relu"),
            ).unwrap_or("relu");
            let activation = UnaryOp::from_name(act_name, &[]).unwrap_or(UnaryOp::Relu);
            let capacity_factor = a.float("capacity_factor", Some(0.0));
            if capacity_factor < 0.0 || !capacity_factor.is_finite() {
                a.error(format!("moe capacity_factor must be ≥ 0, found {capacity_factor}"));
            }
            Op::Moe(Moe { k, activation, normalize, capacity_factor, strategy })
        }
        _ => return None,
    })
}

pub(super) fn attrs(op: &Op) -> Vec<(&'static str, AttrValue)> {
    let mut v = vec![];
    match op {
        Op::TopK(t) => {
            v.push(("k", AttrValue::Int(t.k as i64)));
            if t.axis != -1 {
                v.push(("axis", AttrValue::Int(t.axis)));
            }
            if !t.largest {
                v.push(("largest", AttrValue::bool(false)));
            }
            if !t.sorted {
                v.push(("sorted", AttrValue::bool(false)));
            }
        }
        Op::MoeDispatch { experts, capacity } => {
            v.push(("experts", AttrValue::Int(*experts as i64)));
            v.push(("capacity", AttrValue::Int(*capacity as i64)));
        }
        Op::MoeCombine { capacity } => v.push(("capacity", AttrValue::Int(*capacity as i64))),
        Op::Unique(u) => {
            if let Some(a) = u.axis {
                v.push(("axis", AttrValue::Int(a)));
            }
            if !u.sorted {
                v.push(("sorted", AttrValue::bool(false)));
            }
            v.push(("count", u.count.one_attr()));
        }
        Op::Nms(n) => {
            if n.max_per_class != 0 {
                v.push(("max_per_class", AttrValue::Int(n.max_per_class as i64)));
            }
            if n.iou_threshold != 0.0 {
                v.push(("iou_threshold", AttrValue::Float(n.iou_threshold)));
            }
            if let Some(t) = n.score_threshold {
                v.push(("score_threshold", AttrValue::Float(t)));
            }
            if n.center_point_box {
                v.push(("center_point_box", AttrValue::bool(true)));
            }
            v.push(("count", n.count.one_attr()));
        }
        Op::Moe(m) => {
            v.push(("k", AttrValue::Int(m.k as i64)));
            if m.activation != UnaryOp::Relu {
                v.push(("activation", AttrValue::ident(m.activation.name())));
            }
            if !m.normalize {
                v.push(("normalize", AttrValue::bool(false)));
            }
            if m.capacity_factor != 0.0 {
                v.push(("capacity_factor", AttrValue::Float(m.capacity_factor)));
            }
            if m.strategy != MoeStrategy::Auto {
                v.push(("strategy", AttrValue::ident(m.strategy.name())));
            }
        }
        _ => {}
    }
    v
}

/// The dim a data-dependent op's `count` gives: a symbol of its own (not a
/// dim of its inputs), or its size once bound.
pub(crate) fn count_dim(op: &str, count: &DimSpec, ins: &[&TensorType]) -> Result<Dim, String> {
    match count {
        DimSpec::Sym(c) if c.is_empty() => Err(format!("{op} needs a symbol for its count (`count = K`)")),
        DimSpec::Sym(c) if ins.iter().flat_map(|t| t.shape.symbols()).any(|d| *d == **c) => {
            Err(format!("{op}'s count `{c}` is a dim of its input: it needs a symbol of its own"))
        }
        DimSpec::Sym(c) => Ok(Dim::sym(c)),
        DimSpec::Int(k) => Ok(Dim::Fixed(*k as u64)),
    }
}

fn want_idx(op: &str, idx: &TensorType, t: &Dim) -> Result<Dim, String> {
    if idx.dtype != DType::I64 || idx.rank() != 2 || &idx.dims()[0] != t {
        return Err(format!("{op} expects indices i64[{t}, k], found {idx}"));
    }
    Ok(idx.dims()[1].clone())
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<Vec<TensorType>, String> {
    let x = ins[0];
    match op {
        Op::Unique(u) => {
            if x.quant.is_some() {
                return Err(format!("unique does not take quantized input {x}"));
            }
            let k = count_dim("unique", &u.count, &[x])?;
            let i64s = |d: Dim| TensorType::new(DType::I64, Shape(vec![d]));
            match u.axis {
                Some(a) => {
                    let ax = x.shape.axis(a).ok_or_else(|| format!("unique axis {a} is out of range for {x}"))?;
                    let mut d = x.dims().to_vec();
                    let len = std::mem::replace(&mut d[ax], k.clone());
                    Ok(vec![TensorType::new(x.dtype, Shape(d)), i64s(k.clone()), i64s(len), i64s(k)])
                }
                None => {
                    let len = match (x.rank(), x.shape.numel()) {
                        (_, Some(n)) => Dim::Fixed(n),
                        (1, None) => x.dims()[0].clone(),
                        _ => return Err(format!("unique without axis of {x}: its element count must be fixed (or the input 1-d)")),
                    };
                    Ok(vec![TensorType::new(x.dtype, Shape(vec![k.clone()])), i64s(k.clone()), i64s(len), i64s(k)])
                }
            }
        }
        Op::Nms(n) => {
            let (b, s) = (ins[0], ins[1]);
            if !b.dtype.is_float() || b.quant.is_some() || b.rank() != 3 || b.dims()[2] != Dim::Fixed(4) {
                return Err(format!("nms expects boxes [batches, boxes, 4] of floats, found {b}"));
            }
            if s.dtype != b.dtype || s.quant.is_some() || s.rank() != 3 || s.dims()[0] != b.dims()[0] || s.dims()[2] != b.dims()[1] {
                return Err(format!("nms expects scores [batches, classes, boxes] matching boxes {b}, found {s}"));
            }
            if !n.iou_threshold.is_finite() || n.score_threshold.is_some_and(f32::is_nan) {
                return Err(format!("nms thresholds must be numbers, found iou {} and score {:?}", n.iou_threshold, n.score_threshold));
            }
            let k = count_dim("nms", &n.count, &[b, s])?;
            Ok(vec![TensorType::new(DType::I64, Shape(vec![k, Dim::Fixed(3)]))])
        }
        Op::TopK(t) => {
            if x.quant.is_some() || x.dtype == DType::Bool {
                return Err(format!("topk does not take {x}"));
            }
            let a = x.shape.axis(t.axis).ok_or_else(|| format!("topk axis {} is out of range for {x}", t.axis))?;
            match x.dims()[a] {
                Dim::Fixed(n) if (t.k as u64) <= n && t.k > 0 => {}
                ref d => return Err(format!("topk k = {} must be in 1..={d} (axis {a} of {x})", t.k)),
            }
            let mut d = x.dims().to_vec();
            d[a] = Dim::Fixed(t.k as u64);
            Ok(vec![TensorType::new(x.dtype, Shape(d.clone())), TensorType::new(DType::I64, Shape(d))])
        }
        Op::MoeDispatch { experts, capacity } => {
            want_float("moe_dispatch", "input", x)?;
            if x.rank() != 2 {
                return Err(format!("moe_dispatch expects x [T, D], found {x}"));
            }
            want_idx("moe_dispatch", ins[1], &x.dims()[0])?;
            if *experts == 0 {
                return Err("moe_dispatch needs experts ≥ 1".into());
            }
            Ok(vec![TensorType::new(
                x.dtype,
                Shape(vec![Dim::Fixed(*experts as u64), Dim::Fixed(*capacity as u64), x.dims()[1].clone()]),
            )])
        }
        Op::MoeCombine { capacity } => {
            want_float("moe_combine", "input", x)?;
            if x.rank() != 3 || x.dims()[1] != Dim::Fixed(*capacity as u64) {
                return Err(format!("moe_combine expects y [E, {capacity}, D], found {x}"));
            }
            let (idx, w) = (ins[1], ins[2]);
            if idx.rank() != 2 {
                return Err(format!("moe_combine expects indices i64[T, k], found {idx}"));
            }
            let t = idx.dims()[0].clone();
            let k = want_idx("moe_combine", idx, &t)?;
            if w.dtype != x.dtype || w.shape != Shape(vec![t.clone(), k.clone()]) {
                return Err(format!("moe_combine expects weights {}[{t}, {k}], found {w}", x.dtype));
            }
            Ok(vec![TensorType::new(x.dtype, Shape(vec![t, x.dims()[2].clone()]))])
        }
        Op::Moe(m) => {
            want_float("moe", "input", x)?;
            if x.rank() != 2 {
                return Err(format!("moe expects x [T, D], found {x}"));
            }
            let (logits, w1, w2) = (ins[1], ins[2], ins[3]);
            let (t, d) = (&x.dims()[0], &x.dims()[1]);
            if logits.rank() != 2 || &logits.dims()[0] != t || logits.dtype != x.dtype {
                return Err(format!("moe expects router logits {}[{t}, E], found {logits}", x.dtype));
            }
            let e = &logits.dims()[1];
            match e.fixed() {
                Some(n) if m.k >= 1 && (m.k as u64) <= n => {}
                _ => return Err(format!("moe k = {} must be in 1..={e} (the experts in {logits})", m.k)),
            }
            if w1.rank() != 3 || &w1.dims()[0] != e || &w1.dims()[1] != d || w1.dtype != x.dtype {
                return Err(format!("moe expects w1 {}[{e}, {d}, H], found {w1}", x.dtype));
            }
            let h = &w1.dims()[2];
            if w2.shape != Shape(vec![e.clone(), h.clone(), d.clone()]) || w2.dtype != x.dtype {
                return Err(format!("moe expects w2 {}[{e}, {h}, {d}], found {w2}", x.dtype));
            }
            if let Some(w3) = ins.get(4)
                && (w3.shape != w1.shape || w3.dtype != x.dtype)
            {
                return Err(format!("moe expects w3 (gated experts) {}[{e}, {d}, {h}] as w1, found {w3}", x.dtype));
            }
            Ok(vec![x.with_dtype(x.dtype)])
        }
        _ => unreachable!("routing::infer on {}", op.name()),
    }
}
