//! The numerical suite: every lowered op on random shapes (odd, prime, not
//! multiples of 4, broadcast, parallel-sized), every fused form, the interpreter's
//! numpy fixtures and the example models, on each backend against the reference
//! interpreter. Tolerances: see `report.rs` (f32 within 1e-4 + 1e-4·|want|;
//! integers and bools exact). Each test prints a table op → pass / unsupported /
//! fail, so what a backend does not lower yet stays visible; a mismatch or a
//! backend error fails the test.

mod backend;
mod cases;
mod report;
mod wgsl;
mod zoo;

use backend::{RunError, cranelift, llvm};
use report::{Table, compare};
use smelt_engine::{Backend, OptLevel};
use smelt_ir::{Bindings, Graph, Op, Tensor, load_model, text::parse, weights::read_safetensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// `g` optimized at -O2 (what `smelt run` compiles by default), or `None` when
/// the pipeline leaves it as it was; computed once per graph for all backends.
fn optimized(g: &Graph) -> Option<Graph> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Graph>>>> = OnceLock::new();
    let key = format!("{}{:?}", smelt_ir::text::print(g), g.weights().keys().collect::<Vec<_>>());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(o) = cache.lock().unwrap().get(&key) {
        return o.clone();
    }
    let mut o = g.clone();
    smelt_engine::optimize(&mut o, OptLevel::O2, smelt_engine::BackendKind::Cranelift).unwrap_or_else(|e| panic!("{}: -O2 fails: {e}", g.name));
    let o = (smelt_ir::text::print(&o) != smelt_ir::text::print(g)).then_some(o);
    cache.lock().unwrap().insert(key, o.clone());
    o
}

/// Runs a graph on the backend and on the interpreter and files the result; then
/// the graph as -O2 optimizes it (when that changes it), against the same
/// expected values.
fn check(table: &mut Table, b: &dyn Backend, op: &str, name: &str, g: &Graph, inputs: &BTreeMap<String, Tensor>) {
    let want = match smelt_interp::run(g, inputs) {
        Ok(w) => w,
        Err(e) => return table.fail(op, format!("{name}: the interpreter fails: {e}")),
    };
    let mut runs = vec![(name.to_string(), g.clone())];
    if let Some(o) = optimized(g) {
        runs.push((format!("{name} at -O2"), o));
    }
    for (name, g) in &runs {
        match backend::run(b, g, inputs) {
            Ok(got) => {
                for (k, w) in &want {
                    let r = match got.get(k) {
                        Some(t) => compare(&format!("{name}.{k}"), t, w),
                        None => Err(format!("{name}: no output `{k}`")),
                    };
                    if let Err(m) = r {
                        return table.fail(op, m);
                    }
                }
            }
            Err(RunError::Unsupported) => return table.unsupported(op),
            Err(RunError::Failed(m)) => return table.fail(op, format!("{name}: {m}")),
        }
    }
    table.pass(op)
}

/// Runs `cases` on `b` against the interpreter and reports them as "`title` on
/// <backend>": no case may fail, and every op of `must_pass` must pass one.
fn run_cases(b: &dyn Backend, cases: &[cases::Case], title: &str, must_pass: &[&str]) {
    let mut table = Table::default();
    for c in cases {
        let mut g = parse(&c.src).unwrap_or_else(|e| panic!("{}: {e:?}\n{}", c.name, c.src));
        for (k, w) in &c.weights {
            g.set_weight(k.clone(), w.clone());
        }
        check(&mut table, b, &c.op, &c.name, &g, &c.inputs);
    }
    finish(&table, &format!("{title} on {}", b.name()), must_pass);
}

fn finish(table: &Table, title: &str, must_pass: &[&str]) {
    eprintln!("{}", table.render(title));
    let missing: Vec<&&str> = must_pass.iter().filter(|op| table.passed(op) == 0).collect();
    assert!(table.failures.is_empty(), "{} failures:\n{}", table.failures.len(), table.failures.join("\n"));
    assert!(missing.is_empty(), "lowered ops that no longer pass: {missing:?}");
}

/// Ops the native backends (Cranelift, LLVM) lower: each must pass at least one case.
const CRANELIFT_OPS: &[&str] = &[
    "relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "exp", "log", "sqrt", "rsqrt", "neg", "abs", "erf", "sin", "cos",
    "reciprocal", "floor", "ceil", "round", "sign", "softplus", "silu", "identity", "leaky_relu", "elu", "hard_sigmoid",
    "clip", "not", "add", "sub", "mul", "div", "max", "min", "pow", "prelu", "equal", "less", "less_equal", "greater",
    "greater_equal", "and", "or", "xor", "where", "cast", "elementwise", "matmul", "gemm", "fused_matmul",
    "attention", "qconv1d", "qconv2d", "moe", "sparse_matmul", "div(int)", "matmul(int)", "gemm(int)", "f16 relu", "f16 exp", "f16 tanh",
    "f16 gelu", "f16 add", "f16 mul", "f16 div", "f16 less", "f16 where", "f16 cast", "f16 matmul", "f16 softmax",
    "f16 transpose", "f16 conv2d", "f16 elementwise", "bf16 relu", "bf16 exp", "bf16 tanh", "bf16 gelu", "bf16 add",
    "bf16 mul", "bf16 div", "bf16 less", "bf16 where", "bf16 cast", "bf16 matmul", "bf16 softmax", "bf16 transpose",
    "bf16 conv2d", "bf16 elementwise",
];

fn backends() -> Vec<Box<dyn Backend>> {
    use smelt_codegen::schedule::Target;
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(cranelift(1)), Box::new(cranelift(2)), Box::new(llvm(1)), Box::new(llvm(2))];
    // Where the host has GEMM micro-kernels, Cranelift's default schedule calls
    // them: its own tile, and LLVM's lowering of the calls, are checked here.
    if Target::cranelift_host().ukernels {
        all.push(Box::new(backend::scheduled("cranelift, own 4x8 tile", smelt_codegen::Backend::Cranelift, Target::cranelift_x64(), 1)));
        let on = smelt_engine::ScheduleOptions { ukernels: Some(smelt_engine::Ukernels::Host), ..Default::default() };
        all.push(Box::new(backend::switched("llvm calling the micro-kernels", smelt_codegen::Backend::Llvm, on)));
    }
    all
}

#[test]
fn ops() {
    let mut cases = cases::elementwise();
    cases.extend(cases::linalg());
    cases.extend(cases::attention());
    cases.extend(cases::integer());
    cases.extend(cases::saturating());
    cases.extend(cases::quant_and_routing());
    cases.extend(cases::half());
    for b in backends() {
        run_cases(b.as_ref(), &cases, "ops", CRANELIFT_OPS);
    }
}

/// The ops of a graph (sources left out), for filing a model's result.
fn op_of(g: &Graph) -> String {
    let mut ops: Vec<&str> = g.node_ids().map(|i| &g.node(i).op).filter(|o| !o.is_source()).map(Op::name).collect();
    ops.sort();
    ops.dedup();
    if ops.len() == 1 { ops[0].to_string() } else { format!("model({})", ops.join("+")) }
}

/// The interpreter's numpy fixtures (`tests/fixtures/interp/`), each filed under
/// its op: inputs from the fixture, expected values from the interpreter.
#[test]
fn fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.txt")).expect("MANIFEST.txt");
    let runners: [Box<dyn Backend>; 2] = [Box::new(cranelift(1)), Box::new(llvm(1))];
    for b in runners {
        let mut table = Table::default();
        let mut ran = 0;
        for line in manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let case = line.split_whitespace().next().unwrap_or_default();
            let g = load_model(&dir.join(format!("{case}.smelt"))).unwrap_or_else(|e| panic!("{case}: {e:?}"));
            let io = read_safetensors(&dir.join(format!("{case}.io.safetensors"))).expect("io file");
            let inputs: BTreeMap<String, Tensor> = io.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect();
            check(&mut table, b.as_ref(), &op_of(&g), case, &g, &inputs);
            ran += 1;
        }
        assert!(ran >= 250, "only {ran} fixtures");
        finish(&table, &format!("interpreter fixtures on {}", b.name()), FIXTURE_OPS);
    }
}

/// Ops that must pass in the fixtures on Cranelift and LLVM.
const FIXTURE_OPS: &[&str] = &[
    "relu", "add", "matmul", "gemm", "fused_matmul", "conv1d", "conv2d", "fused_conv2d", "max_pool2d", "avg_pool2d",
    "global_avg_pool", "batch_norm", "layer_norm", "softmax", "log_softmax", "reduce_sum", "argmax", "transpose",
    "concat", "split", "slice", "gather", "pad", "expand", "attention", "lstm", "gru", "quantize", "dequantize", "qmatmul",
    "qconv1d", "qconv2d", "sparse_matmul", "moe_dispatch", "moe_combine", "div",
];

/// Every example model, on random inputs and two sizes of its symbolic dims.
#[test]
fn examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    files.sort();
    assert!(files.len() >= 3);
    for b in backends() {
        let mut table = Table::default();
        for path in &files {
            let g = load_model(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            for size in [1u64, 5] {
                let dims: Bindings = ["N", "B", "T"].iter().map(|s| (s.to_string(), size + (s == &"T") as u64 * 2)).collect();
                let inputs = smelt_interp::init::random_inputs(&g, size, &dims).expect("inputs");
                check(&mut table, b.as_ref(), &format!("example {name}"), &format!("{name}@{size}"), &g, &inputs);
            }
        }
        finish(&table, &format!("examples on {}", b.name()), &["example attention", "example mlp", "example resblock"]);
    }
}

/// Every zoo model (small configurations) on each backend; f32 within the
/// suite's tolerance.
#[test]
fn zoo_models() {
    let mut models: Vec<_> = zoo::SMALL.iter().map(|&(name, settings, dims)| (name, "", zoo::model(name, settings, dims))).collect();
    models.extend(zoo::MEDIUM.iter().map(|&(name, settings, dims)| (name, " (medium)", zoo::model(name, settings, dims))));
    for b in backends() {
        zoo_table(b.as_ref(), &models);
    }
}

/// A zoo model: its name, a size label, the graph and its inputs.
type ZooModel<'a> = (&'a str, &'a str, (Graph, BTreeMap<String, Tensor>));

/// Every zoo model on one backend against the interpreter; each must pass.
fn zoo_table(b: &dyn Backend, models: &[ZooModel]) {
    let mut table = Table::default();
    for (name, size, (g, inputs)) in models {
        check(&mut table, b, &format!("zoo {name}{size}"), name, g, inputs);
    }
    let all: Vec<String> = models.iter().map(|(name, size, _)| format!("zoo {name}{size}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    finish(&table, &format!("zoo models on {}", b.name()), &all);
}

/// Conversions to and from f16/bf16 are bit-exact with the `half` crate (the
/// interpreter's): ties to even, subnormals, overflow to infinity, NaN.
#[test]
fn half_conversions_are_exact() {
    let tie = |k: i32| 1.0 + f32::powi(2.0, k);
    let mut vals: Vec<f32> = vec![
        0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1e5, -1e5, 1e-8, -1e-8, 2.98e-8, 2.9802322e-8, 2.9802326e-8,
        5.96e-8, 6e-8, 8.9e-8, 3e-5, -6.1e-5, 6.1035156e-5, 6.097555e-5, 3.0517578e-5, tie(-10), tie(-11), 1.0 + 3.0 * f32::powi(2.0, -11),
        tie(-8), 1.0 + 3.0 * f32::powi(2.0, -8), tie(-9), f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, f32::MAX, f32::MIN_POSITIVE,
        1e-40, 3.4e38, 0.1, 0.2, 0.3, 1.0 / 3.0, 2.0 / 3.0, 1000.06, 123.456,
    ];
    // And a sweep over many binades.
    let mut x = 1.234e-9f32;
    while x < 1e6 {
        vals.extend([x, -x, x * 1.0001]);
        x *= 1.37;
    }
    let n = vals.len();
    for d in [smelt_ir::DType::F16, smelt_ir::DType::BF16] {
        let src = format!("graph g(x: f32[{n}]) -> (h, back) {{\n  h = cast(x) {{to = {d}}}\n  back = cast(h) {{to = f32}}\n}}\n");
        let g = parse(&src).unwrap();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::f32(vec![n], vals.clone()).unwrap())]);
        let want = smelt_interp::run(&g, &inputs).unwrap();
        for threads in [1, 2] {
            let got = backend::run(&cranelift(threads), &g, &inputs).unwrap_or_else(|e| panic!("{d}: {e:?}"));
            for k in ["h", "back"] {
                let (gb, wb) = (got[k].data().to_le_bytes(), want[k].data().to_le_bytes());
                let size = got[k].dtype().size();
                for i in 0..n {
                    let (a, b) = (&gb[i * size..(i + 1) * size], &wb[i * size..(i + 1) * size]);
                    assert_eq!(a, b, "{d} {k}[{i}] of {:e} ({:#x}): {:?} vs {:?}", vals[i], vals[i].to_bits(), got[k].to_f32()[i], want[k].to_f32()[i]);
                }
            }
        }
    }
}

/// The interpreter's error on these inputs, as the engine renders it.
fn interp_error(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> String {
    smelt_engine::Interp.compile(g).unwrap().run(inputs).unwrap_err().to_string()
}

/// Errors that only the data reveals (an index out of range) are reported by the
/// compiled kernels exactly as the interpreter reports them.
#[test]
fn run_time_errors_match_the_interpreter() {
    let cases = [
        ("graph g(x: f32[3, 2], i: i64[3]) -> (y) {\n  y = gather(x, i)\n}\n", vec![3, 2], Tensor::i64(vec![3], vec![1, 3, -9]).unwrap()),
        (
            "graph g(x: f32[2, 2], i: i64[2, 1]) -> (y) {\n  y = moe_dispatch(x, i) {experts = 2, capacity = 2}\n}\n",
            vec![2, 2],
            Tensor::i64(vec![2, 1], vec![1, -1]).unwrap(),
        ),
    ];
    let i32s = |v: Vec<i32>| Tensor::new(vec![v.len()], smelt_ir::Data::I32(v)).unwrap();
    let int_cases: Vec<(&str, Vec<(&str, Tensor)>)> = vec![
        // The first failing element in order is reported.
        ("graph g(a: i32[4], b: i32[4]) -> (y) {\n  y = div(a, b)\n}\n", vec![("a", i32s(vec![1, 2, 3, 4])), ("b", i32s(vec![1, 0, 1, 0]))]),
        ("graph g(a: i64[2], b: i64[1]) -> (y) {\n  y = div(a, b)\n}\n", vec![("a", Tensor::i64(vec![2], vec![5, i64::MIN]).unwrap()), ("b", Tensor::i64(vec![1], vec![-1]).unwrap())]),
        // sparse_matmul: an index out of range in row 0 comes before bad offsets in row 1.
        (
            "graph g(x: f32[1, 3], v: f32[3], i: i32[3], o: i32[4]) -> (y) {\n  y = sparse_matmul(x, v, i, o) {cols = 2}\n}\n",
            vec![("x", Tensor::f32(vec![1, 3], vec![1.0; 3]).unwrap()), ("v", Tensor::f32(vec![3], vec![1.0; 3]).unwrap()), ("i", i32s(vec![0, 2, 1])), ("o", i32s(vec![0, 2, 1, 3]))],
        ),
    ];
    for (src, inputs) in int_cases {
        let g = parse(src).unwrap();
        let inputs: BTreeMap<String, Tensor> = inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let want = interp_error(&g, &inputs);
        let got = cranelift(1).compile(&g).unwrap().run(&inputs).unwrap_err().to_string();
        assert_eq!(got, want, "{src}");
    }
    for (src, xs, idx) in cases {
        let g = parse(src).unwrap();
        let n = xs.iter().product();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::f32(xs, vec![1.0; n]).unwrap()), ("i".to_string(), idx)]);
        let want = interp_error(&g, &inputs);
        for b in [cranelift(1), llvm(1)] {
            let got = b.compile(&g).unwrap().run(&inputs).unwrap_err().to_string();
            assert_eq!(got, want, "{}", b.name());
        }
    }
}

mod cases_conv_pool_rnn;
mod cases_quant;

/// The quantized GEMM's cases (`cases_quant.rs`): qmatmul and the qconvs at
/// awkward sizes, zero points and dtypes.
#[test]
fn quant_ops() {
    let cases = cases_quant::quant();
    for b in backends() {
        run_cases(b.as_ref(), &cases, "quantized GEMMs", cases_quant::QUANT_OPS);
    }
}

/// 3-d convolution and pooling, max pooling's indices, `wrap` padding and LSTM
/// peepholes (`cases_conv_pool_rnn.rs`).
#[test]
fn conv_pool_rnn_ops() {
    let cases = cases_conv_pool_rnn::conv_pool_rnn();
    for b in backends() {
        run_cases(b.as_ref(), &cases, "3-d conv/pool, indices, wrap pad, peepholes", cases_conv_pool_rnn::CONV_POOL_RNN_OPS);
    }
}

mod cases_rows;

/// The native backends, and both compilers running the GPU's lowering (its
/// cooperative loops serially).
fn backends_and_gpu_schedule() -> Vec<Box<dyn Backend>> {
    let mut all = backends();
    for backend in [smelt_codegen::Backend::Cranelift, smelt_codegen::Backend::Llvm] {
        let label = format!("{backend:?} with the wgsl schedule");
        all.push(Box::new(backend::scheduled(label, backend, smelt_codegen::wgsl::target(), 2)));
    }
    all
}

/// Row-wise reductions at lengths where the GPU makes them cooperative
/// (`cases_rows.rs`); on the CPU backends with their own schedules, and with the
/// GPU's (cooperative loops run serially).
#[test]
fn rows_ops() {
    let cases = cases_rows::rows();
    for b in backends_and_gpu_schedule() {
        run_cases(b.as_ref(), &cases, "row reductions", cases_rows::ROWS_OPS);
    }
}

mod cases_pool;

/// Large-window max/avg pooling (`cases_pool.rs`), where the GPU lowering makes a
/// workgroup per output; on the CPU backends with their own schedules, and with
/// the GPU's (the cooperative loops run serially).
#[test]
fn pool_ops() {
    let cases = cases_pool::pools();
    for b in backends_and_gpu_schedule() {
        run_cases(b.as_ref(), &cases, "large-window pooling", cases_pool::POOL_OPS);
    }
}

mod cases_i64;

/// i64 tensors as data over their whole range (`cases_i64.rs`).
#[test]
fn i64_ops() {
    let cases = cases_i64::cases();
    for b in backends() {
        run_cases(b.as_ref(), &cases, "i64 data", cases_i64::I64_OPS);
    }
}
