//! The WGSL emitter without a GPU: every shader generated for every case of the
//! numerical suite (op cases, the interpreter's fixtures, the examples) parses and
//! validates with naga (uniformity analysis included: the cooperative reductions'
//! barriers), and snapshots of representative shaders (an elementwise kernel, a
//! packed-bool comparison, a softmax per invocation and per workgroup, a layer norm
//! and a strided reduction per workgroup, saturating i32 arithmetic, i64 data as
//! two-word integers, the tiled matmul, a conv with a fused epilogue, f16 packed
//! and native, a cooperative large-window pool, the GPU's LSTM recurrence and
//! attention rows). Every shader is validated in both forms: portable (f16
//! packed in `u32` words) and native f16 (`array<f16>`, as on adapters with
//! `shader-f16`). The numerical checks of these shaders are in
//! `engine/tests/numerics/wgsl.rs`, on a real (or lavapipe) adapter.

#[path = "../../engine/tests/numerics/cases.rs"]
#[allow(dead_code)]
mod cases;

#[path = "../../engine/tests/numerics/cases_rows.rs"]
#[allow(dead_code)]
mod cases_rows;

#[path = "../../engine/tests/numerics/cases_conv_pool_rnn.rs"]
#[allow(dead_code)]
mod cases_conv_pool_rnn;

#[path = "../../engine/tests/numerics/cases_pool.rs"]
#[allow(dead_code)]
mod cases_pool;

#[path = "../../engine/tests/numerics/cases_i64.rs"]
#[allow(dead_code)]
mod cases_i64;

#[path = "../../engine/tests/numerics/cases_quant.rs"]
#[allow(dead_code)]
mod cases_quant;

use smelt_codegen::lower::lower;
use smelt_codegen::wgsl::{self, Options, emit_step, print_program};
use smelt_ir::{Bindings, Graph, load_model, text::parse};
use std::path::Path;

fn validate(name: &str, src: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| format!("{name}: {}\n{src}", e.emit_to_string(src)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::FLOAT64 | naga::valid::Capabilities::SHADER_FLOAT16)
        .validate(&module)
        .map_err(|e| format!("{name}: {}\n{src}", e.emit_to_string(src)))?;
    Ok(())
}

/// Lowers `g` for the GPU and validates each step's shader; `Ok(n)` shaders. A
/// graph the WGSL backend refuses is an error too: every case of the suite runs
/// on WGSL (the numerical suite's list of expected refusals is empty).
fn validate_graph(name: &str, g: &Graph) -> Result<usize, String> {
    wgsl::check(g).map_err(|e| format!("{name}: refused: {e}"))?;
    let prog = lower(g, &wgsl::target()).map_err(|e| format!("{name}: {e}"))?;
    for st in &prog.steps {
        for native_f16 in [false, true] {
            let sh = emit_step(st, &Options { native_f16, tile: None }).map_err(|e| format!("{name}: {e}"))?;
            validate(&format!("{name}/{} (native f16: {native_f16})", sh.name), &sh.source)?;
        }
    }
    Ok(prog.steps.len())
}

#[test]
fn every_suite_shader_validates_with_naga() {
    let mut failures = vec![];
    let mut shaders = 0;
    let mut all = cases::elementwise();
    all.extend(cases::linalg());
    all.extend(cases::integer());
    all.extend(cases::saturating());
    all.extend(cases::half());
    all.extend(cases_rows::rows());
    all.extend(cases::attention());
    all.extend(cases_conv_pool_rnn::conv_pool_rnn());
    all.extend(cases_pool::pools());
    all.extend(cases_i64::cases());
    all.extend(cases::quant_and_routing());
    all.extend(cases_quant::quant());
    for c in &all {
        let mut g = parse(&c.src).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        // Graphs with `nonzero` run as stages cut at it (the engine's
        // numerical suite runs them on WGSL); the lowering takes no such graph.
        if g.node_ids().any(|i| g.node(i).op.is_data_dependent()) {
            continue;
        }
        for (k, w) in &c.weights {
            g.set_weight(k.clone(), w.clone());
        }
        match validate_graph(&c.name, &g) {
            Ok(n) => shaders += n,
            Err(m) => failures.push(m),
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.txt")).expect("MANIFEST.txt");
    for line in manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let case = line.split_whitespace().next().unwrap_or_default();
        let g = load_model(&dir.join(format!("{case}.smelt"))).unwrap_or_else(|e| panic!("{case}: {e:?}"));
        if g.node_ids().any(|i| g.node(i).op.is_data_dependent()) {
            continue;
        }
        let b: Bindings = g.inputs().iter().flat_map(|&i| g.node(i).types[0].shape.symbols()).map(|s| (s.to_string(), 3)).collect();
        let g = g.bind(&b).unwrap_or_else(|e| panic!("{case}: {e:?}"));
        match validate_graph(case, &g) {
            Ok(n) => shaders += n,
            Err(m) => failures.push(m),
        }
    }
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&ex).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    for p in files {
        let g = load_model(&p).unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
        let b: Bindings = g.inputs().iter().flat_map(|&i| g.node(i).types[0].shape.symbols()).map(|s| (s.to_string(), 5)).collect();
        let g = g.bind(&b).unwrap_or_else(|e| panic!("{e:?}"));
        match validate_graph(&p.display().to_string(), &g) {
            Ok(n) => shaders += n,
            Err(m) => failures.push(m),
        }
    }
    assert!(failures.is_empty(), "{} shaders fail naga:\n{}", failures.len(), failures.join("\n\n"));
    assert!(shaders > 400, "only {shaders} shaders validated");
}

fn shaders(src: &str) -> String {
    shaders_with(src, &Options::default())
}

fn shaders_with(src: &str, opts: &Options) -> String {
    let mut g = parse(src).unwrap_or_else(|e| panic!("{e:?}"));
    for id in g.params() {
        let t = g.node(id).types[0].clone();
        let dims = t.shape.fixed().expect("fixed param shapes");
        let n: usize = dims.iter().product();
        let name = g.node(id).name().to_string();
        g.set_weight(name, smelt_ir::Tensor::f32(dims, (0..n).map(|i| i as f32).collect()).expect("sized"));
    }
    let p = lower(&g, &wgsl::target()).unwrap_or_else(|e| panic!("{e}"));
    let text = print_program(&p, opts).unwrap_or_else(|e| panic!("{e}"));
    for st in &p.steps {
        let sh = emit_step(st, opts).unwrap_or_else(|e| panic!("{e}"));
        validate(&sh.name, &sh.source).unwrap_or_else(|m| panic!("{m}"));
    }
    text
}

#[test]
fn snapshot_gelu() {
    insta::assert_snapshot!(shaders("graph g(x: f32[3, 37]) -> (y) {\n  y = gelu(x)\n}\n"));
}

#[test]
fn snapshot_less_packed_bool() {
    insta::assert_snapshot!(shaders("graph g(a: i8[11], b: i8[11]) -> (y) {\n  y = less(a, b)\n}\n"));
}

#[test]
fn snapshot_softmax() {
    insta::assert_snapshot!(shaders("graph g(x: f32[5, 19]) -> (y) {\n  y = softmax(x) {axis = -1}\n}\n"));
}

#[test]
fn snapshot_matmul_tiled() {
    insta::assert_snapshot!(shaders("graph g(a: f32[2, 70, 33]) -> (y) {\n  w = param f32[33, 65]\n  y = matmul(a, w)\n}\n"));
}

#[test]
fn snapshot_fused_conv() {
    insta::assert_snapshot!(shaders(
        "graph g(x: f32[1, 3, 9, 9]) -> (y) {\n  w = param f32[4, 3, 3, 3]\n  b = param f32[4]\n  y = fused_conv2d(x, w, b) {pad = [1, 1, 1, 1], activation = relu}\n}\n"
    ));
}

/// A workgroup per row: `reduce` loops into a tree in shared memory, a
/// `workgroup` loop for the outputs.
#[test]
fn snapshot_softmax_workgroup() {
    insta::assert_snapshot!(shaders("graph g(x: f32[3, 1000]) -> (y) {\n  y = softmax(x) {axis = -1}\n}\n"));
}

#[test]
fn snapshot_layer_norm_workgroup() {
    insta::assert_snapshot!(shaders(
        "graph g(x: f32[2, 333]) -> (y) {\n  s = param f32[333]\n  b = param f32[333]\n  y = layer_norm(x, s, b)\n}\n"
    ));
}

/// The recurrence of an LSTM: a workgroup per (direction, batch row) walks time;
/// per step, one gate pre-activation then one unit per invocation, with storage
/// barriers between (inside the serial time loop).
#[test]
fn snapshot_lstm_recurrence() {
    let g = "graph g(x: f32[3, 1, 2]) -> (y, h, c) {\n  w = param f32[1, 12, 2]\n  r = param f32[1, 12, 3]\n  b = param f32[1, 24]\n  y, h, c = lstm(x, w, r, b) {hidden = 3}\n}\n";
    insta::assert_snapshot!(shaders(g));
}

/// Attention on the GPU: a workgroup per query row (scores per invocation, max and
/// sum as tree reductions, one output column per invocation), causal.
#[test]
fn snapshot_attention_rows() {
    insta::assert_snapshot!(shaders(
        "graph g(q: f32[1, 5, 8], k: f32[1, 7, 8], v: f32[1, 7, 6]) -> (y) {\n  y = attention(q, k, v) {heads = 2, causal = true}\n}\n"
    ));
}

/// Non-trailing axes: each invocation decomposes a flat index of the reduced dims.
#[test]
fn snapshot_reduce_max_strided_workgroup() {
    insta::assert_snapshot!(shaders("graph g(x: f32[37, 3, 11]) -> (y) {\n  y = reduce_max(x) {axes = [0, 2], keepdims = false}\n}\n"));
}

#[test]
fn snapshot_i32_saturating() {
    insta::assert_snapshot!(shaders("graph g(a: i32[7], b: i32[7]) -> (y, z) {\n  y = mul(a, b)\n  z = neg(a)\n}\n"));
}

/// f16 and bf16 packed two to a word, converted by bit manipulation.
#[test]
fn snapshot_half_conversions() {
    insta::assert_snapshot!(shaders("graph g(a: f16[5], b: bf16[5]) -> (y) {\n  c = cast(b) {to = f16}\n  y = add(a, c)\n}\n"));
}

/// Native f16 storage (adapters with `shader-f16`): `enable f16;`, f16 buffers
/// as `array<f16>` moved as bits (no atomics), the same exact conversions; bf16
/// stays packed.
#[test]
fn snapshot_half_native() {
    let src = "graph g(a: f16[5], b: bf16[5]) -> (y) {\n  c = cast(b) {to = f16}\n  y = add(a, c)\n}\n";
    let text = shaders_with(src, &Options { native_f16: true, tile: None });
    assert!(text.contains("enable f16;") && !text.lines().any(|l| l.contains("atomic") && l.contains(" f16[")), "{text}");
    insta::assert_snapshot!(text);
}

/// A max pool whose 9×9 window (81 taps) makes it cooperative for few outputs:
/// a workgroup per output, the taps strided over its invocations.
#[test]
fn snapshot_max_pool_large_window_workgroup() {
    insta::assert_snapshot!(shaders("graph g(x: f32[1, 2, 13, 11]) -> (y) {\n  y = max_pool2d(x) {kernel = [9, 9], stride = [2, 2], pad = [1, 2, 1, 0]}\n}\n"));
}

/// Integer matmul: the i64 accumulator as two i32 words.
#[test]
fn snapshot_matmul_i32() {
    insta::assert_snapshot!(shaders("graph g(a: i32[3, 5], b: i32[5, 2]) -> (y) {\n  y = matmul(a, b)\n}\n"));
}

/// Integer sums and products: the reference's wrapping i64 accumulator as two
/// i32 words, one output per invocation.
#[test]
fn snapshot_reduce_i32_wide() {
    insta::assert_snapshot!(shaders("graph g(x: i32[2, 9]) -> (s, p) {\n  s = reduce_sum(x) {axes = [1]}\n  p = reduce_prod(x) {axes = [1]}\n}\n"));
}

/// `Needs::f16` marks exactly the native-f16 shaders with an f16 buffer (the
/// runtime refuses them on an adapter without `shader-f16`); bf16 never needs it.
#[test]
fn needs_f16_only_for_native_f16_buffers() {
    let g = parse("graph g(a: f16[5], b: bf16[5]) -> (y, z) {\n  y = relu(a)\n  z = relu(b)\n}\n").unwrap();
    let p = lower(&g, &wgsl::target()).unwrap();
    for st in &p.steps {
        let has_f16 = st.kernel.buffers.iter().any(|b| b.scalar == smelt_codegen::kernel::Scalar::F16);
        for native_f16 in [false, true] {
            let sh = emit_step(st, &Options { native_f16, tile: None }).unwrap();
            assert_eq!(sh.needs.f16, native_f16 && has_f16, "{} (native f16: {native_f16})", sh.name);
            assert_eq!(sh.source.contains("enable f16;"), sh.needs.f16, "{}", sh.name);
        }
    }
}

/// i64 data: two-word integers (`vec2<u32>`), a wrapping product, the conversion
/// to f32 and a comparison, with the index arithmetic left in i32.
#[test]
fn snapshot_i64_data() {
    insta::assert_snapshot!(shaders("graph g(a: i64[7], b: i64[7]) -> (y, z, c) {\n  y = mul(a, b)\n  z = cast(a) {to = f32}\n  c = less(a, b)\n}\n"));
}
