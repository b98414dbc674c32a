//! Host tensors: concrete values for constants, weights, inputs and outputs.

use crate::dtype::DType;
use crate::shape::Shape;
use crate::types::TensorType;
use half::{bf16, f16};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The elements of a tensor, in row-major order.
#[derive(Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.dtype(), self.len())
    }
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F16(v) => v.len(),
            Data::BF16(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element as f32 (integers convert exactly where f32 can hold them; bools
    /// are 0 and 1).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
        }
    }

    /// Every element as i64 (floats truncate toward zero).
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F16(v) => v.iter().map(|x| x.to_f32() as i64).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f32() as i64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
            Data::Bool(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    /// Every element as bool (`!= 0`).
    pub fn to_bool(&self) -> Vec<bool> {
        match self {
            Data::Bool(v) => v.clone(),
            other => other.to_f32().iter().map(|&x| x != 0.0).collect(),
        }
    }

    /// Builds data of `dtype` from f32 values: floats round to nearest, integers
    /// truncate toward zero and saturate, bools are `x != 0`.
    pub fn from_f32(dtype: DType, v: &[f32]) -> Data {
        match dtype {
            DType::F32 => Data::F32(v.to_vec()),
            DType::F16 => Data::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::BF16 => Data::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::I8 => Data::I8(v.iter().map(|&x| x as i8).collect()),
            DType::U8 => Data::U8(v.iter().map(|&x| x as u8).collect()),
            DType::I32 => Data::I32(v.iter().map(|&x| x as i32).collect()),
            DType::I64 => Data::I64(v.iter().map(|&x| x as i64).collect()),
            DType::Bool => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
        }
    }

    /// Builds data of `dtype` from i64 values: integers saturate to the dtype's range.
    pub fn from_i64(dtype: DType, v: &[i64]) -> Data {
        let sat = |x: i64| -> i64 {
            let (lo, hi) = dtype.int_range().unwrap_or((i64::MIN, i64::MAX));
            x.clamp(lo, hi)
        };
        match dtype {
            DType::I8 => Data::I8(v.iter().map(|&x| sat(x) as i8).collect()),
            DType::U8 => Data::U8(v.iter().map(|&x| sat(x) as u8).collect()),
            DType::I32 => Data::I32(v.iter().map(|&x| sat(x) as i32).collect()),
            DType::I64 => Data::I64(v.to_vec()),
            DType::Bool => Data::Bool(v.iter().map(|&x| x != 0).collect()),
            f => Data::from_f32(f, &v.iter().map(|&x| x as f32).collect::<Vec<_>>()),
        }
    }

    /// Zeros of a dtype.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F16 => Data::F16(vec![f16::ZERO; n]),
            DType::BF16 => Data::BF16(vec![bf16::ZERO; n]),
            DType::I8 => Data::I8(vec![0; n]),
            DType::U8 => Data::U8(vec![0; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::Bool => Data::Bool(vec![false; n]),
        }
    }

    /// The elements at `pos`, in order (any dtype). Every position must be inside
    /// the data (a broken invariant of the caller panics).
    pub fn take(&self, pos: &[usize]) -> Data {
        fn t<T: Copy>(v: &[T], pos: &[usize]) -> Vec<T> {
            pos.iter().map(|&p| v[p]).collect()
        }
        match self {
            Data::F32(v) => Data::F32(t(v, pos)),
            Data::F16(v) => Data::F16(t(v, pos)),
            Data::BF16(v) => Data::BF16(t(v, pos)),
            Data::I8(v) => Data::I8(t(v, pos)),
            Data::U8(v) => Data::U8(t(v, pos)),
            Data::I32(v) => Data::I32(t(v, pos)),
            Data::I64(v) => Data::I64(t(v, pos)),
            Data::Bool(v) => Data::Bool(t(v, pos)),
        }
    }

    /// Little-endian bytes (the safetensors layout).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::U8(v) => v.clone(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }

    /// Reads little-endian bytes; `None` when the length does not fit the dtype.
    pub fn from_le_bytes(dtype: DType, b: &[u8]) -> Option<Data> {
        if !b.len().is_multiple_of(dtype.size()) {
            return None;
        }
        fn chunks<const K: usize, T>(b: &[u8], f: impl Fn([u8; K]) -> T) -> Vec<T> {
            b.chunks_exact(K).map(|c| f(c.try_into().expect("exact chunk"))).collect()
        }
        Some(match dtype {
            DType::F32 => Data::F32(chunks(b, f32::from_le_bytes)),
            DType::F16 => Data::F16(chunks(b, f16::from_le_bytes)),
            DType::BF16 => Data::BF16(chunks(b, bf16::from_le_bytes)),
            DType::I8 => Data::I8(b.iter().map(|&x| x as i8).collect()),
            DType::U8 => Data::U8(b.to_vec()),
            DType::I32 => Data::I32(chunks(b, i32::from_le_bytes)),
            DType::I64 => Data::I64(chunks(b, i64::from_le_bytes)),
            DType::Bool => {
                if b.iter().any(|&x| x > 1) {
                    return None;
                }
                Data::Bool(b.iter().map(|&x| x != 0).collect())
            }
        })
    }
}

/// A tensor with a concrete shape.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "TensorRepr", try_from = "TensorRepr")]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({}{:?})", self.dtype(), self.shape)
    }
}

/// A tensor whose element count does not match its shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found} elements do not fill shape {shape:?} ({expected} elements)")]
pub struct ShapeMismatch {
    pub shape: Vec<usize>,
    pub expected: usize,
    pub found: usize,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, ShapeMismatch> {
        let expected = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
        if expected != data.len() {
            return Err(ShapeMismatch { shape, expected, found: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, Data::F32(v))
    }

    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, Data::I64(v))
    }

    pub fn scalar_f32(x: f32) -> Tensor {
        Tensor { shape: vec![], data: Data::F32(vec![x]) }
    }

    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor { shape, data: Data::zeros(dtype, n) }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &Data {
        &self.data
    }

    pub fn into_data(self) -> Data {
        self.data
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The tensor type of this value (fixed shape, no quantization).
    pub fn tensor_type(&self) -> TensorType {
        TensorType::new(self.dtype(), Shape::from(&self.shape[..]))
    }

    /// Whether this value can stand for a value of type `ty` (dtype and fixed shape
    /// agree; symbolic dims match anything).
    pub fn fits(&self, ty: &TensorType) -> bool {
        ty.dtype == self.dtype()
            && ty.shape.rank() == self.rank()
            && ty.shape.0.iter().zip(&self.shape).all(|(d, &n)| d.fixed().is_none_or(|f| f as usize == n))
    }

    pub fn to_f32(&self) -> Vec<f32> {
        self.data.to_f32()
    }

    pub fn to_i64(&self) -> Vec<i64> {
        self.data.to_i64()
    }

    /// A short human summary: shape, dtype, and min/mean/max of the first values.
    pub fn summary(&self) -> String {
        let v = self.to_f32();
        if v.is_empty() {
            return "empty".into();
        }
        let min = v.iter().copied().fold(f32::INFINITY, f32::min);
        let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
        format!(
            "min {min:.4} mean {mean:.4} max {max:.4} [{}{}]",
            head.join(", "),
            if v.len() > 6 { ", …" } else { "" }
        )
    }
}

/// The serde form of a tensor: dtype, shape and the values as JSON numbers (floats
/// that are not finite as strings; integers exact), so that JSON stays readable.
#[derive(Serialize, Deserialize)]
struct TensorRepr {
    dtype: DType,
    shape: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    floats: Option<Vec<crate::serde_float::Repr>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ints: Option<Vec<i64>>,
}

impl From<Tensor> for TensorRepr {
    fn from(t: Tensor) -> TensorRepr {
        let (floats, ints) = if t.dtype().is_float() {
            (Some(t.to_f32().into_iter().map(crate::serde_float::to_repr).collect()), None)
        } else {
            (None, Some(t.to_i64()))
        };
        TensorRepr { dtype: t.dtype(), shape: t.shape, floats, ints }
    }
}

impl TryFrom<TensorRepr> for Tensor {
    type Error = String;
    fn try_from(r: TensorRepr) -> Result<Tensor, String> {
        let data = match (r.floats, r.ints) {
            (Some(fl), None) if r.dtype.is_float() => {
                let mut f = Vec::with_capacity(fl.len());
                for v in fl {
                    f.push(crate::serde_float::from_repr::<serde::de::value::Error>(v).map_err(|e| e.to_string())?);
                }
                Data::from_f32(r.dtype, &f)
            }
            (None, Some(i)) if !r.dtype.is_float() => Data::from_i64(r.dtype, &i),
            _ => return Err(format!("a {} tensor needs `{}` values", r.dtype, if r.dtype.is_float() { "floats" } else { "ints" })),
        };
        Tensor::new(r.shape, data).map_err(|e| e.to_string())
    }
}
