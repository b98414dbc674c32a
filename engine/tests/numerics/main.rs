//! The numerical suite: every lowered op on random shapes (odd, prime, not
//! multiples of 4, broadcast, parallel-sized), every fused form, the interpreter's
//! numpy fixtures, the examples and the zoo models, on each backend and every
//! schedule a host may pick, against the reference interpreter — each graph as
//! written and as `-O2` optimizes it. Outputs are compared by
//! `smelt_interp::compare` (f32: `|Δ| ≤ 1e-4·max|want| + 1e-4·|want|` per output;
//! integers and bools exact).
//!
//! A case is filed under its labels, `op(dtype)` for each of its nodes
//! (`report::labels`). On the CPU backends every case must pass: "not supported"
//! is a failure. On WGSL a case may be refused only if it is on the reviewed list
//! `wgsl::EXPECTED_UNSUPPORTED`, each entry with its reason, and an entry that
//! runs is a failure too (the list stays true). `coverage` checks that every op of
//! the catalogue (`smelt_ir::ops::op_names`) has a case, so a new op cannot be
//! forgotten here.

mod backend;
mod cases;
mod cases_conv_pool_rnn;
mod cases_i64;
mod cases_pool;
mod cases_quant;
mod cases_rows;
mod cases_sparse;
mod report;
mod wgsl;
mod zoo;

use backend::{RunError, cranelift, llvm};
use report::{Table, labels};
use smelt_engine::{Backend, OptLevel, ScheduleOptions, Tensors, Ukernels};
use smelt_interp::compare::compare_all;
use smelt_ir::{Bindings, Graph, Tensor, load_model, text::parse, weights::read_safetensors};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A case ready to run on any backend: the graph (weights set), its inputs, the
/// interpreter's outputs, and the graph as `-O2` optimizes it when that changes it.
#[derive(Debug)]
pub struct Checked {
    pub name: String,
    pub labels: BTreeSet<String>,
    pub g: Graph,
    pub optimized: Option<Graph>,
    pub inputs: Tensors,
    /// The interpreter's outputs, or why it failed.
    pub want: Result<Tensors, String>,
}

/// Prepares a case: runs the interpreter once and the `-O2` pipeline once, for
/// every backend to use.
pub fn checked(name: &str, g: Graph, inputs: Tensors) -> Checked {
    let want = smelt_interp::run(&g, &inputs).map_err(|e| e.to_string());
    let mut o = g.clone();
    smelt_engine::optimize(&mut o, OptLevel::O2, smelt_engine::BackendKind::Cranelift).unwrap_or_else(|e| panic!("{name}: -O2 fails: {e}"));
    let optimized = (smelt_ir::text::print(&o) != smelt_ir::text::print(&g)).then_some(o);
    Checked { name: name.to_string(), labels: labels(&g), g, optimized, inputs, want }
}

/// The op cases, parsed, with their weights.
pub fn from_cases(cases: &[cases::Case]) -> Vec<Checked> {
    cases
        .iter()
        .map(|c| {
            let mut g = parse(&c.src).unwrap_or_else(|e| panic!("{}: {e:?}\n{}", c.name, c.src));
            for (k, w) in &c.weights {
                g.set_weight(k.clone(), w.clone());
            }
            checked(&c.name, g, c.inputs.clone())
        })
        .collect()
}

/// Cases a backend may refuse, by name (exactly, or a prefix ending in `*`),
/// each with the reason.
pub type Expected<'a> = &'a [(&'a str, &'a str)];

fn expected_reason<'a>(expected: Expected<'a>, name: &str) -> Option<(&'a str, &'a str)> {
    expected.iter().copied().find(|(pat, _)| match pat.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => *pat == name,
    })
}

/// Runs one case on `b` (as written, then optimized) and files the result.
fn check(table: &mut Table, b: &dyn Backend, c: &Checked, expected: Expected) {
    let want = match &c.want {
        Ok(w) => w,
        Err(e) => return table.fail(&c.labels, format!("{}: the interpreter fails: {e}", c.name)),
    };
    let allowed = expected_reason(expected, &c.name);
    let mut runs = vec![(c.name.clone(), &c.g)];
    if let Some(o) = &c.optimized {
        runs.push((format!("{} at -O2", c.name), o));
    }
    for (name, g) in runs {
        match backend::run(b, g, &c.inputs) {
            Ok(got) => {
                if let Err(m) = compare_all(&name, &got, want) {
                    return table.fail(&c.labels, m);
                }
            }
            Err(RunError::Unsupported(m)) => {
                return match allowed {
                    Some((pat, _)) => {
                        table.expected.insert(pat.to_string(), true);
                        table.unsupported(&c.labels)
                    }
                    None => table.fail(&c.labels, format!("{name}: unsupported, and not expected to be: {m}")),
                };
            }
            Err(RunError::Failed(m)) => return table.fail(&c.labels, format!("{name}: {m}")),
        }
    }
    if let Some((pat, reason)) = allowed {
        table.expected.entry(pat.to_string()).or_insert(false);
        table.fail(&c.labels, format!("{}: runs, but is listed as unsupported ({reason}): take it off the list", c.name));
        return;
    }
    table.pass(&c.labels)
}

/// Runs a suite on `b` and reports it as "`title` on <backend>": every case must
/// pass, or be refused as `expected` says.
pub fn run_suite(b: &dyn Backend, suite: &[Checked], title: &str, expected: Expected) -> Table {
    let mut table = Table::default();
    for c in suite {
        check(&mut table, b, c, expected);
    }
    finish(&table, &format!("{title} on {}", b.name()));
    table
}

fn finish(table: &Table, title: &str) {
    eprintln!("{}", table.render(title));
    assert!(table.failures.is_empty(), "{title}: {} failures:\n{}", table.failures.len(), table.failures.join("\n"));
}

/// The CPU backends and every schedule a host may pick that this host can run:
/// Cranelift with the host's micro-kernels (its default), with each ISA's
/// micro-kernel, and with its own 4×8 f32x4 tile; LLVM at 512, 256 and 128 bits,
/// and calling the micro-kernels; on 1 and 2 threads. The schedules this host
/// cannot run are named on stderr.
fn backends() -> Vec<Box<dyn Backend>> {
    use smelt_codegen::Backend::{Cranelift, Llvm};
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(cranelift(1)), Box::new(cranelift(2)), Box::new(llvm(1)), Box::new(llvm(2))];
    let sw = |label: &str, b, o: ScheduleOptions| -> Option<Box<dyn Backend>> {
        let n = backend::switched(label, b, o);
        match n.target() {
            Ok(_) => Some(Box::new(n)),
            Err(e) => {
                eprintln!("not run on this host: {label} ({e})");
                None
            }
        }
    };
    let uk = |u| ScheduleOptions { ukernels: Some(u), ..Default::default() };
    let bits = |b| ScheduleOptions { vector_bits: Some(b), ..Default::default() };
    all.extend(sw("cranelift, own 4x8 tile", Cranelift, uk(Ukernels::Off)));
    // The host's own micro-kernel is the default above; the other ISA's here.
    let host = smelt_codegen::ukernel::host();
    if host != Some(smelt_codegen::ukernel::Isa::Avx2) {
        all.extend(sw("cranelift, AVX2 6x16 micro-kernel", Cranelift, uk(Ukernels::Avx2)));
    }
    if host != Some(smelt_codegen::ukernel::Isa::Avx512) {
        all.extend(sw("cranelift, AVX-512 8x32 micro-kernel", Cranelift, uk(Ukernels::Avx512)));
    }
    let widest = smelt_codegen::schedule::host_vector_bits();
    for b in [512, 256, 128].into_iter().filter(|&b| b != widest) {
        all.extend(sw(&format!("llvm at {b} bits"), Llvm, bits(b)));
    }
    all.extend(sw("llvm calling the micro-kernels", Llvm, uk(Ukernels::Host)));
    all
}

/// The op cases of `cases.rs` (every backend runs them all).
pub fn op_cases() -> Vec<cases::Case> {
    let mut cases = cases::elementwise();
    cases.extend(cases::linalg());
    cases.extend(cases::attention());
    cases.extend(cases::integer());
    cases.extend(cases::saturating());
    cases.extend(cases::quant_and_routing());
    cases.extend(cases::half());
    cases.extend(cases::norm());
    cases.extend(cases::resize());
    cases
}

#[test]
fn ops() {
    let suite = from_cases(&op_cases());
    for b in backends() {
        run_suite(b.as_ref(), &suite, "ops", &[]);
    }
}

/// The interpreter's fixtures (`tests/fixtures/interp/`, listed in its
/// `MANIFEST.txt`): their graphs and inputs, the interpreter's outputs.
/// `SMELT_FIXTURE=x` keeps the cases whose name contains `x`; without it, every
/// case of the manifest is there.
pub fn fixtures_suite() -> Vec<Checked> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.txt")).expect("MANIFEST.txt");
    let filter = std::env::var("SMELT_FIXTURE").unwrap_or_default();
    let names: Vec<&str> =
        manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).filter_map(|l| l.split_whitespace().next()).collect();
    let suite: Vec<Checked> = names
        .iter()
        .filter(|n| n.contains(filter.as_str()))
        .map(|case| {
            let g = load_model(&dir.join(format!("{case}.smelt"))).unwrap_or_else(|e| panic!("{case}: {e:?}"));
            let io = read_safetensors(&dir.join(format!("{case}.io.safetensors"))).expect("io file");
            let inputs: Tensors = io.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect();
            checked(case, g, inputs)
        })
        .collect();
    let want = names.iter().filter(|n| n.contains(filter.as_str())).count();
    assert_eq!(suite.len(), want, "fixtures loaded");
    if filter.is_empty() {
        assert_eq!(suite.len(), names.len(), "every fixture of MANIFEST.txt");
    } else {
        assert!(!suite.is_empty(), "SMELT_FIXTURE={filter} matches no fixture");
    }
    suite
}

#[test]
fn fixtures() {
    let suite = fixtures_suite();
    for b in [cranelift(1), llvm(1)] {
        run_suite(&b, &suite, "interpreter fixtures", &[]);
    }
}

/// Every example model, on random inputs and two sizes of its symbolic dims.
pub fn examples_suite() -> Vec<Checked> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    files.sort();
    assert!(files.len() >= 3);
    let mut suite = vec![];
    for path in &files {
        let g = load_model(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        for size in [1u64, 5] {
            let dims: Bindings = ["N", "B", "T"].iter().map(|s| (s.to_string(), size + (s == &"T") as u64 * 2)).collect();
            let inputs = smelt_interp::init::random_inputs(&g, size, &dims).expect("inputs");
            suite.push(checked(&format!("example {name}@{size}"), g.clone(), inputs));
        }
    }
    suite
}

#[test]
fn examples() {
    let suite = examples_suite();
    for b in backends() {
        run_suite(b.as_ref(), &suite, "examples", &[]);
    }
}

/// Every zoo model at its small settings (and a few at medium ones).
pub fn zoo_suite(medium: bool) -> Vec<Checked> {
    let mut suite: Vec<Checked> = zoo::SMALL
        .iter()
        .map(|&(name, settings, dims)| {
            let (g, inputs) = zoo::model(name, settings, dims);
            checked(&format!("zoo {name}"), g, inputs)
        })
        .collect();
    if medium {
        suite.extend(zoo::MEDIUM.iter().map(|&(name, settings, dims)| {
            let (g, inputs) = zoo::model(name, settings, dims);
            checked(&format!("zoo {name} (medium)"), g, inputs)
        }));
    }
    suite
}

#[test]
fn zoo_models() {
    let suite = zoo_suite(true);
    for b in backends() {
        run_suite(b.as_ref(), &suite, "zoo models", &[]);
    }
}

/// Conversions to and from f16/bf16 are bit-exact with the `half` crate (the
/// interpreter's), on both JITs: ties to even, subnormals, overflow to
/// infinity, NaN.
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
    // Every 16-bit pattern read back as f32 (to f32 and round trip).
    let n = vals.len();
    for d in [smelt_ir::DType::F16, smelt_ir::DType::BF16] {
        let src = format!("graph g(x: f32[{n}]) -> (h, back) {{\n  h = cast(x) {{to = {d}}}\n  back = cast(h) {{to = f32}}\n}}\n");
        let g = parse(&src).unwrap();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::f32(vec![n], vals.clone()).unwrap())]);
        let want = smelt_interp::run(&g, &inputs).unwrap();
        let bits: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        let all = Tensor::new(vec![65536], smelt_ir::Data::from_le_bytes(d, &bits).unwrap()).unwrap();
        let g16 = parse(&format!("graph g(x: {d}[65536]) -> (y) {{\n  y = cast(x) {{to = f32}}\n}}\n")).unwrap();
        let in16 = BTreeMap::from([("x".to_string(), all)]);
        let want16 = smelt_interp::run(&g16, &in16).unwrap();
        for b in [cranelift(1), cranelift(2), llvm(1), llvm(2)] {
            let got = backend::run(&b, &g, &inputs).unwrap_or_else(|e| panic!("{d} on {}: {e:?}", b.name()));
            for k in ["h", "back"] {
                let (gb, wb) = (got[k].data().to_le_bytes(), want[k].data().to_le_bytes());
                let size = got[k].dtype().size();
                for i in 0..n {
                    let (a, w) = (&gb[i * size..(i + 1) * size], &wb[i * size..(i + 1) * size]);
                    assert_eq!(a, w, "{d} {k}[{i}] of {:e} ({:#x}) on {}", vals[i], vals[i].to_bits(), b.name());
                }
            }
            let got16 = backend::run(&b, &g16, &in16).unwrap_or_else(|e| panic!("{d} on {}: {e:?}", b.name()));
            let (gb, wb) = (got16["y"].data().to_le_bytes(), want16["y"].data().to_le_bytes());
            let nan = |c: &[u8]| f32::from_le_bytes(c.try_into().unwrap()).is_nan();
            let bad = gb.chunks(4).zip(wb.chunks(4)).position(|(a, w)| a != w && !(nan(a) && nan(w)));
            assert_eq!(bad, None, "{d} bits → f32 on {}", b.name());
        }
    }
}

/// The interpreter's error on these inputs, as the engine renders it.
fn interp_error(g: &Graph, inputs: &Tensors) -> String {
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
    let mut all: Vec<(Graph, Tensors)> = vec![];
    for (src, inputs) in int_cases {
        all.push((parse(src).unwrap(), inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    }
    for (src, xs, idx) in cases {
        let n = xs.iter().product();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::f32(xs, vec![1.0; n]).unwrap()), ("i".to_string(), idx)]);
        all.push((parse(src).unwrap(), inputs));
    }
    for (g, inputs) in &all {
        let want = interp_error(g, inputs);
        for b in [cranelift(1), llvm(1)] {
            let got = b.compile(g).unwrap().run(inputs).unwrap_err().to_string();
            assert_eq!(got, want, "{} on {}", smelt_ir::text::print(g), b.name());
        }
    }
}

/// NaN semantics as the interpreter's, on the CPU backends (`wgsl_nan_semantics`
/// on WGSL): NaN-propagating max/min and reductions, float → int casts of NaN
/// (0), float → bool (NaN is true), `!=` between floats (true with a NaN).
#[test]
fn nan_semantics() {
    let suite = vec![nan_case()];
    for b in backends() {
        run_suite(b.as_ref(), &suite, "NaN semantics", &[]);
    }
}

/// The graph of `nan_semantics` and its inputs.
pub fn nan_case() -> Checked {
    use smelt_ir::Data;
    let src = "graph g(a: f32[7], b: f32[7]) -> (mx, mn, i, t, r, ne) {\n  mx = max(a, b)\n  mn = min(a, b)\n  i = cast(a) {to = i32}\n  t = cast(a) {to = bool}\n  r = reduce_max(a) {axes = [0], keepdims = false}\n  e = equal(a, b)\n  ne = not(e)\n}\n";
    let g = parse(src).unwrap();
    let nan = f32::NAN;
    let inputs = BTreeMap::from([
        ("a".to_string(), Tensor::new(vec![7], Data::F32(vec![nan, 1.0, nan, f32::NEG_INFINITY, 2.0, 0.0, -3.5])).unwrap()),
        ("b".to_string(), Tensor::new(vec![7], Data::F32(vec![0.0, nan, nan, 3.0, 2.0, nan, -3.5])).unwrap()),
    ]);
    checked("nan-semantics", g, inputs)
}

/// The quantized GEMM's cases (`cases_quant.rs`): qmatmul and the qconvs at
/// awkward sizes, zero points and dtypes.
#[test]
fn quant_ops() {
    let suite = from_cases(&cases_quant::quant());
    for b in backends() {
        run_suite(b.as_ref(), &suite, "quantized GEMMs", &[]);
    }
}

/// `sparse_matmul` with constant weights (`cases_sparse.rs`): the CPU's panel
/// and column kernels at every schedule (the GPU's in `wgsl::wgsl_sparse`).
#[test]
fn sparse_ops() {
    let suite = from_cases(&cases_sparse::sparse());
    for b in backends() {
        run_suite(b.as_ref(), &suite, "constant sparse weights", &[]);
    }
}

/// 3-d convolution and pooling, max pooling's indices, `wrap` padding and LSTM
/// peepholes, and the conv and recurrence schedules' paths
/// (`cases_conv_pool_rnn.rs`).
#[test]
fn conv_pool_rnn_ops() {
    let suite = from_cases(&cases_conv_pool_rnn::conv_pool_rnn());
    for b in backends() {
        run_suite(b.as_ref(), &suite, "3-d conv/pool, indices, wrap pad, peepholes", &[]);
    }
}

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
    let suite = from_cases(&cases_rows::rows());
    for b in backends_and_gpu_schedule() {
        run_suite(b.as_ref(), &suite, "row reductions", &[]);
    }
}

/// Large-window max/avg pooling (`cases_pool.rs`), where the GPU lowering makes a
/// workgroup per output; on the CPU backends with their own schedules, and with
/// the GPU's (the cooperative loops run serially).
#[test]
fn pool_ops() {
    let suite = from_cases(&cases_pool::pools());
    for b in backends_and_gpu_schedule() {
        run_suite(b.as_ref(), &suite, "large-window pooling", &[]);
    }
}

/// i64 tensors as data over their whole range (`cases_i64.rs`).
#[test]
fn i64_ops() {
    let suite = from_cases(&cases_i64::cases());
    for b in backends() {
        run_suite(b.as_ref(), &suite, "i64 data", &[]);
    }
}

/// Every op of the catalogue (`smelt_ir::ops::op_names`) has a case in the suite
/// (op cases, fixtures, examples or zoo models), so that a new op cannot be
/// forgotten; and every op that `lower::support` accepts in a case runs there on
/// the CPU backends (the suites above fail on "not supported").
#[test]
fn coverage() {
    let mut cases = op_cases();
    cases.extend(cases_quant::quant());
    cases.extend(cases_conv_pool_rnn::conv_pool_rnn());
    cases.extend(cases_rows::rows());
    cases.extend(cases_pool::pools());
    cases.extend(cases_i64::cases());
    cases.extend(cases_sparse::sparse());
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for c in &cases {
        covered.extend(labels(&parse(&c.src).unwrap_or_else(|e| panic!("{}: {e:?}", c.name))));
    }
    for c in fixtures_suite().iter().chain(&examples_suite()).chain(&zoo_suite(false)) {
        covered.extend(c.labels.iter().cloned());
    }
    let ops: BTreeSet<&str> = covered.iter().map(|l| report::op_of_label(l)).collect();
    let missing: Vec<&str> = smelt_ir::ops::op_names().into_iter().filter(|o| !ops.contains(o)).collect();
    eprintln!("{} labels (op(dtype)) covered: {}", covered.len(), covered.iter().cloned().collect::<Vec<_>>().join(", "));
    assert!(missing.is_empty(), "ops of the catalogue with no numerical case: {missing:?}");
}

/// The interpreter's outputs of `suite` and the targets it is meant for are
/// checked by `schedules.rs`.
mod schedules;
