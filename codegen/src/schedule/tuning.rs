//! Tuned choices of one machine: for each *class* of GEMM-shaped node (a conv or
//! matmul of given shapes and attributes, [`class_key`]), how it runs — the conv
//! method (Winograd, output rows, im2col GEMM) and the GEMM's cache blocks (KC,
//! MC, NC). `smelt tune` measures the candidates on the host and keeps the
//! winners ([`Tuning`]); lowering looks each node's class up and applies its
//! [`Choice`] on the target for that node only ([`Target::for_node`]). A class
//! without an entry keeps the target's analytic defaults.
//!
//! A choice changes how a node is computed, never what: every method and every
//! blocking computes the same products (checked against the interpreter in the
//! numerical suite with odd blockings, and by `smelt tune` before it keeps a
//! result).

use super::{Processor, Target};
use smelt_ir::{Graph, NodeId, Op};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How a convolution runs on the CPU (where it applies; a method that does not
/// apply to a conv falls to the next: Winograd → rows → GEMM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvMethod {
    /// Winograd F(2×2, 3×3) (3×3 unit-stride convs with constant weights).
    Winograd,
    /// Winograd F(4×4, 3×3): fewer multiplies, more rounding.
    Winograd4,
    /// Output positions as the GEMM's rows, the input read in place.
    Rows,
    /// im2col (or the input itself for 1×1) as the GEMM's B operand.
    Gemm,
}

impl ConvMethod {
    pub const ALL: [ConvMethod; 4] = [ConvMethod::Winograd, ConvMethod::Winograd4, ConvMethod::Rows, ConvMethod::Gemm];

    pub fn name(self) -> &'static str {
        match self {
            ConvMethod::Winograd => "winograd",
            ConvMethod::Winograd4 => "winograd4",
            ConvMethod::Rows => "rows",
            ConvMethod::Gemm => "gemm",
        }
    }

    pub fn from_name(s: &str) -> Option<ConvMethod> {
        ConvMethod::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// The tuned schedule of one node class; `None` fields keep the target's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Choice {
    pub conv: Option<ConvMethod>,
    pub kc: Option<usize>,
    pub mc: Option<usize>,
    pub nc: Option<usize>,
    /// Run the node's kernels on one thread (with `--threads` > 1: where the
    /// fork and join cost more than the split saves).
    pub serial: Option<bool>,
}

impl Choice {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Choice::default()
    }

    /// `t` with this choice applied. Blocks are clamped to what the lowering
    /// handles (at least one panel); nothing here can change a result.
    pub fn apply(&self, t: &Target) -> Target {
        let mut t = t.clone();
        if t.processor != Processor::Cpu {
            return t;
        }
        match self.conv {
            Some(ConvMethod::Winograd) => (t.winograd, t.winograd_tile, t.conv_rows) = (true, 2, true),
            Some(ConvMethod::Winograd4) => (t.winograd, t.winograd_tile, t.conv_rows) = (true, 4, true),
            Some(ConvMethod::Rows) => (t.winograd, t.conv_rows, t.conv_rows_pointwise) = (false, true, true),
            Some(ConvMethod::Gemm) => (t.winograd, t.conv_rows) = (false, false),
            None => {}
        }
        if let Some(kc) = self.kc {
            t.kc = kc.clamp(1, 1 << 16);
        }
        if let Some(mc) = self.mc {
            t.mc = mc.clamp(t.mr, 1 << 16);
        }
        if let Some(nc) = self.nc {
            t.nc = nc.clamp(t.nr, 1 << 20);
        }
        if self.serial == Some(true) {
            // Past any tensor's size, and still safe to scale (the GEMM's
            // threshold is 64 times this).
            t.parallel_min_elems = 1 << 48;
        }
        t
    }

    /// The `conv=rows kc=256` form (empty when nothing is set).
    pub fn describe(&self) -> String {
        let mut s = Vec::new();
        if let Some(c) = self.conv {
            s.push(format!("conv={}", c.name()));
        }
        for (k, v) in [("kc", self.kc), ("mc", self.mc), ("nc", self.nc)] {
            if let Some(v) = v {
                s.push(format!("{k}={v}"));
            }
        }
        if self.serial == Some(true) {
            s.push("serial".into());
        }
        s.join(" ")
    }
}

/// The choices of one machine (and backend and thread count), by node class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tuning {
    pub choices: BTreeMap<String, Choice>,
    /// The rates this backend reached on the machine (one thread), for the cost
    /// models: the optimizer's and the MoE strategy's.
    pub calibration: Option<Calibration>,
}

/// Rates measured on one core with the backend's own kernels (`smelt tune`):
/// integers, so that a tuning stays a hashable key of compiled plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Calibration {
    /// A 256×512×512 f32 GEMM (constant B), MFLOP/s.
    pub gemm_mflops: u64,
    /// An elementwise add over 3 × 32 MiB, MB/s moved.
    pub stream_mbs: u64,
    /// One tiny kernel's call, ns.
    pub launch_ns: u64,
}

/// Which of a tuning's fields the caller's explicit options override (an
/// explicit `--schedule kc=…` or `winograd=off` wins over a tuned entry).
#[derive(Debug, Clone, Copy, Default)]
pub struct Forced {
    pub conv: bool,
    pub kc: bool,
    pub mc: bool,
    pub nc: bool,
}

impl Tuning {
    pub fn get(&self, key: &str) -> Option<&Choice> {
        self.choices.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.choices.is_empty() && self.calibration.is_none()
    }

    /// This tuning without the fields `forced` names (entries left empty go).
    pub fn without(&self, forced: Forced) -> Tuning {
        let choices = self
            .choices
            .iter()
            .map(|(k, c)| {
                let c = Choice {
                    conv: c.conv.filter(|_| !forced.conv),
                    kc: c.kc.filter(|_| !forced.kc),
                    mc: c.mc.filter(|_| !forced.mc),
                    nc: c.nc.filter(|_| !forced.nc),
                    serial: c.serial,
                };
                (k.clone(), c)
            })
            .filter(|(_, c)| !c.is_empty())
            .collect();
        Tuning { choices, calibration: self.calibration }
    }
}

impl Target {
    /// The schedule node `id` of `g` is lowered with: the target with the tuned
    /// choice of the node's class applied, if there is one.
    pub fn for_node(&self, g: &Graph, id: NodeId) -> Option<Target> {
        let tuning = self.tuning.as_ref().filter(|t| !t.choices.is_empty())?;
        let choice = tuning.get(&class_key(g, id)?)?;
        Some(choice.apply(self))
    }
}

/// The class of a node whose schedule can be tuned — convs and matmuls (float
/// and quantized), attention and recurrences — as a readable key: the op, its
/// operands' types (`const` for constant weights) and the attributes that shape
/// the work, not its epilogue. Nodes of one class run the same kernels. `None`:
/// nothing to tune.
pub fn class_key(g: &Graph, id: NodeId) -> Option<String> {
    let n = g.node(id);
    let (what, conv) = match &n.op {
        Op::Conv(c) | Op::FusedConv { conv: c, .. } => ("conv", Some(c)),
        Op::QConv(c, _) => ("qconv", Some(c)),
        Op::MatMul | Op::FusedMatMul { .. } => ("matmul", None),
        Op::Gemm(_) => ("gemm", None),
        Op::QMatMul(_) => ("qmatmul", None),
        Op::Attention(_) => ("attention", None),
        Op::Lstm(_) => ("lstm", None),
        Op::Gru(_) => ("gru", None),
        _ => return None,
    };
    let mut key = what.to_string();
    let operands = if matches!(n.op, Op::Attention(_) | Op::Lstm(_) | Op::Gru(_)) { 3 } else { 2 };
    for v in g.node_inputs(id).into_iter().take(operands) {
        let t = g.value_type(v)?;
        let dims: Vec<String> = t.shape.fixed()?.iter().map(|d| d.to_string()).collect();
        let konst = matches!(g.node(v.node).op, Op::Const(_) | Op::Param);
        let _ = write!(key, " {}{}[{}]", if konst { "const " } else { "" }, t.dtype, dims.join(","));
    }
    if let Some(c) = conv {
        let j = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        let _ = write!(key, " stride={} pad={} dilation={} groups={}", j(&c.stride), j(&c.pad), j(&c.dilation), c.groups);
    }
    match &n.op {
        Op::Gemm(a) => {
            let _ = write!(key, " trans={}{}", u8::from(a.trans_a), u8::from(a.trans_b));
        }
        // The attributes that change the work (heads, masks, directions).
        Op::Attention(_) | Op::Lstm(_) | Op::Gru(_) => {
            for (k, v) in n.op.attrs() {
                let _ = write!(key, " {k}={v}");
            }
        }
        _ => {}
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::text::parse;

    #[test]
    fn keys_name_shapes_and_attributes_not_epilogues() {
        let g = parse(
            "graph g(x: f32[1, 8, 9, 9], a: f32[3, 7]) -> (y, z) {\n  w = param f32[4, 8, 3, 3]\n  c = conv2d(x, w) {pad = [1, 1, 1, 1]}\n  y = relu(c)\n  m = param f32[7, 5]\n  z = matmul(a, m)\n}\n",
        )
        .expect("a graph");
        let keys: Vec<String> = g.topo_order().unwrap().into_iter().filter_map(|id| class_key(&g, id)).collect();
        assert_eq!(
            keys,
            [
                "conv f32[1,8,9,9] const f32[4,8,3,3] stride=1,1 pad=1,1,1,1 dilation=1,1 groups=1",
                "matmul f32[3,7] const f32[7,5]"
            ]
        );
    }

    #[test]
    fn forced_fields_drop_out_and_choices_clamp() {
        let c = Choice { conv: Some(ConvMethod::Rows), kc: Some(0), mc: Some(1), nc: None, serial: None };
        let t = c.apply(&Target::llvm(512));
        assert_eq!((t.winograd, t.conv_rows, t.kc, t.mc, t.nc), (false, true, 1, t.mr, Target::llvm(512).nc));
        let tu = Tuning { choices: BTreeMap::from([("a".into(), c), ("b".into(), Choice { kc: Some(64), ..Choice::default() })]), calibration: None };
        let kept = tu.without(Forced { kc: true, ..Forced::default() });
        assert_eq!(kept.choices.len(), 1);
        assert_eq!(kept.get("a").unwrap().kc, None);
        assert_eq!(c.describe(), "conv=rows kc=0 mc=1");
    }

    #[test]
    fn a_calibration_sets_the_moe_cost_rates() {
        let t = Target::llvm(256);
        let nominal = t.moe_machine();
        let c = Calibration { gemm_mflops: 40_000, stream_mbs: 5_000, launch_ns: 100 };
        let tuned = Target { tuning: Some(std::sync::Arc::new(Tuning { choices: BTreeMap::new(), calibration: Some(c) })), ..t };
        let m = tuned.moe_machine();
        assert_eq!((m.gemm_flops, m.bandwidth), (40e9, 5e9));
        assert_ne!(nominal.gemm_flops, m.gemm_flops);
    }
}
