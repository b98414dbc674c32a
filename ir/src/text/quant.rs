//! The `quant(scale = …, zero_point = …, axis = …)` parameters of a type in
//! model text, checked against the type.

use crate::attr::{Attr, AttrReader};
use crate::error::Diagnostic;
use crate::types::{Quant, TensorType};

/// Reads `quant(...)` parameters for a type.
pub(super) fn quant_from_attrs(attrs: &[Attr], ty: &TensorType) -> Result<Quant, Vec<Diagnostic>> {
    let mut r = AttrReader::new("quant", attrs);
    let axis = r.opt_int("axis");
    let scale = r.float_or_floats("scale", None);
    let zp: Vec<i32> = r.int_or_ints("zero_point", Some(vec![0; scale.len().max(1)])).into_iter().map(|z| z as i32).collect();
    let mut errs = r.finish();
    if !ty.dtype.is_quantizable() {
        errs.push(Diagnostic::new(format!("only i8 and u8 tensors are quantized, found {}", ty.dtype)));
    }
    if scale.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        errs.push(Diagnostic::new(format!("quantization scales must be positive, found {scale:?}")));
    }
    if let Some((lo, hi)) = ty.dtype.int_range()
        && zp.iter().any(|&z| (z as i64) < lo || (z as i64) > hi)
    {
        errs.push(Diagnostic::new(format!("zero points {zp:?} do not fit {}", ty.dtype)));
    }
    let q = match axis {
        None => {
            if scale.len() != 1 || zp.len() != 1 {
                errs.push(Diagnostic::new("per-tensor quantization takes one scale and one zero point (give `axis` for per-axis)"));
            }
            Quant::PerTensor { scale: scale.first().copied().unwrap_or(1.0), zero_point: zp.first().copied().unwrap_or(0) }
        }
        Some(a) => {
            let zp = if zp.len() == 1 && scale.len() > 1 && zp[0] == 0 { vec![0; scale.len()] } else { zp };
            let ax = crate::shape::normalize_axis(a, ty.rank());
            match ax {
                None => errs.push(Diagnostic::new(format!("quantization axis {a} is out of range for {}", ty.shape))),
                Some(ax) => {
                    if ty.dims()[ax].fixed() != Some(scale.len() as u64) || zp.len() != scale.len() {
                        errs.push(Diagnostic::new(format!(
                            "per-axis quantization along axis {ax} of {} needs {} scales and zero points, found {} and {}",
                            ty.shape,
                            ty.dims()[ax],
                            scale.len(),
                            zp.len()
                        )));
                    }
                }
            }
            Quant::PerAxis { axis: ax.unwrap_or(0), scale, zero_point: zp }
        }
    };
    if errs.is_empty() { Ok(q) } else { Err(errs) }
}
