//! A canonical text key per op: its name and non-default attributes (and, for an
//! inline constant, its type and values). Two ops compute the same function exactly
//! when their keys are equal, so the key serves CSE and the e-graph's hashconsing.

use smelt_ir::Op;
use smelt_ir::attr::AttrValue;

/// The key of an op: `relu`, `conv2d{pad=[1, 1, 1, 1]}`, `const f32[2] [1.0, 2.0]`.
pub fn op_key(op: &Op) -> String {
    if let Op::Const(t) = op {
        let vals: Vec<String> = match t.dtype() {
            d if d.is_float() => t.to_f32().iter().map(|&f| AttrValue::Float(f).to_string()).collect(),
            _ => t.to_i64().iter().map(|i| i.to_string()).collect(),
        };
        return format!("const {}{:?} [{}]", t.dtype(), t.shape(), vals.join(", "));
    }
    let attrs = op.attrs();
    if attrs.is_empty() {
        return op.name().to_string();
    }
    let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}{{{}}}", op.name(), a.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::ops::{Conv, UnaryOp};
    use smelt_ir::Tensor;
    use std::sync::Arc;

    #[test]
    fn keys_name_attributes_and_values() {
        assert_eq!(op_key(&Op::Unary(UnaryOp::Relu)), "relu");
        let mut c = Conv::new(2);
        c.pad = vec![1; 4];
        assert_eq!(op_key(&Op::Conv(c)), "conv2d{pad=[1, 1, 1, 1]}");
        assert_eq!(op_key(&Op::Conv(Conv::new(2))), "conv2d");
        let t = Tensor::f32(vec![2], vec![1.0, 0.5]).unwrap();
        assert_eq!(op_key(&Op::Const(Arc::new(t))), "const f32[2] [1.0, 0.5]");
    }
}
