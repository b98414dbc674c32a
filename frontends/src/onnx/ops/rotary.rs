//! ONNX RotaryEmbedding (opset 23), written with smelt's ops at import, as the
//! ONNX reference computes it: the input as `[batch, sequence, heads, head]`
//! (a 3-d input split into `num_heads`, a 4-d one transposed), the first
//! `rotary_embedding_dim` features of each head rotated in pairs — halves, or
//! even and odd features when `interleaved` — by the cos/sin caches (gathered
//! at `position_ids` when given), the rest passed through.

use super::super::ctx::Ctx;
use super::super::error::Result;
use super::super::node::NodeRef;
use smelt_ir::ops::Slice;
use smelt_ir::{BinaryOp, Dim, Op, Value};

type Out = Result<Vec<Value>>;

pub(crate) const IMPORTERS: &[(&str, super::Importer)] = &[("RotaryEmbedding", rotary_embedding)];

fn slice(cx: &mut Ctx, x: Value, start: i64, end: i64, step: i64) -> Result<Value> {
    cx.op(Op::Slice(Slice { starts: vec![start], ends: vec![end], axes: Some(vec![-1]), steps: Some(vec![step]) }), &[x])
}

pub fn rotary_embedding(cx: &mut Ctx, n: &NodeRef) -> Out {
    let x = cx.input(n, 0)?;
    let (cos, sin) = (cx.input(n, 1)?, cx.input(n, 2)?);
    let pos = cx.opt_input(n, 3)?;
    let dims = cx.dims(x);
    let interleaved = n.int("interleaved", 0)? != 0;
    // [batch, sequence, heads, head]
    let x4 = match dims.len() {
        3 => {
            let heads = n.int("num_heads", 0)?;
            let hidden = dims[2].fixed().ok_or_else(|| n.unsupported("a symbolic hidden size"))? as i64;
            if heads < 1 || hidden % heads != 0 {
                return Err(n.err(format!("num_heads {heads} does not divide the hidden size {hidden}")));
            }
            let mut d = dims[..2].to_vec();
            d.extend([Dim::Fixed(heads as u64), Dim::Fixed((hidden / heads) as u64)]);
            cx.reshape(x, &d)?
        }
        4 => cx.op(Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, &[x])?,
        _ => return Err(n.err(format!("the input must be 3-d or 4-d, found {}", cx.ty(x)))),
    };
    let head = cx.dims(x4)[3].fixed().ok_or_else(|| n.unsupported("a symbolic head size"))? as i64;
    let rot = match n.int("rotary_embedding_dim", 0)? {
        0 => head,
        r if r > 0 && r <= head && r % 2 == 0 => r,
        r => return Err(n.err(format!("rotary_embedding_dim {r} must be even and at most the head size {head}"))),
    };
    let half = rot / 2;
    // The caches at each position: [batch, sequence, 1, rot/2].
    let (cos, sin) = match pos {
        Some(p) => (cx.op(Op::Gather { axis: 0 }, &[cos, p])?, cx.op(Op::Gather { axis: 0 }, &[sin, p])?),
        None => (cos, sin),
    };
    let unsq = |cx: &mut Ctx, c: Value| -> Result<Value> {
        let mut d = cx.dims(c);
        if d.len() != 3 || d[2] != Dim::Fixed(half as u64) {
            return Err(n.err(format!("the caches must be [batch, sequence, {half}] at the positions, found {}", cx.ty(c))));
        }
        d.insert(2, Dim::Fixed(1));
        cx.reshape(c, &d)
    };
    let (cos, sin) = (unsq(cx, cos)?, unsq(cx, sin)?);
    let (x1, x2) = if interleaved {
        (slice(cx, x4, 0, rot, 2)?, slice(cx, x4, 1, rot, 2)?)
    } else {
        (slice(cx, x4, 0, half, 1)?, slice(cx, x4, half, rot, 1)?)
    };
    let (c1, s2) = (cx.binary(BinaryOp::Mul, cos, x1)?, cx.binary(BinaryOp::Mul, sin, x2)?);
    let real = cx.binary(BinaryOp::Sub, c1, s2)?;
    let (s1, c2) = (cx.binary(BinaryOp::Mul, sin, x1)?, cx.binary(BinaryOp::Mul, cos, x2)?);
    let imag = cx.binary(BinaryOp::Add, s1, c2)?;
    let rotated = if interleaved {
        // Pairs back in place: [.., rot/2, 2] → [.., rot].
        let mut d = cx.dims(real);
        d.push(Dim::Fixed(1));
        let (r1, i1) = (cx.reshape(real, &d)?, cx.reshape(imag, &d)?);
        let pairs = cx.op(Op::Concat { axis: -1 }, &[r1, i1])?;
        d.pop();
        let last = d.len() - 1;
        d[last] = Dim::Fixed(rot as u64);
        cx.reshape(pairs, &d)?
    } else {
        cx.op(Op::Concat { axis: -1 }, &[real, imag])?
    };
    let y4 = if rot < head {
        let rest = slice(cx, x4, rot, head, 1)?;
        cx.op(Op::Concat { axis: -1 }, &[rotated, rest])?
    } else {
        rotated
    };
    let y = match dims.len() {
        3 => cx.reshape(y4, &dims)?,
        _ => cx.op(Op::Transpose { perm: Some(vec![0, 2, 1, 3]) }, &[y4])?,
    };
    Ok(vec![y])
}
