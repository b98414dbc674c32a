//! Convolution (`conv1d`, `conv2d`, `conv3d`): stride, explicit begin/end padding, dilation
//! and groups. Also the shared output-size arithmetic that pooling uses.

use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

/// Attributes of a convolution with `rank` spatial dims.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv {
    pub stride: Vec<usize>,
    /// Begin pads for each spatial dim, then end pads.
    pub pad: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
}

impl Conv {
    /// Stride 1, no padding, no dilation, one group.
    pub fn new(rank: usize) -> Conv {
        Conv { stride: vec![1; rank], pad: vec![0; 2 * rank], dilation: vec![1; rank], groups: 1 }
    }

    pub fn rank(&self) -> usize {
        self.stride.len()
    }

    pub(crate) fn read(rank: usize, a: &mut AttrReader) -> Conv {
        let c = Conv {
            stride: a.usizes("stride", Some(vec![1; rank])),
            pad: a.usizes("pad", Some(vec![0; 2 * rank])),
            dilation: a.usizes("dilation", Some(vec![1; rank])),
            groups: a.usize("groups", Some(1)),
        };
        if c.stride.len() != rank || c.stride.contains(&0) {
            a.error(format!("{} expects `stride` of {rank} positive ints, found {:?}", a.op(), c.stride));
        }
        if c.pad.len() != 2 * rank {
            a.error(format!("{} expects `pad` of {} ints (begins, then ends), found {:?}", a.op(), 2 * rank, c.pad));
        }
        if c.dilation.len() != rank || c.dilation.contains(&0) {
            a.error(format!("{} expects `dilation` of {rank} positive ints, found {:?}", a.op(), c.dilation));
        }
        if c.groups == 0 {
            a.error(format!("{} expects `groups` ≥ 1", a.op()));
        }
        let mut c = c;
        c.stride.resize(rank, 1);
        c.pad.resize(2 * rank, 0);
        c.dilation.resize(rank, 1);
        c.groups = c.groups.max(1);
        c
    }

    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let r = self.rank();
        let mut v = vec![];
        if self.stride != vec![1; r] {
            v.push(("stride", AttrValue::usizes(&self.stride)));
        }
        if self.pad != vec![0; 2 * r] {
            v.push(("pad", AttrValue::usizes(&self.pad)));
        }
        if self.dilation != vec![1; r] {
            v.push(("dilation", AttrValue::usizes(&self.dilation)));
        }
        if self.groups != 1 {
            v.push(("groups", AttrValue::Int(self.groups as i64)));
        }
        v
    }

    /// Checks x, w (and bias) and gives the output type. With `quantized`, the
    /// dtype checks are left to the caller.
    pub(crate) fn infer(&self, ins: &[&TensorType], quantized: bool) -> Result<TensorType, String> {
        let r = self.rank();
        let name = if quantized { format!("qconv{r}d") } else { format!("conv{r}d") };
        let (x, w) = (ins[0], ins[1]);
        if !quantized {
            want_float(&name, "input", x)?;
            if w.dtype != x.dtype || w.quant.is_some() {
                return Err(format!("{name} expects weights of dtype {}, found {w}", x.dtype));
            }
        }
        if x.rank() != r + 2 {
            return Err(format!("{name} expects {}-d input, found {x}", r + 2));
        }
        if w.rank() != r + 2 {
            return Err(format!("{name} expects {}-d weights, found {w}", r + 2));
        }
        let c = &x.dims()[1];
        let m = w.dims()[0].fixed().ok_or_else(|| format!("{name} needs fixed output channels, found {w}"))?;
        let cg = w.dims()[1].fixed().ok_or_else(|| format!("{name} needs fixed weight dims, found {w}"))?;
        let g = self.groups as u64;
        if m % g != 0 {
            return Err(format!("{name}: {m} output channels do not split into {g} groups"));
        }
        match c {
            Dim::Fixed(c) if *c == cg * g => {}
            _ => {
                return Err(format!(
                    "{name} with groups = {g} expects {} input channels for weights {w}, found {x}",
                    cg * g
                ));
            }
        }
        if let Some(b) = ins.get(2) {
            let ok = b.rank() == 1 && b.dims()[0] == Dim::Fixed(m) && (quantized || b.dtype == x.dtype);
            if !ok && !quantized {
                return Err(format!("{name} expects bias {}[{m}], found {b}", x.dtype));
            }
            if quantized && !(b.rank() == 1 && b.dims()[0] == Dim::Fixed(m) && b.dtype == crate::DType::I32) {
                return Err(format!("{name} expects bias i32[{m}], found {b}"));
            }
        }
        let mut out = vec![x.dims()[0].clone(), Dim::Fixed(m)];
        for i in 0..r {
            let k = w.dims()[2 + i].fixed().ok_or_else(|| format!("{name} needs a fixed kernel, found {w}"))?;
            out.push(window_out(
                &name,
                &x.dims()[2 + i],
                k,
                self.stride[i],
                self.pad[i],
                self.pad[r + i],
                self.dilation[i],
                false,
            )?);
        }
        Ok(TensorType::new(x.dtype, Shape(out)))
    }
}

/// The output size of a sliding window over a dim of size `d`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn window_out(
    op: &str,
    d: &Dim,
    k: u64,
    stride: usize,
    pb: usize,
    pe: usize,
    dilation: usize,
    ceil: bool,
) -> Result<Dim, String> {
    if k == 0 {
        return Err(format!("{op}: the window is empty"));
    }
    let too_big = || format!("{op}: sizes overflow");
    let span = (dilation as u64).checked_mul(k - 1).and_then(|x| x.checked_add(1)).ok_or_else(too_big)?;
    match d {
        Dim::Fixed(n) => {
            let padded = n.checked_add(pb as u64).and_then(|x| x.checked_add(pe as u64)).ok_or_else(too_big)?;
            if padded < span {
                return Err(format!("{op}: window of {span} does not fit in {n} (+{pb}+{pe} padding)"));
            }
            let s = stride as u64;
            if s == 0 {
                return Err(format!("{op}: stride must be positive"));
            }
            let q = padded - span;
            let mut o = if ceil { q.div_ceil(s) + 1 } else { q / s + 1 };
            // As ONNX: with ceil_mode the last window must start inside the input or
            // its begin padding.
            if ceil && (o - 1) * s >= n + pb as u64 {
                o -= 1;
            }
            Ok(Dim::Fixed(o))
        }
        Dim::Sym(_) if stride == 1 && (pb as u64).checked_add(pe as u64) == Some(span - 1) => Ok(d.clone()),
        Dim::Sym(_) => Err(format!(
            "{op} cannot compute its output size from symbolic dim {d}; bind it to a size first"
        )),
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    match name {
        "conv1d" => Some(Op::Conv(Conv::read(1, a))),
        "conv2d" => Some(Op::Conv(Conv::read(2, a))),
        "conv3d" => Some(Op::Conv(Conv::read(3, a))),
        _ => None,
    }
}
