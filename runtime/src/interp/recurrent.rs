//! Interpreter: the recurrent op family.

use super::Arg;
use smelt_ir::{Op, Tensor, TensorType};

pub(super) fn eval(op: &Op, _ins: &[Arg], _out: &[TensorType]) -> Result<Vec<Tensor>, String> {
    Err(format!("the interpreter does not run {} yet", op.name()))
}
