//! The cost model: an estimate of each op's run time on a target from the FLOPs it
//! does and the bytes it moves (`launch + max(flops/peak, bytes/bandwidth)`), not
//! node count. Fusion pays because a fused op reads its inputs and writes its
//! output once, where the unfused chain writes and reads every intermediate, and
//! launches once. Reshapes are views (nearly free); a node computed only from
//! constants costs nothing, as constant folding computes it before run time.
//! Symbolic dims count as [`CostModel::sym_size`].

use smelt_ir::ops::{BinaryOp, UnaryOp};
use smelt_ir::{Dim, Expr, Graph, Op, TensorType};

/// A machine's throughput figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostTarget {
    pub name: &'static str,
    /// Peak f32 FLOP/s.
    pub flops: f64,
    /// Memory bandwidth, bytes/s.
    pub bandwidth: f64,
    /// Fixed cost of one kernel, seconds.
    pub launch: f64,
    /// The share of `flops` a `sparse_matmul` reaches per stored weight, in CSR
    /// (unstructured), in BSR with blocks at least 8 columns wide (`wide`: the
    /// CPU's panel kernel takes them whole) and in other BSR form: the sparse
    /// form wins when the weight's density is below it. CPU figures measured on
    /// an AVX2 host (docs/performance.md, *Sparsity*).
    pub sparse_csr: f64,
    pub sparse_bsr: f64,
    pub sparse_wide: f64,
}

impl CostTarget {
    /// A two-core AVX2 machine (≈ 188 GFLOP/s peak on two AVX2 cores).
    pub const CPU: CostTarget = CostTarget { name: "cpu", flops: 150e9, bandwidth: 20e9, launch: 2e-7, sparse_csr: 0.22, sparse_bsr: 0.35, sparse_wide: 0.65 };
    /// A data-center GPU (≈ 30 TFLOP/s from WGSL, ≈ 3.7 TB/s).
    /// Its `sparse_matmul` is one invocation per row walking the blocks: far
    /// from the dense kernel's rate, so only very sparse weights go sparse.
    pub const GPU: CostTarget = CostTarget { name: "gpu", flops: 30e12, bandwidth: 3e12, launch: 5e-6, sparse_csr: 0.02, sparse_bsr: 0.05, sparse_wide: 0.05 };

    pub fn by_name(name: &str) -> Option<CostTarget> {
        [CostTarget::CPU, CostTarget::GPU].into_iter().find(|t| t.name == name)
    }
}

/// Op timings for one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    pub target: CostTarget,
    /// The size a symbolic dim stands for.
    pub sym_size: u64,
}

impl Default for CostModel {
    fn default() -> CostModel {
        CostModel { target: CostTarget::CPU, sym_size: 8 }
    }
}

/// The time of a node computed only from constants (folded at compile time): tiny
/// but positive, so that extraction never prefers a cycle.
pub const FOLDED: f64 = 1e-12;

impl CostModel {
    pub fn new(target: CostTarget) -> CostModel {
        CostModel { target, ..CostModel::default() }
    }

    fn numel(&self, t: &TensorType) -> f64 {
        t.dims()
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n as f64,
                Dim::Sym(_) => self.sym_size as f64,
            })
            .product()
    }

    fn bytes(&self, t: &TensorType) -> f64 {
        self.numel(t) * t.dtype.size() as f64
    }

    /// Estimated seconds to run `op` on inputs of types `ins` giving `outs`.
    pub fn op_time(&self, op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> f64 {
        if op.is_source() {
            return 0.0;
        }
        if matches!(op, Op::Reshape { .. }) {
            // A view: no data moves.
            return 1e-9;
        }
        let out = outs.first().map(|t| self.numel(t)).unwrap_or(0.0);
        let inb: f64 = ins.iter().map(|t| self.bytes(t)).sum();
        let outb: f64 = outs.iter().map(|t| self.bytes(t)).sum();
        let mut bytes = inb + outb;
        let last = |t: &TensorType| t.dims().last().map(|d| self.numel(&TensorType::new(t.dtype, vec![d.clone()]))).unwrap_or(1.0);
        let flops = match op {
            Op::Unary(u) => out * unary_flops(u),
            Op::Binary(b) => out * binary_flops(b),
            Op::Where | Op::Cast { .. } => out,
            Op::MatMul => 2.0 * out * contracted(self, ins),
            Op::Gemm(g) => {
                let k = if g.trans_a { self.numel(&dim(ins[0], 0)) } else { last(ins[0]) };
                2.0 * out * k + out
            }
            Op::Conv(_) | Op::QConv(..) => 2.0 * out * per_output(self, ins),
            Op::FusedConv { activation, epilogue: None, .. } => out * (2.0 * per_output(self, ins) + 1.0 + unary_flops(activation)),
            // A flop more than the activation form (which lowers to vectors more
            // often), so that of the two spellings of `act(conv)` that one wins.
            Op::FusedConv { epilogue: Some(e), .. } => out * (2.0 * per_output(self, ins) + 2.0 + expr_flops(e)),
            Op::FusedMatMul { epilogue } => out * (2.0 * contracted(self, ins) + expr_flops(epilogue)),
            Op::Elementwise { expr } => out * expr_flops(expr),
            Op::Pool(p) => out * p.kernel.iter().product::<usize>() as f64,
            Op::GlobalPool(_) | Op::Reduce { .. } | Op::ArgReduce { .. } => self.numel(ins[0]),
            Op::BatchNorm { .. } => 2.0 * out,
            Op::LayerNorm { .. } => 8.0 * out,
            Op::Softmax { .. } => 5.0 * out,
            // A multiply-add per channel of the window, then a `pow`.
            Op::Lrn { size, .. } => (2.0 * *size as f64 + 12.0) * out,
            // A multiply-add per tap (nearest 1, linear 2, cubic 4) per resized
            // axis, counted on the output (an upper bound when downsampling).
            Op::Resize(r) => {
                let taps = match r.mode {
                    smelt_ir::ops::ResizeMode::Nearest => 0.5,
                    smelt_ir::ops::ResizeMode::Linear => 2.0,
                    smelt_ir::ops::ResizeMode::Cubic => 4.0,
                };
                2.0 * taps * r.sizes.iter().filter(|&&s| s != -1).count().max(1) as f64 * out
            }
            // Per stored weight (values' elements) and row of x, at the
            // target's sparse rate: counted as the dense FLOPs it would take.
            Op::SparseMatMul(sp) => {
                let rows = self.numel(ins[0]) / contracted(self, ins).max(1.0);
                let eff = match (sp.format, sp.block) {
                    (smelt_ir::ops::SparseFormat::Csr, _) => self.target.sparse_csr,
                    (_, [_, bc]) if bc >= 8 => self.target.sparse_wide,
                    _ => self.target.sparse_bsr,
                };
                2.0 * rows * self.numel(ins[1]) / eff.max(1e-6)
            }
            Op::Attention(_) => {
                let (q, k, v) = (ins[0], ins[1], ins[2]);
                let (b, tq, e) = (self.numel(&dim(q, 0)), self.numel(&dim(q, 1)), last(q));
                let tk = self.numel(&dim(k, 1));
                b * tq * tk * (2.0 * e + 2.0 * last(v) + 5.0)
            }
            Op::Transpose { .. } | Op::Concat { .. } | Op::Split { .. } | Op::Slice(_) | Op::Pad { .. } => 0.0,
            Op::Expand { .. } => {
                bytes = outb;
                0.0
            }
            _ => out,
        };
        let t = self.target;
        // Overlapped compute and memory, plus a sliver of the compute so that, of two
        // memory-bound forms, the one doing less arithmetic wins.
        t.launch + (flops / t.flops).max(bytes / t.bandwidth) + 0.01 * flops / t.flops
    }

    /// The estimated time of a whole graph: the sum of its nodes' times (a node
    /// computed from constants only counts as [`FOLDED`]).
    pub fn graph_time(&self, g: &Graph) -> f64 {
        let mut konst = std::collections::HashSet::new();
        let mut total = 0.0;
        for id in g.topo_order().unwrap_or_default() {
            let n = g.node(id);
            let ins = g.node_inputs(id);
            if matches!(n.op, Op::Param | Op::Const(_)) || (!n.op.is_source() && ins.iter().all(|v| konst.contains(&v.node))) {
                konst.insert(id);
                total += if n.op.is_source() { 0.0 } else { FOLDED };
                continue;
            }
            let tys: Option<Vec<&TensorType>> = ins.iter().map(|&v| g.value_type(v)).collect();
            if let Some(tys) = tys {
                total += self.op_time(&n.op, &tys, &n.types);
            }
        }
        total
    }
}

fn dim(t: &TensorType, i: usize) -> TensorType {
    TensorType::new(t.dtype, vec![t.dims().get(i).cloned().unwrap_or(Dim::Fixed(1))])
}

/// The contracted size K of a matmul.
fn contracted(m: &CostModel, ins: &[&TensorType]) -> f64 {
    ins.first().and_then(|a| a.dims().last().cloned()).map(|d| m.numel(&TensorType::new(ins[0].dtype, vec![d]))).unwrap_or(1.0)
}

/// Multiply-adds per output element of a conv: `C/groups · Πk` (the weight's
/// elements divided by its output channels).
fn per_output(m: &CostModel, ins: &[&TensorType]) -> f64 {
    let w = ins[1];
    let oc = w.dims().first().and_then(|d| d.fixed()).unwrap_or(1).max(1) as f64;
    m.numel(w) / oc
}

/// FLOPs of one application of a unary function.
pub fn unary_flops(u: &UnaryOp) -> f64 {
    match u {
        UnaryOp::Identity => 0.0,
        UnaryOp::Relu | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Not | UnaryOp::Clip { .. } => 1.0,
        UnaryOp::LeakyRelu { .. } | UnaryOp::HardSigmoid { .. } | UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => 2.0,
        UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal => 4.0,
        UnaryOp::Sigmoid | UnaryOp::Silu | UnaryOp::Exp | UnaryOp::Log | UnaryOp::Elu { .. } | UnaryOp::Softplus => 10.0,
        // One intrinsic each: a GELU is cheaper than its spelled-out form.
        UnaryOp::Tanh | UnaryOp::Erf | UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Gelu | UnaryOp::GeluTanh => 12.0,
    }
}

/// FLOPs of one application of a binary function: a division costs what a
/// reciprocal does (its latency and throughput are several multiplies').
pub fn binary_flops(b: &BinaryOp) -> f64 {
    match b {
        BinaryOp::Pow => 10.0,
        BinaryOp::Div => 4.0,
        _ => 1.0,
    }
}

/// FLOPs per element of an elementwise expression.
pub fn expr_flops(e: &Expr) -> f64 {
    match e {
        Expr::Input(_) | Expr::Const(_) => 0.0,
        Expr::Unary(u, x) => unary_flops(u) + expr_flops(x),
        Expr::Binary(b, x, y) => binary_flops(b) + expr_flops(x) + expr_flops(y),
        Expr::Where(c, x, y) => 1.0 + expr_flops(c) + expr_flops(x) + expr_flops(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::ops::BinaryOp;

    #[test]
    fn fusion_pays_and_views_are_free() {
        let m = CostModel::default();
        let (a, w, b) = (TensorType::f32([64, 256]), TensorType::f32([256, 256]), TensorType::f32([256]));
        let out = TensorType::f32([64, 256]);
        let mm = m.op_time(&Op::MatMul, &[&a, &w], std::slice::from_ref(&out));
        let add = m.op_time(&Op::Binary(BinaryOp::Add), &[&out, &b], std::slice::from_ref(&out));
        let relu = m.op_time(&Op::Unary(UnaryOp::Relu), &[&out], std::slice::from_ref(&out));
        let epilogue = Expr::unary(UnaryOp::Relu, Expr::binary(BinaryOp::Add, Expr::Input(0), Expr::Input(1)));
        let fused = m.op_time(&Op::FusedMatMul { epilogue }, &[&a, &w, &b], std::slice::from_ref(&out));
        assert!(fused < mm + add + relu, "{fused} vs {}", mm + add + relu);
        assert!(fused > mm, "the epilogue is not free");
        let r = m.op_time(&Op::Reshape { shape: vec![] }, &[&out], std::slice::from_ref(&out));
        assert!(r < 1e-3 * add, "a reshape is a view");
        let gpu = CostModel::new(CostTarget::GPU).op_time(&Op::MatMul, &[&a, &w], std::slice::from_ref(&out));
        assert!(gpu < mm);
    }
}
