//! ONNX's detection op NonMaxSuppression: smelt's `nms`, whose output size
//! (the boxes kept) the data decides — its count is a symbol of its own,
//! `<node>_count`. The limit and thresholds (inputs 2–4) must be known at
//! import, as exporters write them (constants).

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::Nms;
use smelt_ir::{Op, Value};

type Out = Result<Vec<Value>>;

pub fn non_max_suppression(cx: &mut Ctx, n: &NodeRef) -> Out {
    let (boxes, scores) = (cx.input(n, 0)?, cx.input(n, 1)?);
    let one = |cx: &Ctx, i: usize, what: &str| -> Result<Option<f32>> {
        if !n.has_input(i) {
            return Ok(None);
        }
        match cx.need_floats(n, i, what)?[..] {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            ref v => Err(n.err(format!("{what} has {} values, expected one", v.len()))),
        }
    };
    let max_per_class = if n.has_input(2) {
        match cx.need_ints(n, 2, "max_output_boxes_per_class")?[..] {
            [] => 0,
            [v] => usize::try_from(v.max(0)).map_err(|_| n.err(format!("max_output_boxes_per_class {v}")))?,
            ref v => return Err(n.err(format!("max_output_boxes_per_class has {} values, expected one", v.len()))),
        }
    } else {
        0
    };
    let iou_threshold = one(cx, 3, "iou_threshold")?.unwrap_or(0.0);
    let score_threshold = one(cx, 4, "score_threshold")?;
    let center_point_box = match n.int("center_point_box", 0)? {
        0 => false,
        1 => true,
        c => return Err(n.err(format!("center_point_box must be 0 or 1, found {c}"))),
    };
    let count = cx.count_symbol(n);
    let op = Op::Nms(Nms { max_per_class, iou_threshold, score_threshold, center_point_box, count });
    Ok(vec![cx.op(op, &[boxes, scores])?])
}

/// The op types this file imports (read by `ops::lookup` and `ops::supported`).
pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[("NonMaxSuppression", non_max_suppression)];
