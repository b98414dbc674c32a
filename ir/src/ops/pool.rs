//! Pooling: max and average windows (1-d, 2-d and 3-d) and global pooling. Max
//! pooling can also give the flat index of each window's maximum (ONNX MaxPool's
//! `Indices`, row- or column-major).

use super::conv::window_out;
use super::{Op, want_float};
use crate::attr::{AttrReader, AttrValue};
use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

/// How max pooling's indices flatten the spatial position of the maximum (ONNX
/// MaxPool's `storage_order`): the index is `plane · (H·W·…) + offset`, with the
/// offset row-major (last dim fastest) or column-major (first spatial dim fastest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageOrder {
    RowMajor,
    ColMajor,
}

const ORDERS: &[(&str, StorageOrder)] = &[("row_major", StorageOrder::RowMajor), ("col_major", StorageOrder::ColMajor)];

impl StorageOrder {
    pub fn name(&self) -> &'static str {
        ORDERS.iter().find(|(_, o)| o == self).map(|(n, _)| *n).expect("listed")
    }
}

/// A windowed pooling op over `kernel.len()` spatial dims.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    /// Begin pads, then end pads.
    pub pad: Vec<usize>,
    pub dilation: Vec<usize>,
    pub ceil_mode: bool,
    /// Average only: padded positions count in the divisor.
    pub count_include_pad: bool,
    /// Max only: also output the i64 flat index of each maximum, in this order.
    pub indices: Option<StorageOrder>,
}

impl Pool {
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    pub fn name(&self) -> &'static str {
        match (self.kind, self.rank()) {
            (PoolKind::Max, 1) => "max_pool1d",
            (PoolKind::Max, 2) => "max_pool2d",
            (PoolKind::Max, _) => "max_pool3d",
            (PoolKind::Avg, 1) => "avg_pool1d",
            (PoolKind::Avg, 2) => "avg_pool2d",
            (PoolKind::Avg, _) => "avg_pool3d",
        }
    }

    pub(crate) fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        let r = self.rank();
        let mut v = vec![("kernel", AttrValue::usizes(&self.kernel))];
        if self.stride != self.kernel {
            v.push(("stride", AttrValue::usizes(&self.stride)));
        }
        if self.pad != vec![0; 2 * r] {
            v.push(("pad", AttrValue::usizes(&self.pad)));
        }
        if self.dilation != vec![1; r] {
            v.push(("dilation", AttrValue::usizes(&self.dilation)));
        }
        if self.ceil_mode {
            v.push(("ceil_mode", AttrValue::bool(true)));
        }
        if self.count_include_pad {
            v.push(("count_include_pad", AttrValue::bool(true)));
        }
        if let Some(o) = self.indices {
            v.push(("indices", AttrValue::ident(o.name())));
        }
        v
    }

    /// The pooled values, then (with `indices`) the i64 indices of the maxima.
    pub(crate) fn infer(&self, x: &TensorType) -> Result<Vec<TensorType>, String> {
        let name = self.name();
        want_float(name, "input", x)?;
        let r = self.rank();
        if x.rank() != r + 2 {
            return Err(format!("{name} expects {}-d input, found {x}", r + 2));
        }
        let mut out = x.dims()[..2].to_vec();
        for i in 0..r {
            if self.pad[i] >= self.kernel[i] || self.pad[r + i] >= self.kernel[i] {
                return Err(format!("{name}: padding {:?} must be smaller than the kernel {:?}", self.pad, self.kernel));
            }
            out.push(window_out(
                name,
                &x.dims()[2 + i],
                self.kernel[i] as u64,
                self.stride[i],
                self.pad[i],
                self.pad[r + i],
                self.dilation[i],
                self.ceil_mode,
            )?);
        }
        let y = TensorType::new(x.dtype, Shape(out));
        Ok(match self.indices {
            Some(_) => vec![y.clone(), y.with_dtype(DType::I64)],
            None => vec![y],
        })
    }
}

pub(super) fn parse(name: &str, a: &mut AttrReader) -> Option<Op> {
    let (kind, r) = match name {
        "max_pool1d" => (PoolKind::Max, 1),
        "max_pool2d" => (PoolKind::Max, 2),
        "avg_pool1d" => (PoolKind::Avg, 1),
        "avg_pool2d" => (PoolKind::Avg, 2),
        "max_pool3d" => (PoolKind::Max, 3),
        "avg_pool3d" => (PoolKind::Avg, 3),
        "global_avg_pool" => return Some(Op::GlobalPool(PoolKind::Avg)),
        "global_max_pool" => return Some(Op::GlobalPool(PoolKind::Max)),
        _ => return None,
    };
    let has_kernel = a.has("kernel");
    let mut kernel = a.usizes("kernel", None);
    if has_kernel && (kernel.len() != r || kernel.contains(&0)) {
        a.error(format!("{name} expects `kernel` of {r} positive ints, found {kernel:?}"));
    }
    if kernel.len() != r || kernel.contains(&0) {
        kernel = vec![1; r];
    }
    let mut stride = a.usizes("stride", Some(kernel.clone()));
    if stride.len() != r || stride.contains(&0) {
        a.error(format!("{name} expects `stride` of {r} positive ints, found {stride:?}"));
        stride = vec![1; r];
    }
    let mut pad = a.usizes("pad", Some(vec![0; 2 * r]));
    if pad.len() != 2 * r {
        a.error(format!("{name} expects `pad` of {} ints (begins, then ends), found {pad:?}", 2 * r));
        pad = vec![0; 2 * r];
    }
    let mut dilation = a.usizes("dilation", Some(vec![1; r]));
    if dilation.len() != r || dilation.contains(&0) {
        a.error(format!("{name} expects `dilation` of {r} positive ints, found {dilation:?}"));
        dilation = vec![1; r];
    }
    let ceil_mode = a.bool("ceil_mode", false);
    let count_include_pad = if kind == PoolKind::Avg { a.bool("count_include_pad", false) } else { false };
    // Avg pooling leaves `indices` unread, so it is reported as unknown.
    let indices = if kind == PoolKind::Max && a.has("indices") { a.choice("indices", ORDERS, None) } else { None };
    Some(Op::Pool(Pool { kind, kernel, stride, pad, dilation, ceil_mode, count_include_pad, indices }))
}

pub(super) fn infer_global(name: &str, x: &TensorType) -> Result<TensorType, String> {
    want_float(name, "input", x)?;
    if x.rank() < 3 {
        return Err(format!("{name} expects input of rank ≥ 3 ([N, C, …]), found {x}"));
    }
    let mut out = x.dims()[..2].to_vec();
    out.extend(std::iter::repeat_n(Dim::Fixed(1), x.rank() - 2));
    Ok(TensorType::new(x.dtype, Shape(out)))
}
