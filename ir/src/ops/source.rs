//! Sources: graph inputs, named parameters (weights) and inline constants. They have
//! no inputs; their types are declared rather than inferred. See `Op::Input`,
//! `Op::Param` and `Op::Const`.

use crate::tensor::Tensor;
use crate::types::TensorType;

/// Checks that an inline constant's value fits its declared type.
pub fn check_const(value: &Tensor, ty: &TensorType) -> Result<(), String> {
    if !ty.shape.is_fixed() {
        return Err(format!("a const needs a fixed shape, found {ty}"));
    }
    if !value.fits(ty) {
        return Err(format!("const value {}{:?} does not match its type {ty}", value.dtype(), value.shape()));
    }
    Ok(())
}
