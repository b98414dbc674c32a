//! Layers the model builders share — convolution, batch norm, dense, layer norm,
//! embedding, flatten — and [`Checks`], which turns a bad config into diagnostics
//! instead of a panic.
//!
//! Each layer declares its params under the builder's current scope with short
//! names (`w`, `b`, `scale`, `bias`, `mean`, `var`, `table`), so a caller's
//! `b.scope("conv1", …)` gives `conv1.w`. Weight matrices are `[in, out]` (the right
//! operand of `matmul`), conv weights `[out, in, k…]`.

use smelt_ir::ops::{Conv, Pool, PoolKind};
use smelt_ir::{Diagnostic, Diagnostics, DimSpec, GraphBuilder, TensorType, Value};

/// The largest size a config key may take; larger ones are refused, not built.
pub const MAX_SIZE: usize = 1 << 24;

/// Collects the problems of a config, each as a diagnostic naming the model and key.
#[derive(Debug)]
pub struct Checks {
    model: &'static str,
    problems: Vec<Diagnostic>,
}

impl Checks {
    pub fn new(model: &'static str) -> Checks {
        Checks { model, problems: Vec::new() }
    }

    /// `key` must be a size in `1..=MAX_SIZE`.
    pub fn size(&mut self, key: &str, v: usize) {
        self.range(key, v, 1, MAX_SIZE);
    }

    /// `key` must lie in `lo..=hi`.
    pub fn range(&mut self, key: &str, v: usize, lo: usize, hi: usize) {
        if !(lo..=hi).contains(&v) {
            self.fail(format!("`{key}` must be between {lo} and {hi}, found {v}"));
        }
    }

    /// Records `msg` unless `ok`.
    pub fn require(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(msg());
        }
    }

    fn fail(&mut self, msg: String) {
        self.problems.push(Diagnostic::new(format!("{}: {msg}", self.model)));
    }

    /// Every problem found, or `Ok`.
    pub fn finish(self) -> Result<(), Diagnostics> {
        if self.problems.is_empty() { Ok(()) } else { Err(Diagnostics(self.problems)) }
    }
}

/// A square 2-d convolution `[cout, cin, k, k]` with `stride` and symmetric `pad`;
/// params `w` (and `b` when `bias`).
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    b: &mut GraphBuilder,
    x: Value,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
) -> Value {
    let w = b.param("w", TensorType::f32([cout, cin, k, k]));
    let bias = bias.then(|| b.param("b", TensorType::f32([cout])));
    let mut c = Conv::new(2);
    c.stride = vec![stride; 2];
    c.pad = vec![pad; 4];
    b.conv(x, w, bias, c)
}

/// A 1-d convolution `[cout, cin, k]` with `dilation` and begin/end pads `pad`;
/// params `w` and `b`.
pub fn conv1d(
    b: &mut GraphBuilder,
    x: Value,
    cin: usize,
    cout: usize,
    k: usize,
    dilation: usize,
    pad: [usize; 2],
) -> Value {
    let w = b.param("w", TensorType::f32([cout, cin, k]));
    let bias = b.param("b", TensorType::f32([cout]));
    let mut c = Conv::new(1);
    c.dilation = vec![dilation];
    c.pad = pad.to_vec();
    b.conv(x, w, Some(bias), c)
}

/// Inference-form batch norm over `c` channels; params `scale`, `bias`, `mean`, `var`.
pub fn batch_norm(b: &mut GraphBuilder, x: Value, c: usize) -> Value {
    let [s, bi, m, v] = ["scale", "bias", "mean", "var"].map(|n| b.param(n, TensorType::f32([c])));
    b.batch_norm(x, s, bi, m, v, 1e-5)
}

/// conv2d (no bias, "same" padding) → batch norm (scope `bn`) → optional relu; the
/// conv's param is `w`.
pub fn conv_bn(b: &mut GraphBuilder, x: Value, cin: usize, cout: usize, k: usize, stride: usize, relu: bool) -> Value {
    let y = conv2d(b, x, cin, cout, k, stride, k / 2, false);
    let y = b.scope("bn", |b| batch_norm(b, y, cout));
    if relu { b.relu(y) } else { y }
}

/// `x·w + b` over the last dim; params `w [fin, fout]` and (when `bias`) `b [fout]`.
pub fn dense(b: &mut GraphBuilder, x: Value, fin: usize, fout: usize, bias: bool) -> Value {
    let w = b.param("w", TensorType::f32([fin, fout]));
    let bias = bias.then(|| b.param("b", TensorType::f32([fout])));
    b.linear(x, w, bias)
}

/// Layer norm over the last dim of size `d`; params `scale` and `bias`.
pub fn layer_norm(b: &mut GraphBuilder, x: Value, d: usize) -> Value {
    let s = b.param("scale", TensorType::f32([d]));
    let bi = b.param("bias", TensorType::f32([d]));
    b.layer_norm(x, s, Some(bi), 1e-5)
}

/// Rows of the param `table [vocab, dim]` picked by integer ids: `[ids…, dim]`.
pub fn embedding(b: &mut GraphBuilder, ids: Value, vocab: usize, dim: usize) -> Value {
    let t = b.param("table", TensorType::f32([vocab, dim]));
    b.gather(t, ids, 0)
}

/// `[N, …] → [N, rest]`, keeping the (possibly symbolic) first dim.
pub fn flatten(b: &mut GraphBuilder, x: Value) -> Value {
    b.reshape(x, &[DimSpec::Int(0), DimSpec::Int(-1)])
}

/// A max pool with a square window, stride and symmetric padding.
pub fn max_pool2d(b: &mut GraphBuilder, x: Value, k: usize, stride: usize, pad: usize) -> Value {
    b.pool(
        x,
        Pool {
            kind: PoolKind::Max,
            kernel: vec![k; 2],
            stride: vec![stride; 2],
            pad: vec![pad; 4],
            dilation: vec![1; 2],
            ceil_mode: false,
            count_include_pad: false,
            indices: None,
        },
    )
}

/// The spatial size after a window of `k` with `stride` and `pad` on each side;
/// `None` when the window does not fit.
pub fn window(size: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = size.checked_add(2 * pad)?;
    if padded < k || stride == 0 { None } else { Some((padded - k) / stride + 1) }
}

/// Reshape with sizes only (`0` copies, `-1` infers).
pub fn reshape(b: &mut GraphBuilder, x: Value, dims: &[i64]) -> Value {
    let spec: Vec<DimSpec> = dims.iter().map(|&d| DimSpec::Int(d)).collect();
    b.reshape(x, &spec)
}
