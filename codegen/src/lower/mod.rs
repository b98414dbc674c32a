//! Lowering: a graph with bound shapes → a [`Program`] of kernels over buffers.
//!
//! Each node becomes zero or more steps (a kernel and the program buffers it runs
//! on). Reshapes are views (the output is the input's buffer); weights are constant
//! buffers; some lowerings add derived constants (matmul weights packed into
//! panels at compile time). One file per op family, mirroring `ir/src/ops/`.
//!
//! [`support`] decides, from op and dtypes alone, what this lowering handles; an op
//! it does not is reported as `not supported on cranelift: <op> at node <name>`,
//! never approximated.

mod attention;
mod attention_gpu;
mod conv;
pub mod coop;
mod elementwise;
mod expr;
mod int32;
pub mod gemm;
pub mod gpu;
mod linalg;
mod moe;
mod norm;
mod pool;
mod qconv;
mod qgemm;
mod quant;
mod recurrent;
mod routing;
mod reduce;
mod resize;
mod shape;
mod sparse;
mod sparse_cpu;
mod util;

use crate::kernel::{Kernel, Scalar};
use crate::schedule::Target;
use crate::Error;
use smelt_ir::ops::Family;
use smelt_ir::{DType, Graph, Op, Tensor, TensorType, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub use util::Operand;

/// A program buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufIdx(pub usize);

/// What a program buffer holds.
#[derive(Debug, Clone)]
pub enum BufKind {
    /// A graph input, copied in before the first step.
    Input,
    /// Computed by a step (outputs included).
    Temp,
    /// Known at compile time (little-endian bytes, cache-line aligned).
    Const(Arc<crate::native::ConstBytes>),
}

#[derive(Debug, Clone)]
pub struct ProgBuffer {
    pub name: String,
    pub scalar: Scalar,
    pub len: u64,
    pub kind: BufKind,
}

impl ProgBuffer {
    pub fn bytes(&self) -> u64 {
        self.len * self.scalar.size() as u64
    }
}

/// One kernel call: `args[i]` is the program buffer of the kernel's buffer `i`.
#[derive(Debug, Clone)]
pub struct Step {
    pub kernel: Kernel,
    pub args: Vec<BufIdx>,
    /// The graph node this step computes (part of).
    pub node: String,
    /// A run-time check the kernel reports through a status buffer.
    pub check: Option<Check>,
    /// For the GPU: the step is GEMM-shaped and may be emitted as a tiled shader.
    pub tiled: Option<Box<gpu::Tiled>>,
}

/// A status buffer (`i64[4]`: a flag and three values) that the executor zeroes
/// before the step and reads after it: a set flag is the error `message` (with
/// `{0}`, `{1}`, `{2}` replaced by the values) at the step's node.
#[derive(Debug, Clone)]
pub struct Check {
    pub buf: BufIdx,
    pub op: String,
    pub message: String,
}

/// A graph output: its name, buffer, shape and dtype.
#[derive(Debug, Clone)]
pub struct ProgOutput {
    pub name: String,
    pub buf: BufIdx,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// A lowered graph.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub name: String,
    pub buffers: Vec<ProgBuffer>,
    pub steps: Vec<Step>,
    /// Graph inputs by name.
    pub inputs: Vec<(String, BufIdx)>,
    pub outputs: Vec<ProgOutput>,
}

impl Program {
    pub fn buffer(&self, b: BufIdx) -> &ProgBuffer {
        &self.buffers[b.0]
    }

    /// Every kernel, printed.
    pub fn print_kernels(&self) -> String {
        let mut s = String::new();
        for st in &self.steps {
            s.push_str(&format!("# node {}\n{}\n", st.node, crate::kernel::printer::print(&st.kernel)));
        }
        s
    }
}

/// Lowering state while a graph is walked.
#[derive(Debug)]
pub struct Lowerer<'g> {
    pub g: &'g Graph,
    pub target: Target,
    pub prog: Program,
    values: HashMap<Value, BufIdx>,
}

impl Lowerer<'_> {
    pub fn new_buffer(&mut self, name: &str, scalar: Scalar, len: u64, kind: BufKind) -> BufIdx {
        self.prog.buffers.push(ProgBuffer { name: name.to_string(), scalar, len, kind });
        BufIdx(self.prog.buffers.len() - 1)
    }

    pub fn temp(&mut self, name: &str, scalar: Scalar, len: u64) -> BufIdx {
        self.new_buffer(name, scalar, len, BufKind::Temp)
    }

    pub fn constant(&mut self, name: &str, scalar: Scalar, bytes: Vec<u8>) -> BufIdx {
        let len = (bytes.len() / scalar.size()) as u64;
        self.new_buffer(name, scalar, len, BufKind::Const(Arc::new(crate::native::ConstBytes::new(&bytes))))
    }

    /// A constant of f32 values (weights transformed or packed at compile time).
    pub fn constant_f32(&mut self, name: &str, values: &[f32]) -> BufIdx {
        self.new_buffer(name, Scalar::F32, values.len() as u64, BufKind::Const(Arc::new(crate::native::ConstBytes::from_f32(values))))
    }

    /// The values of `b` when it is an f32 constant.
    pub fn const_f32(&self, b: BufIdx) -> Option<Vec<f32>> {
        match &self.prog.buffer(b).kind {
            BufKind::Const(bytes) => Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            _ => None,
        }
    }

    pub fn step(&mut self, node: &str, kernel: Kernel, args: Vec<BufIdx>) {
        self.prog.steps.push(Step { kernel, args, node: node.to_string(), check: None, tiled: None });
    }

    /// A step whose kernel reports a run-time error through `check`.
    pub fn step_checked(&mut self, node: &str, kernel: Kernel, args: Vec<BufIdx>, check: Check) {
        self.prog.steps.push(Step { kernel, args, node: node.to_string(), check: Some(check), tiled: None });
    }

    /// A GEMM-shaped step with its tiling hint (GPU lowering).
    pub fn step_tiled(&mut self, node: &str, kernel: Kernel, args: Vec<BufIdx>, tiled: gpu::Tiled) {
        self.prog.steps.push(Step { kernel, args, node: node.to_string(), check: None, tiled: Some(Box::new(tiled)) });
    }

    /// A unique kernel name for node `node` (`suffix` tells the parts apart).
    pub fn kernel_name(&self, node: &str, suffix: &str) -> String {
        let base: String = node.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let base = if suffix.is_empty() { base } else { format!("{base}_{suffix}") };
        let taken = |n: &str| self.prog.steps.iter().any(|s| s.kernel.name == n);
        if !taken(&base) {
            return base;
        }
        (2..).map(|i| format!("{base}_{i}")).find(|n| !taken(n)).unwrap_or(base)
    }

    /// The buffer and type of a value.
    pub fn operand(&self, v: Value) -> Result<Operand, Error> {
        let buf = *self.values.get(&v).ok_or_else(|| internal(self.g.value_name(v), "value has no buffer"))?;
        let ty = self.g.value_type(v).ok_or_else(|| internal(self.g.value_name(v), "value has no type"))?.clone();
        Operand::new(buf, ty).map_err(|m| internal(self.g.value_name(v), &m))
    }
}

/// An internal lowering failure (a bug in smelt, reported, not panicked).
pub fn internal(node: &str, message: &str) -> Error {
    Error::Kernel { kernel: node.to_string(), message: message.to_string() }
}

fn unsupported(g: &Graph, id: smelt_ir::NodeId) -> Error {
    let n = g.node(id);
    Error::Unsupported { backend: "cranelift", op: n.op.name().to_string(), node: n.name().to_string() }
}

/// Whether this lowering handles `op` on inputs `ins` giving `outs` (dtypes and
/// ranks only; shapes may be symbolic).
pub fn support(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> bool {
    // f16/bf16 are computed in f32 (see `widened`): an op is supported on them
    // when it is on f32.
    let half = |t: &TensorType| matches!(t.dtype, DType::F16 | DType::BF16);
    if !op.is_source() && (ins.iter().any(|t| half(t)) || outs.iter().any(half)) {
        let w = |t: &TensorType| if half(t) { t.with_dtype(DType::F32) } else { t.clone() };
        let wins: Vec<TensorType> = ins.iter().map(|t| w(t)).collect();
        let wouts: Vec<TensorType> = outs.iter().map(w).collect();
        return support(op, &wins.iter().collect::<Vec<_>>(), &wouts);
    }
    if op.is_source() {
        return outs.iter().all(|t| Scalar::of(t.dtype).is_some());
    }
    if matches!(op, Op::Quantize(_) | Op::Dequantize | Op::QMatMul(_)) {
        return quant::support(op, ins, outs);
    }
    if matches!(op, Op::QConv(..)) {
        return qconv::support(op, ins, outs);
    }
    // Shape ops move a quantized tensor's integers as they are (the interpreter
    // ignores the parameters there too); other ops need plain tensors.
    let moves = matches!(
        op,
        Op::Reshape { .. } | Op::Transpose { .. } | Op::Expand { .. } | Op::Slice(_) | Op::Concat { .. } | Op::Split { .. } | Op::Pad { .. } | Op::Gather { .. }
    );
    let plain = |t: &TensorType| (moves || t.quant.is_none()) && Scalar::of(t.dtype).is_some();
    if !ins.iter().all(|t| plain(t)) || !outs.iter().all(plain) {
        return false;
    }
    match op {
        Op::Input | Op::Param | Op::Const(_) => true,
        Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. } | Op::Elementwise { .. } => {
            elementwise::support(op, ins)
        }
        Op::MatMul | Op::Gemm(_) | Op::FusedMatMul { .. } => linalg::support(op, ins, outs),
        Op::Conv(_) | Op::FusedConv { .. } => conv::support(op, ins, outs),
        _ if op.family() == Family::Pool => pool::support(op, ins, outs),
        _ if op.family() == Family::Attention => attention::support(op, ins, outs),
        _ if op.family() == Family::Recurrent => recurrent::support(op, ins, outs),
        Op::TopK(_) | Op::SparseMatMul(_) | Op::MoeDispatch { .. } | Op::MoeCombine { .. } => routing::support(op, ins, outs),
        Op::Moe(_) => moe::support(op, ins, outs),
        _ if op.family() == Family::Norm => norm::support(op, ins, outs),
        _ if op.family() == Family::Reduce => reduce::support(op, ins, outs),
        Op::Transpose { .. } | Op::Expand { .. } | Op::Slice(_) | Op::Concat { .. } | Op::Split { .. } | Op::Pad { .. } | Op::Gather { .. } => {
            shape::support(op, ins, outs)
        }
        Op::Resize(_) => resize::support(op, ins, outs),
        Op::Reshape { .. } => true,
        _ => false,
    }
}

/// Lowers one node by its op family; `false` when no family takes it.
fn lower_op(l: &mut Lowerer, name: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    Ok(match op {
        Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. } | Op::Elementwise { .. } => {
            elementwise::lower(l, name, op, ins, outs)?
        }
        // Integer products keep the reference's loop nests (in i32 words on the GPU).
        Op::MatMul | Op::Gemm(_) | Op::FusedMatMul { .. } if l.target.is_gpu() && outs[0].scalar == Scalar::F32 => gpu::linalg(l, name, op, ins, outs)?,
        Op::Conv(_) | Op::FusedConv { .. } if l.target.is_gpu() => gpu::conv(l, name, op, ins, outs)?,
        Op::MatMul | Op::Gemm(_) | Op::FusedMatMul { .. } => linalg::lower(l, name, op, ins, outs)?,
        Op::Conv(_) | Op::FusedConv { .. } => conv::lower(l, name, op, ins, outs)?,
        _ if op.family() == Family::Pool => pool::lower(l, name, op, ins, outs)?,
        _ if op.family() == Family::Attention => attention::lower(l, name, op, ins, outs)?,
        _ if op.family() == Family::Recurrent => recurrent::lower(l, name, op, ins, outs)?,
        Op::TopK(_) | Op::SparseMatMul(_) | Op::MoeDispatch { .. } | Op::MoeCombine { .. } => {
            routing::lower(l, name, op, ins, outs)?
        }
        Op::Moe(_) => moe::lower(l, name, op, ins, outs)?,
        Op::Quantize(_) | Op::Dequantize | Op::QMatMul(_) => quant::lower(l, name, op, ins, outs)?,
        Op::QConv(..) => qconv::lower(l, name, op, ins, outs)?,
        _ if op.family() == Family::Norm => norm::lower(l, name, op, ins, outs)?,
        _ if op.family() == Family::Reduce => reduce::lower(l, name, op, ins, outs)?,
        Op::Transpose { .. }
        | Op::Expand { .. }
        | Op::Slice(_)
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Pad { .. }
        | Op::Gather { .. } => shape::lower(l, name, op, ins, outs)?,
        Op::Resize(_) => resize::lower(l, name, op, ins, outs)?,
        _ => false,
    })
}

/// A node with f16/bf16 operands: its 16-bit inputs converted to f32 temps, the
/// op lowered on f32 (as the reference computes), its outputs rounded back to
/// 16 bits (round to nearest even) — the storage scalars never meet arithmetic.
fn widened(l: &mut Lowerer, name: &str, op: &Op, ins: &[Operand], outs: &[Operand]) -> Result<bool, Error> {
    let wide = |l: &mut Lowerer, o: &Operand, what: &str| -> Result<Operand, Error> {
        let b = l.temp(&format!("{name}.{what}_f32"), Scalar::F32, o.len());
        Operand::new(b, o.ty.with_dtype(DType::F32)).map_err(|m| internal(name, &m))
    };
    let mut wide_ins = vec![];
    for (i, o) in ins.iter().enumerate() {
        if o.scalar.is_storage() {
            let w = wide(l, o, &format!("in{i}"))?;
            convert(l, name, o, &w);
            wide_ins.push(w);
        } else {
            wide_ins.push(o.clone());
        }
    }
    let mut wide_outs = vec![];
    for (i, o) in outs.iter().enumerate() {
        wide_outs.push(if o.scalar.is_storage() { wide(l, o, &format!("out{i}"))? } else { o.clone() });
    }
    if !lower_op(l, name, op, &wide_ins, &wide_outs)? {
        return Ok(false);
    }
    for (o, w) in outs.iter().zip(&wide_outs) {
        if o.scalar.is_storage() {
            convert(l, name, w, o);
        }
    }
    Ok(true)
}

/// A step converting every element of `from` into `to`'s scalar.
fn convert(l: &mut Lowerer, node: &str, from: &Operand, to: &Operand) {
    let mut kb = crate::kernel::KernelBuilder::new(l.kernel_name(node, &format!("to_{}", to.scalar.name())));
    let x = kb.buffer("x", from.scalar, from.len(), crate::kernel::Access::Read);
    let y = kb.buffer("y", to.scalar, to.len(), crate::kernel::Access::Write);
    let target = l.target.clone();
    let scalar = to.scalar;
    util::nest(&mut kb, &target, &[from.len() as usize], &[vec![1], vec![1]], |kb, idx| {
        kb.store(y, idx[1].clone(), crate::kernel::Expr::cast(scalar, crate::kernel::Expr::load(x, idx[0].clone())));
    });
    l.step(node, kb.finish(), vec![from.buf, to.buf]);
}

/// The first node `support` rejects, as an error (checks a graph before binding).
pub fn check(g: &Graph) -> Result<(), Error> {
    let order = g.topo_order().ok_or_else(|| internal(&g.name, "the graph has a cycle"))?;
    for id in order {
        let n = g.node(id);
        let ins: Vec<TensorType> = g.node_inputs(id).iter().filter_map(|v| g.value_type(*v).cloned()).collect();
        let refs: Vec<&TensorType> = ins.iter().collect();
        if !support(&n.op, &refs, &n.types) {
            return Err(unsupported(g, id));
        }
    }
    Ok(())
}

/// Lowers a graph whose input shapes are all bound (see [`Graph::bind`]).
pub fn lower(g: &Graph, target: &Target) -> Result<Program, Error> {
    check(g)?;
    let mut l = Lowerer { g, target: target.clone(), prog: Program { name: g.name.clone(), ..Program::default() }, values: HashMap::new() };
    let order = g.topo_order().ok_or_else(|| internal(&g.name, "the graph has a cycle"))?;
    for id in order {
        let n = g.node(id);
        let name = n.name().to_string();
        let shape_of = |t: &TensorType| t.shape.fixed().ok_or_else(|| internal(&name, &format!("unbound shape {t}")));
        let out_bufs: Vec<BufIdx> = match &n.op {
            Op::Input => {
                let t = &n.types[0];
                let len = shape_of(t)?.iter().product::<usize>() as u64;
                let scalar = Scalar::of(t.dtype).ok_or_else(|| unsupported(g, id))?;
                let b = l.new_buffer(&name, scalar, len, BufKind::Input);
                l.prog.inputs.push((name.clone(), b));
                vec![b]
            }
            Op::Param | Op::Const(_) => {
                let t: Arc<Tensor> = match &n.op {
                    Op::Const(t) => t.clone(),
                    _ => g.weight(&name).cloned().ok_or_else(|| internal(&name, "no weight for this param"))?,
                };
                let scalar = Scalar::of(t.dtype()).ok_or_else(|| unsupported(g, id))?;
                // The graph's tensor itself: no copy of the weights.
                let len = t.numel() as u64;
                vec![l.new_buffer(&name, scalar, len, BufKind::Const(Arc::new(crate::native::ConstBytes::shared(t))))]
            }
            Op::Reshape { .. } => {
                let x = l.operand(g.node_inputs(id)[0])?;
                vec![x.buf]
            }
            op => {
                let ins: Vec<Operand> = g.node_inputs(id).into_iter().map(|v| l.operand(v)).collect::<Result<_, _>>()?;
                let outs: Vec<Operand> = n
                    .types
                    .iter()
                    .zip(&n.names)
                    .map(|(t, nm)| {
                        let s = Scalar::of(t.dtype).ok_or_else(|| unsupported(g, id))?;
                        let len = shape_of(t)?.iter().product::<usize>() as u64;
                        let b = l.temp(nm, s, len);
                        Operand::new(b, t.clone()).map_err(|m| internal(&name, &m))
                    })
                    .collect::<Result<_, _>>()?;
                // Empty tensors: nothing to compute (and no kernel may touch an empty
                // buffer: Cranelift may hoist loads out of loops that never run).
                if outs.iter().all(|o| o.is_empty()) {
                    for (i, o) in outs.iter().enumerate() {
                        l.values.insert(Value { node: id, output: i }, o.buf);
                    }
                    continue;
                }
                // A product with nothing stored (or nothing to contract) is zeros.
                if matches!(op, Op::SparseMatMul(_)) && ins.iter().any(|o| o.is_empty()) {
                    sparse_cpu::zeros(&mut l, &name, &outs[0]);
                    for (i, o) in outs.iter().enumerate() {
                        l.values.insert(Value { node: id, output: i }, o.buf);
                    }
                    continue;
                }
                if ins.iter().any(|o| o.is_empty()) {
                    return Err(internal(&name, &format!("{} of an empty tensor is not compiled", op.name())));
                }
                // A tuned class runs with its own choices, this node only.
                let tuned = l.target.for_node(g, id).map(|t| std::mem::replace(&mut l.target, t));
                let done = if ins.iter().chain(&outs).any(|o| o.scalar.is_storage()) {
                    widened(&mut l, &name, op, &ins, &outs)
                } else {
                    lower_op(&mut l, &name, op, &ins, &outs)
                };
                if let Some(t) = tuned {
                    l.target = t;
                }
                let done = done?;
                if !done {
                    return Err(unsupported(g, id));
                }
                outs.iter().map(|o| o.buf).collect()
            }
        };
        for (i, b) in out_bufs.into_iter().enumerate() {
            l.values.insert(Value { node: id, output: i }, b);
        }
    }
    for &v in g.outputs() {
        let op = l.operand(v)?;
        l.prog.outputs.push(ProgOutput { name: g.value_name(v).to_string(), buf: op.buf, shape: op.shape.clone(), dtype: op.dtype });
    }
    drop_dead_constants(&mut l.prog);
    Ok(l.prog)
}

/// Empties the constants no step reads and no output is: a weight whose every
/// use read a packed or transformed copy made at compile time (ResNet-18: 47 MB
/// of weights, held once more as they were). Their buffers stay, of length 0,
/// so that indices do not move.
fn drop_dead_constants(p: &mut Program) {
    let mut used = vec![false; p.buffers.len()];
    for s in &p.steps {
        for b in &s.args {
            used[b.0] = true;
        }
    }
    for o in &p.outputs {
        used[o.buf.0] = true;
    }
    for (b, used) in p.buffers.iter_mut().zip(used) {
        if !used && matches!(b.kind, BufKind::Const(_)) {
            b.len = 0;
            b.kind = BufKind::Const(Arc::new(crate::native::ConstBytes::new(&[])));
        }
    }
}
