//! The op catalogue, one file per family. `docs/ops.md` states the semantics of
//! every op; this module declares them: name, attributes, arity, and type inference.

pub mod attention;
pub mod conv;
pub mod elementwise;
pub mod fused;
pub mod linalg;
pub mod norm;
pub mod pool;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod resize;
pub mod routing;
pub mod shape;
pub mod source;
pub mod sparse;

use crate::attr::{AttrReader, AttrValue, DimSpec};
use crate::dtype::DType;
use crate::expr::Expr;
use crate::tensor::Tensor;
use crate::types::TensorType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use attention::Attention;
pub use conv::Conv;
pub use elementwise::{BinaryOp, UnaryOp};
pub use linalg::Gemm;
pub use pool::{Pool, PoolKind, StorageOrder};
pub use quant::{QuantizeAttrs, Requant};
pub use recurrent::{Direction, Rnn};
pub use reduce::{ArgKind, ReduceKind};
pub use resize::{CoordMode, NearestMode, Resize, ResizeMode};
pub use routing::{Moe, MoeMachine, MoeShape, MoeStrategy, Nms, TopK, Unique};
pub use shape::{PadMode, Slice};
pub use sparse::{SparseFormat, SparseMatMul};

/// An operation: what a node computes from its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    // sources
    /// A graph input (its type is the node's declared output type).
    Input,
    /// A named weight whose value comes from the weights file.
    Param,
    /// An inline constant.
    Const(Arc<Tensor>),
    // elementwise
    Unary(UnaryOp),
    Binary(BinaryOp),
    Where,
    Cast { to: DType },
    // linear algebra
    MatMul,
    Gemm(Gemm),
    // convolution and pooling
    Conv(Conv),
    Pool(Pool),
    GlobalPool(PoolKind),
    // normalization
    BatchNorm { epsilon: f32 },
    LayerNorm { axis: i64, epsilon: f32 },
    Softmax { axis: i64, log: bool },
    /// Local response normalization across channels (as ONNX LRN).
    Lrn { size: usize, alpha: f32, beta: f32, bias: f32 },
    // reductions
    Reduce { kind: ReduceKind, axes: Vec<i64>, keepdims: bool },
    ArgReduce { kind: ArgKind, axis: i64, keepdims: bool },
    // shape
    Reshape { shape: Vec<DimSpec> },
    Transpose { perm: Option<Vec<usize>> },
    Concat { axis: i64 },
    Split { axis: i64, sizes: Vec<usize> },
    Slice(Slice),
    Gather { axis: i64 },
    Pad {
        pads: Vec<usize>,
        mode: PadMode,
        #[serde(with = "crate::serde_float")]
        value: f32,
    },
    Expand { shape: Vec<DimSpec> },
    /// The indices of the nonzero elements of `x` (as ONNX NonZero):
    /// `i64[rank(x), count]`, where `count` is a symbol of its own that the
    /// data binds (as `nms`'s): its output size depends on the values. Backends
    /// run it on the host between the compiled parts of the graph. Binding the
    /// graph makes `count` the size (as reshape's symbols).
    NonZero { count: DimSpec },
    // resizing
    /// Interpolation to other sizes (as ONNX Resize).
    Resize(Resize),
    // recurrent
    Lstm(Rnn),
    Gru(Rnn),
    // attention
    Attention(Attention),
    // quantization
    Quantize(QuantizeAttrs),
    Dequantize,
    QMatMul(Requant),
    QConv(Conv, Requant),
    // sparse
    SparseMatMul(SparseMatMul),
    // routing
    TopK(TopK),
    MoeDispatch { experts: usize, capacity: usize },
    MoeCombine { capacity: usize },
    Moe(Moe),
    Nms(Nms),
    Unique(Unique),
    // fused forms
    /// `act(conv(x, w, b) + residual)`, or with `epilogue` an elementwise
    /// expression over `$0 = conv(x, w, b)` and the extra inputs after `b`.
    FusedConv { conv: Conv, activation: UnaryOp, epilogue: Option<Expr> },
    FusedMatMul { epilogue: Expr },
    Elementwise { expr: Expr },
}

/// The op families, one file each in this module (and in the interpreter, and
/// for most of them in codegen's lowering): consumers dispatch on the family, so
/// that an op added to a family reaches its family's code without a new match
/// arm elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Source,
    Elementwise,
    Linalg,
    Conv,
    Pool,
    Norm,
    Reduce,
    Shape,
    Resize,
    Recurrent,
    Attention,
    Quant,
    Sparse,
    Routing,
    Fused,
}

/// Every op name the text format knows (for error hints and docs).
pub fn op_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = elementwise::PLAIN_UNARY.iter().map(|(n, _)| *n).collect();
    v.extend(elementwise::PARAM_UNARY.iter().map(|(n, _)| *n));
    v.extend(elementwise::BINARY.iter().map(|(n, _)| *n));
    v.extend([
        "where", "cast", "matmul", "gemm", "conv1d", "conv2d", "conv3d", "max_pool1d", "max_pool2d", "max_pool3d",
        "avg_pool1d", "avg_pool2d", "avg_pool3d", "global_avg_pool", "global_max_pool", "batch_norm", "layer_norm", "softmax",
        "log_softmax", "lrn", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_l2",
        "argmax", "argmin", "reshape", "transpose", "concat", "split", "slice", "gather", "pad", "expand", "nonzero",
        "resize", "lstm", "gru", "attention", "quantize", "dequantize", "qmatmul", "qconv1d", "qconv2d", "qconv3d",
        "sparse_matmul", "topk", "moe_dispatch", "moe_combine", "moe", "nms", "unique", "fused_conv1d", "fused_conv2d", "fused_conv3d",
        "fused_matmul", "elementwise",
    ]);
    v
}

impl Op {
    /// Whether an output size of the op depends on its input values (a symbol
    /// the data binds): such ops run on the host between compiled stages.
    pub fn is_data_dependent(&self) -> bool {
        matches!(self, Op::NonZero { .. } | Op::Nms(_) | Op::Unique(_))
    }

    /// The count of a data-dependent op: a symbol, or a size once bound.
    pub fn count_mut(&mut self) -> Option<&mut DimSpec> {
        match self {
            Op::NonZero { count } | Op::Nms(Nms { count, .. }) | Op::Unique(Unique { count, .. }) => Some(count),
            _ => None,
        }
    }

    /// The family the op belongs to.
    pub fn family(&self) -> Family {
        match self {
            Op::Input | Op::Param | Op::Const(_) => Family::Source,
            Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. } => Family::Elementwise,
            Op::MatMul | Op::Gemm(_) => Family::Linalg,
            Op::Conv(_) => Family::Conv,
            Op::Pool(_) | Op::GlobalPool(_) => Family::Pool,
            Op::BatchNorm { .. } | Op::LayerNorm { .. } | Op::Softmax { .. } | Op::Lrn { .. } => Family::Norm,
            Op::Reduce { .. } | Op::ArgReduce { .. } => Family::Reduce,
            Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Split { .. }
            | Op::Slice(_)
            | Op::Gather { .. }
            | Op::Pad { .. }
            | Op::Expand { .. }
            | Op::NonZero { .. } => Family::Shape,
            Op::Resize(_) => Family::Resize,
            Op::Lstm(_) | Op::Gru(_) => Family::Recurrent,
            Op::Attention(_) => Family::Attention,
            Op::Quantize(_) | Op::Dequantize | Op::QMatMul(_) | Op::QConv(..) => Family::Quant,
            Op::SparseMatMul(_) => Family::Sparse,
            Op::TopK(_) | Op::MoeDispatch { .. } | Op::MoeCombine { .. } | Op::Moe(_) | Op::Nms(_) | Op::Unique(_) => Family::Routing,
            Op::FusedConv { .. } | Op::FusedMatMul { .. } | Op::Elementwise { .. } => Family::Fused,
        }
    }

    /// The op's name in the text format.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Param => "param",
            Op::Const(_) => "const",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Where => "where",
            Op::Cast { .. } => "cast",
            Op::MatMul => "matmul",
            Op::Gemm(_) => "gemm",
            Op::Conv(c) => ["conv1d", "conv2d", "conv3d"][c.rank() - 1],
            Op::Pool(p) => p.name(),
            Op::GlobalPool(PoolKind::Max) => "global_max_pool",
            Op::GlobalPool(PoolKind::Avg) => "global_avg_pool",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Softmax { log: false, .. } => "softmax",
            Op::Softmax { log: true, .. } => "log_softmax",
            Op::Lrn { .. } => "lrn",
            Op::Reduce { kind, .. } => kind.name(),
            Op::ArgReduce { kind, .. } => kind.name(),
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Split { .. } => "split",
            Op::Slice(_) => "slice",
            Op::Gather { .. } => "gather",
            Op::Pad { .. } => "pad",
            Op::Expand { .. } => "expand",
            Op::NonZero { .. } => "nonzero",
            Op::Resize(_) => "resize",
            Op::Lstm(_) => "lstm",
            Op::Gru(_) => "gru",
            Op::Attention(_) => "attention",
            Op::Quantize(_) => "quantize",
            Op::Dequantize => "dequantize",
            Op::QMatMul(_) => "qmatmul",
            Op::QConv(c, _) => ["qconv1d", "qconv2d", "qconv3d"][c.rank() - 1],
            Op::SparseMatMul(_) => "sparse_matmul",
            Op::TopK(_) => "topk",
            Op::MoeDispatch { .. } => "moe_dispatch",
            Op::MoeCombine { .. } => "moe_combine",
            Op::Moe(_) => "moe",
            Op::Nms(_) => "nms",
            Op::Unique(_) => "unique",
            Op::FusedConv { conv, .. } => ["fused_conv1d", "fused_conv2d", "fused_conv3d"][conv.rank() - 1],
            Op::FusedMatMul { .. } => "fused_matmul",
            Op::Elementwise { .. } => "elementwise",
        }
    }

    /// Builds an op from its text name and attributes; `None` for an unknown name.
    /// Attribute problems are recorded in `a`.
    pub fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
        if let Some(u) = UnaryOp::parse(name, a) {
            return Some(Op::Unary(u));
        }
        if let Some(b) = BinaryOp::from_name(name) {
            return Some(Op::Binary(b));
        }
        linalg::parse(name, a)
            .or_else(|| conv::parse(name, a))
            .or_else(|| pool::parse(name, a))
            .or_else(|| norm::parse(name, a))
            .or_else(|| reduce::parse(name, a))
            .or_else(|| shape::parse(name, a))
            .or_else(|| resize::parse(name, a))
            .or_else(|| recurrent::parse(name, a))
            .or_else(|| attention::parse(name, a))
            .or_else(|| quant::parse(name, a))
            .or_else(|| sparse::parse(name, a))
            .or_else(|| routing::parse(name, a))
            .or_else(|| fused::parse(name, a))
            .or_else(|| match name {
                "where" => Some(Op::Where),
                "cast" => Some(Op::Cast { to: a.dtype("to", None) }),
                _ => None,
            })
    }

    /// The attributes that differ from their defaults, in declaration order.
    pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        match self.family() {
            Family::Norm => return norm::attrs(self),
            Family::Reduce => return reduce::attrs(self),
            Family::Shape => return shape::attrs(self),
            Family::Routing => return routing::attrs(self),
            Family::Fused => return fused::attrs(self),
            _ => {}
        }
        match self {
            Op::Unary(u) => u.attrs(),
            Op::Cast { to } => vec![("to", AttrValue::ident(to.name()))],
            Op::Gemm(g) => g.attrs(),
            Op::Conv(c) => c.attrs(),
            Op::Pool(p) => p.attrs(),
            Op::Lstm(r) | Op::Gru(r) => r.attrs(),
            Op::Attention(at) => at.attrs(),
            Op::Quantize(q) => q.attrs(),
            Op::QMatMul(r) => r.attrs(),
            Op::QConv(c, r) => {
                let mut v = c.attrs();
                v.extend(r.attrs());
                v
            }
            Op::SparseMatMul(s) => s.attrs(),
            Op::Resize(r) => r.attrs(),
            _ => vec![],
        }
    }

    /// How many outputs the op produces.
    pub fn num_outputs(&self) -> usize {
        match self {
            Op::Split { sizes, .. } => sizes.len(),
            Op::Pool(p) if p.indices.is_some() => 2,
            Op::Lstm(_) => 3,
            Op::Gru(_) | Op::TopK(_) => 2,
            Op::Unique(_) => 4,
            _ => 1,
        }
    }

    /// Is this a source (input, param or const)?
    pub fn is_source(&self) -> bool {
        matches!(self, Op::Input | Op::Param | Op::Const(_))
    }

    /// The accepted number of inputs, as (min, max); max `usize::MAX` for variadic.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Input | Op::Param | Op::Const(_) => (0, 0),
            Op::Unary(_) | Op::Cast { .. } | Op::Pool(_) | Op::GlobalPool(_) | Op::Softmax { .. } | Op::Lrn { .. } => (1, 1),
            Op::Reduce { .. } | Op::ArgReduce { .. } | Op::Reshape { .. } | Op::Transpose { .. } => (1, 1),
            Op::Split { .. } | Op::Slice(_) | Op::Pad { .. } | Op::Expand { .. } | Op::TopK(_) | Op::NonZero { .. } | Op::Unique(_) => (1, 1),
            Op::Quantize(_) | Op::Dequantize | Op::Resize(_) => (1, 1),
            Op::Binary(_) | Op::MatMul | Op::Gather { .. } | Op::MoeDispatch { .. } | Op::Nms(_) => (2, 2),
            Op::Where | Op::MoeCombine { .. } => (3, 3),
            Op::Gemm(_) => (2, 3),
            Op::Conv(_) | Op::QConv(..) | Op::QMatMul(_) => (2, 3),
            Op::BatchNorm { .. } => (5, 5),
            Op::LayerNorm { .. } => (2, 3),
            Op::Concat { .. } => (1, usize::MAX),
            Op::Lstm(_) => (4, 7),
            Op::Gru(_) => (4, 5),
            Op::Attention(_) => (3, 4),
            Op::SparseMatMul(_) => (4, 4),
            Op::Moe(_) => (4, 5),
            Op::FusedConv { epilogue: None, .. } => (2, 4),
            Op::FusedConv { epilogue: Some(e), .. } => (2 + e.arity().max(1), 2 + e.arity().max(1)),
            Op::FusedMatMul { epilogue } => (2.max(epilogue.arity() + 1), 2.max(epilogue.arity() + 1)),
            Op::Elementwise { expr } => (expr.arity().max(1), expr.arity().max(1)),
        }
    }

    /// Infers the output types from the input types, validating the inputs.
    /// Sources have no inference: their type is declared. An output of more
    /// than [`MAX_ELEMENTS`](crate::shape::MAX_ELEMENTS) elements (in its fixed
    /// dims) is an error: sizes in bytes and flat indices fit in an i64.
    pub fn infer(&self, ins: &[&TensorType]) -> Result<Vec<TensorType>, String> {
        let out = self.infer_types(ins)?;
        let max = crate::shape::MAX_ELEMENTS;
        for t in &out {
            let mut fixed = t.dims().iter().filter_map(|d| d.fixed());
            let empty = fixed.clone().any(|d| d == 0);
            if !empty && fixed.try_fold(1u64, |a, d| a.checked_mul(d).filter(|&n| n <= max)).is_none() {
                return Err(format!("{} would give {t}: more than 2^56 elements", self.name()));
            }
        }
        Ok(out)
    }

    fn infer_types(&self, ins: &[&TensorType]) -> Result<Vec<TensorType>, String> {
        let (lo, hi) = self.arity();
        if ins.len() < lo || ins.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            let plural = if lo == 1 && hi == 1 { "" } else { "s" };
            return Err(format!("{} expects {want} input{plural}, found {}", self.name(), ins.len()));
        }
        let one = |t: Result<TensorType, String>| t.map(|t| vec![t]);
        match self.family() {
            Family::Norm => return one(norm::infer(self, ins)),
            Family::Reduce => return one(reduce::infer(self, ins[0])),
            Family::Shape => return shape::infer(self, ins),
            Family::Quant => return one(quant::infer(self, ins)),
            Family::Routing => return routing::infer(self, ins),
            Family::Fused => return one(fused::infer(self, ins)),
            _ => {}
        }
        match self {
            Op::Unary(u) => one(elementwise::infer_unary(u, ins[0])),
            Op::Binary(b) => one(elementwise::infer_binary(b, ins[0], ins[1])),
            Op::Where => one(elementwise::infer_where(ins[0], ins[1], ins[2])),
            Op::Cast { to } => {
                if ins[0].quant.is_some() {
                    return Err(format!("cast does not take quantized input {}; use dequantize", ins[0]));
                }
                Ok(vec![ins[0].with_dtype(*to)])
            }
            Op::MatMul | Op::Gemm(_) => one(linalg::infer(self, ins)),
            Op::Conv(c) => one(c.infer(ins, false)),
            Op::Pool(p) => p.infer(ins[0]),
            Op::GlobalPool(_) => one(pool::infer_global(self.name(), ins[0])),
            Op::Lstm(r) => r.infer(ins, true),
            Op::Gru(r) => r.infer(ins, false),
            Op::Attention(a) => one(a.infer(ins)),
            Op::SparseMatMul(s) => one(s.infer(ins)),
            Op::Resize(r) => one(r.infer(ins[0])),
            _ => Err(format!("{} has a declared type", self.name())),
        }
    }
}

/// Requires a float, unquantized input.
pub(crate) fn want_float(op: &str, what: &str, t: &TensorType) -> Result<(), String> {
    if !t.dtype.is_float() || t.quant.is_some() {
        return Err(format!("{op} expects a float {what}, found {t}"));
    }
    Ok(())
}

/// Requires a given rank.
pub(crate) fn want_rank(op: &str, what: &str, t: &TensorType, rank: usize) -> Result<(), String> {
    if t.rank() != rank {
        return Err(format!("{op} expects a {rank}-d {what}, found {t}"));
    }
    Ok(())
}

/// Requires two dims to agree (symbols must be the same symbol).
pub(crate) fn want_dim_eq(op: &str, what: &str, a: &crate::Dim, b: &crate::Dim) -> Result<(), String> {
    if a != b {
        return Err(format!("{op}: {what} must agree, found {a} and {b}"));
    }
    Ok(())
}
