//! Sparse matmul: `x · W` where W is a constant stored compressed by rows (CSR) or
//! in row-major blocks (BSR).

use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::dtype::DType;
use crate::shape::Dim;
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SparseFormat {
    Csr,
    Bsr,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SparseMatMul {
    pub format: SparseFormat,
    /// Columns of W (N).
    pub cols: usize,
    /// Block size `[rows, cols]` for BSR (`[1, 1]` for CSR).
    pub block: [usize; 2],
}

impl SparseMatMul {
    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![];
        if self.format == SparseFormat::Bsr {
            v.push(("format", AttrValue::ident("bsr")));
        }
        v.push(("cols", AttrValue::Int(self.cols as i64)));
        if self.block != [1, 1] {
            v.push(("block", AttrValue::usizes(&self.block)));
        }
        v
    }

    pub(crate) fn infer(&self, ins: &[&TensorType]) -> Result<TensorType, String> {
        let (x, values, indices, offsets) = (ins[0], ins[1], ins[2], ins[3]);
        want_float("sparse_matmul", "input", x)?;
        if x.rank() < 1 {
            return Err(format!("sparse_matmul expects x [.., K], found {x}"));
        }
        let k = x.dims()[x.rank() - 1].fixed().ok_or_else(|| format!("sparse_matmul needs a fixed K in {x}"))? as usize;
        let [br, bc] = self.block;
        let want_values_rank = if self.format == SparseFormat::Csr { 1 } else { 3 };
        if values.dtype != x.dtype || values.rank() != want_values_rank {
            return Err(format!("sparse_matmul expects {want_values_rank}-d values of dtype {}, found {values}", x.dtype));
        }
        if self.format == SparseFormat::Bsr
            && (values.dims()[1] != Dim::Fixed(br as u64) || values.dims()[2] != Dim::Fixed(bc as u64))
        {
            return Err(format!("sparse_matmul expects values [nnzb, {br}, {bc}], found {values}"));
        }
        if !k.is_multiple_of(br) || !self.cols.is_multiple_of(bc) {
            return Err(format!("sparse_matmul: W {k}×{} does not split into {br}×{bc} blocks", self.cols));
        }
        if indices.dtype != DType::I32 || indices.rank() != 1 || indices.dims()[0] != values.dims()[0] {
            return Err(format!("sparse_matmul expects indices i32[{}], found {indices}", values.dims()[0]));
        }
        let rows = (k / br + 1) as u64;
        if offsets.dtype != DType::I32 || offsets.rank() != 1 || offsets.dims()[0] != Dim::Fixed(rows) {
            return Err(format!("sparse_matmul expects offsets i32[{rows}], found {offsets}"));
        }
        let mut out = x.dims().to_vec();
        *out.last_mut().expect("rank ≥ 1") = Dim::Fixed(self.cols as u64);
        Ok(TensorType::new(x.dtype, crate::Shape(out)))
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    if name != "sparse_matmul" {
        return None;
    }
    let format = a
        .choice("format", &[("csr", SparseFormat::Csr), ("bsr", SparseFormat::Bsr)], Some(SparseFormat::Csr))
        .unwrap_or(SparseFormat::Csr);
    let cols = a.usize("cols", None);
    let b = a.usizes("block", Some(vec![1, 1]));
    let block = match b[..] {
        [r, c] if r > 0 && c > 0 => [r, c],
        _ => {
            a.error(format!("sparse_matmul expects `block` of 2 positive ints, found {b:?}"));
            [1, 1]
        }
    };
    if format == SparseFormat::Csr && block != [1, 1] {
        a.error("sparse_matmul with format = csr takes no `block`");
    }
    Some(Op::SparseMatMul(SparseMatMul { format, cols, block }))
}
