//! Tensor types: dtype, shape and optional quantization parameters.

use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Affine quantization parameters: `real = (q - zero_point) * scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Quant {
    /// One scale and zero point for the whole tensor.
    PerTensor { scale: f32, zero_point: i32 },
    /// One scale and zero point per index along `axis`.
    PerAxis { axis: usize, scale: Vec<f32>, zero_point: Vec<i32> },
}

impl Quant {
    /// Scale and zero point that apply at index `i` along the quantized axis.
    pub fn at(&self, i: usize) -> (f32, i32) {
        match self {
            Quant::PerTensor { scale, zero_point } => (*scale, *zero_point),
            Quant::PerAxis { scale, zero_point, .. } => (scale[i], zero_point[i]),
        }
    }

    pub fn axis(&self) -> Option<usize> {
        match self {
            Quant::PerTensor { .. } => None,
            Quant::PerAxis { axis, .. } => Some(*axis),
        }
    }
}

impl Eq for Quant {}
impl std::hash::Hash for Quant {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            Quant::PerTensor { scale, zero_point } => {
                scale.to_bits().hash(h);
                zero_point.hash(h);
            }
            Quant::PerAxis { axis, scale, zero_point } => {
                axis.hash(h);
                for s in scale {
                    s.to_bits().hash(h);
                }
                zero_point.hash(h);
            }
        }
    }
}

/// The type of a value: element type, shape, and quantization when the elements are
/// quantized integers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<Quant>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl Into<Shape>) -> TensorType {
        TensorType { dtype, shape: shape.into(), quant: None }
    }

    pub fn f32(shape: impl Into<Shape>) -> TensorType {
        TensorType::new(DType::F32, shape)
    }

    pub fn i64(shape: impl Into<Shape>) -> TensorType {
        TensorType::new(DType::I64, shape)
    }

    pub fn with_quant(mut self, q: Quant) -> TensorType {
        self.quant = Some(q);
        self
    }

    pub fn with_shape(&self, shape: impl Into<Shape>) -> TensorType {
        TensorType { dtype: self.dtype, shape: shape.into(), quant: None }
    }

    pub fn with_dtype(&self, dtype: DType) -> TensorType {
        TensorType { dtype, shape: self.shape.clone(), quant: None }
    }

    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    pub fn dims(&self) -> &[Dim] {
        &self.shape.0
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)?;
        match &self.quant {
            None => Ok(()),
            Some(Quant::PerTensor { scale, zero_point }) => {
                write!(f, " quant(scale = {scale:?}")?;
                if *zero_point != 0 {
                    write!(f, ", zero_point = {zero_point}")?;
                }
                f.write_str(")")
            }
            Some(Quant::PerAxis { axis, scale, zero_point }) => {
                write!(f, " quant(axis = {axis}, scale = [")?;
                for (i, s) in scale.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s:?}")?;
                }
                f.write_str("]")?;
                if zero_point.iter().any(|&z| z != 0) {
                    f.write_str(", zero_point = [")?;
                    for (i, z) in zero_point.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{z}")?;
                    }
                    f.write_str("]")?;
                }
                f.write_str(")")
            }
        }
    }
}
