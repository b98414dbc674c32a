//! Quantization: `quantize`, `dequantize`, and integer matmul/conv that accumulate
//! i8×i8 in i32 and optionally requantize. Quantization parameters live in the
//! tensor types (`i8[..] quant(scale = .., zero_point = ..)`).

use super::conv::Conv;
use super::linalg::matmul_shape;
use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::dtype::DType;
use crate::shape::Dim;
use crate::types::{Quant, TensorType};
use serde::{Deserialize, Serialize};

/// Attributes of `quantize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizeAttrs {
    pub dtype: DType,
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    /// Per-axis when set.
    pub axis: Option<i64>,
}

impl QuantizeAttrs {
    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![];
        if self.dtype != DType::I8 {
            v.push(("dtype", AttrValue::ident(self.dtype.name())));
        }
        let zp_zero = self.zero_point.iter().all(|&z| z == 0);
        if let Some(a) = self.axis {
            v.push(("axis", AttrValue::Int(a)));
            v.push(("scale", AttrValue::floats(&self.scale)));
            if !zp_zero {
                v.push(("zero_point", AttrValue::ints(&self.zero_point.iter().map(|&z| z as i64).collect::<Vec<_>>())));
            }
        } else {
            v.push(("scale", AttrValue::Float(self.scale[0])));
            if !zp_zero {
                v.push(("zero_point", AttrValue::Int(self.zero_point[0] as i64)));
            }
        }
        v
    }

    /// The quantization parameters this produces for an input of `rank`.
    pub fn quant(&self, rank: usize) -> Result<Quant, String> {
        Ok(match self.axis {
            None => Quant::PerTensor { scale: self.scale[0], zero_point: self.zero_point[0] },
            Some(a) => Quant::PerAxis {
                axis: crate::shape::normalize_axis(a, rank)
                    .ok_or_else(|| format!("quantize axis {a} is out of range for rank {rank}"))?,
                scale: self.scale.clone(),
                zero_point: self.zero_point.clone(),
            },
        })
    }
}

/// Output of an integer matmul/conv: i32 accumulators, or requantized i8/u8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requant {
    pub dtype: DType,
    pub scale: Option<f32>,
    pub zero_point: i32,
}

impl Requant {
    /// The i32 accumulators, not requantized.
    pub fn i32() -> Requant {
        Requant { dtype: DType::I32, scale: None, zero_point: 0 }
    }

    pub(crate) fn read(a: &mut AttrReader) -> Requant {
        let dtype = a.dtype("dtype", Some(DType::I32));
        if !matches!(dtype, DType::I32 | DType::I8 | DType::U8) {
            a.error(format!("{} output dtype must be i32, i8 or u8, found {dtype}", a.op()));
        }
        let scale = a.opt_float("scale");
        let zero_point = a.int("zero_point", Some(0)) as i32;
        if dtype != DType::I32 && scale.is_none() {
            a.error(format!("{} with dtype = {dtype} needs the output `scale`", a.op()));
        }
        if dtype == DType::I32 && (scale.is_some() || zero_point != 0) {
            a.error(format!("{} with dtype = i32 takes no `scale` or `zero_point`", a.op()));
        }
        if let Some(s) = scale
            && !(s > 0.0 && s.is_finite())
        {
            a.error(format!("{} output scale must be positive, found {s}", a.op()));
        }
        Requant { dtype, scale, zero_point }
    }

    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![];
        if self.dtype != DType::I32 {
            v.push(("dtype", AttrValue::ident(self.dtype.name())));
        }
        if let Some(s) = self.scale {
            v.push(("scale", AttrValue::Float(s)));
        }
        if self.zero_point != 0 {
            v.push(("zero_point", AttrValue::Int(self.zero_point as i64)));
        }
        v
    }

    fn out_type(&self, shape: crate::Shape) -> TensorType {
        let t = TensorType::new(self.dtype, shape);
        match self.scale {
            Some(scale) if self.dtype != DType::I32 => {
                t.with_quant(Quant::PerTensor { scale, zero_point: self.zero_point })
            }
            _ => t,
        }
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    Some(match name {
        "quantize" => {
            let dtype = a.dtype("dtype", Some(DType::I8));
            if !dtype.is_quantizable() {
                a.error(format!("quantize dtype must be i8 or u8, found {dtype}"));
            }
            let axis = a.opt_int("axis");
            let scale = a.float_or_floats("scale", None);
            let mut zero_point: Vec<i32> =
                a.int_or_ints("zero_point", Some(vec![0; scale.len().max(1)])).into_iter().map(|z| z as i32).collect();
            if scale.is_empty() || scale.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
                a.error(format!("quantize scales must be positive, found {scale:?}"));
            }
            if zero_point.len() == 1 && scale.len() > 1 && zero_point[0] == 0 {
                zero_point = vec![0; scale.len()];
            }
            if zero_point.len() != scale.len() {
                a.error("quantize needs as many zero points as scales");
            }
            if axis.is_none() && scale.len() > 1 {
                a.error("quantize with several scales needs `axis`");
            }
            if let Some((lo, hi)) = dtype.int_range()
                && zero_point.iter().any(|&z| (z as i64) < lo || (z as i64) > hi)
            {
                a.error(format!("quantize zero points {zero_point:?} do not fit {dtype}"));
            }
            let scale = if scale.is_empty() { vec![1.0] } else { scale };
            let zero_point = if zero_point.len() == scale.len() { zero_point } else { vec![0; scale.len()] };
            Op::Quantize(QuantizeAttrs { dtype, scale, zero_point, axis })
        }
        "dequantize" => Op::Dequantize,
        "qmatmul" => Op::QMatMul(Requant::read(a)),
        "qconv1d" => Op::QConv(Conv::read(1, a), Requant::read(a)),
        "qconv2d" => Op::QConv(Conv::read(2, a), Requant::read(a)),
        "qconv3d" => Op::QConv(Conv::read(3, a), Requant::read(a)),
        _ => return None,
    })
}

fn want_quant(op: &str, what: &str, t: &TensorType, per_axis: Option<usize>) -> Result<(), String> {
    let ok = t.dtype.is_quantizable()
        && match &t.quant {
            Some(Quant::PerTensor { .. }) => true,
            Some(Quant::PerAxis { axis, scale, .. }) => {
                Some(*axis) == per_axis && t.dims().get(*axis).and_then(Dim::fixed) == Some(scale.len() as u64)
            }
            None => false,
        };
    if !ok {
        let axis = per_axis.map(|a| format!(" (or per axis {a})")).unwrap_or_default();
        return Err(format!("{op} expects {what} quantized to i8 or u8 per tensor{axis}, found {t}"));
    }
    Ok(())
}

pub(super) fn infer(op: &Op, ins: &[&TensorType]) -> Result<TensorType, String> {
    let x = ins[0];
    match op {
        Op::Quantize(q) => {
            want_float("quantize", "input", x)?;
            let quant = q.quant(x.rank())?;
            if let Quant::PerAxis { axis, scale, .. } = &quant
                && x.dims()[*axis].fixed() != Some(scale.len() as u64)
            {
                return Err(format!("quantize has {} scales for axis {axis} of {x}", scale.len()));
            }
            Ok(x.with_dtype(q.dtype).with_quant(quant))
        }
        Op::Dequantize => {
            if x.quant.is_none() {
                return Err(format!("dequantize expects a quantized input, found {x}"));
            }
            Ok(x.with_dtype(DType::F32))
        }
        Op::QMatMul(r) => {
            let b = ins[1];
            want_quant("qmatmul", "a", x, None)?;
            if b.rank() != 2 {
                return Err(format!("qmatmul expects 2-d b [K, N], found {b}"));
            }
            want_quant("qmatmul", "b", b, Some(1))?;
            let shape = matmul_shape(&x.shape, &b.shape).map_err(|e| format!("q{e}"))?;
            if let Some(bias) = ins.get(2)
                && !(bias.dtype == DType::I32 && bias.rank() == 1 && bias.dims()[0] == b.dims()[1])
            {
                return Err(format!("qmatmul expects bias i32[{}], found {bias}", b.dims()[1]));
            }
            Ok(r.out_type(shape))
        }
        Op::QConv(c, r) => {
            let name = op.name();
            want_quant(name, "input", x, None)?;
            want_quant(name, "weights", ins[1], Some(0))?;
            let t = c.infer(ins, true)?;
            Ok(r.out_type(t.shape))
        }
        _ => {
            let _ = want_float;
            unreachable!("quant::infer on {}", op.name())
        }
    }
}
