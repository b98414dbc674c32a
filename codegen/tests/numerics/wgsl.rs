//! The numerical suite on the WGSL backend (wgpu on Vulkan: Mesa's lavapipe in CI,
//! a real GPU where there is one): every op case, the interpreter's fixtures and
//! the examples, against the interpreter. Tolerances are the suite's (the shaders
//! use the CPU backends' polynomial transcendentals and compute integers exactly
//! in i32/i64; requantization's f64 is real f64 via `shader-f64`).
//!
//! Without an adapter these tests FAIL (CI installs lavapipe), unless
//! `SMELT_SKIP_GPU=1` says to skip them.

use super::backend::{Backend, RunError};
use super::report::Table;
use super::{FIXTURE_OPS, cases, check, finish, op_of, run_cases};
use smelt_ir::{Bindings, Graph, Tensor, load_model, text::parse, weights::read_safetensors};
use smelt_runtime::gpu::{self, Device};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The WGSL backend through the GPU runtime.
pub struct Wgsl {
    pub device: Arc<Device>,
}

impl Backend for Wgsl {
    fn name(&self) -> String {
        format!("wgsl ({})", self.device.info.name)
    }

    fn run(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>, RunError> {
        let err = |e: gpu::Error| match e {
            gpu::Error::Codegen(smelt_codegen::Error::Unsupported { .. }) => RunError::Unsupported,
            e => RunError::Failed(e.to_string()),
        };
        let model = gpu::compile(g, self.device.clone()).map_err(err)?;
        model.run(inputs).map_err(err)
    }
}

/// The device, or `None` when `SMELT_SKIP_GPU=1` and there is none; without it a
/// missing adapter fails the test.
pub fn backend() -> Option<Wgsl> {
    match gpu::device(None) {
        Ok(device) => Some(Wgsl { device }),
        Err(e) if std::env::var("SMELT_SKIP_GPU").is_ok_and(|v| v == "1") => {
            eprintln!("skipping the WGSL suite (SMELT_SKIP_GPU=1): {e}");
            None
        }
        Err(e) => panic!("{e}\n(set SMELT_SKIP_GPU=1 to skip the WGSL tests on a machine without Vulkan)"),
    }
}

/// Ops the WGSL backend lowers: each must pass at least one case.
pub const WGSL_OPS: &[&str] = &[
    "relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "exp", "log", "sqrt", "rsqrt", "neg", "abs", "erf", "sin", "cos",
    "reciprocal", "floor", "ceil", "round", "sign", "softplus", "silu", "identity", "leaky_relu", "elu", "hard_sigmoid",
    "clip", "not", "add", "sub", "mul", "div", "max", "min", "pow", "prelu", "equal", "less", "less_equal", "greater",
    "greater_equal", "and", "or", "xor", "where", "cast", "elementwise", "matmul", "gemm", "fused_matmul", "f16 relu",
    "f16 exp", "f16 tanh", "f16 gelu", "f16 add", "f16 mul", "f16 div", "f16 less", "f16 where", "f16 cast", "f16 matmul",
    "f16 softmax", "f16 transpose", "f16 conv2d", "f16 elementwise", "bf16 relu", "bf16 exp", "bf16 tanh", "bf16 gelu",
    "bf16 add", "bf16 mul", "bf16 div", "bf16 less", "bf16 where", "bf16 cast", "bf16 matmul", "bf16 softmax",
    "bf16 transpose", "bf16 conv2d", "bf16 elementwise",
];

#[test]
fn wgsl_ops() {
    let Some(b) = backend() else { return };
    let mut cases = cases::elementwise();
    cases.extend(cases::linalg());
    cases.extend(cases::half());
    run_cases(&b, &cases, "ops", WGSL_OPS);
}

/// Softmax, layer norm, reductions and global pooling over long rows: a
/// workgroup per row with a tree reduction in shared memory (and short rows, one
/// per invocation).
#[test]
fn wgsl_rows() {
    let Some(b) = backend() else { return };
    run_cases(&b, &super::cases_rows::rows(), "row reductions", super::cases_rows::ROWS_OPS);
}

/// Integer arithmetic (i32 saturating as the interpreter's i64-then-saturate),
/// division, integer products (matmul's i64 accumulator as two i32 words; gemm
/// in real f64, as the reference).
#[test]
fn wgsl_integer() {
    let Some(b) = backend() else { return };
    let mut cases = cases::integer();
    cases.extend(cases::saturating());
    run_cases(&b, &cases, "integer ops", &["div(int)", "matmul(int)", "gemm(int)", "add(i32)", "sub(i32)", "mul(i32)", "div(i32)", "neg(i32)", "abs(i32)", "matmul(i32)", "reduce_sum(i32)", "reduce_prod(int)"]);
}

/// i64 tensors as data (`cases_i64.rs`): two-word integers in the shaders,
/// exactly as the interpreter computes.
#[test]
fn wgsl_i64() {
    let Some(b) = backend() else { return };
    run_cases(&b, &super::cases_i64::cases(), "i64 data", super::cases_i64::I64_OPS);
}

/// Conversions between i64 and f32 bit for bit against the interpreter: every
/// special value and random ones of every magnitude (i64 → f32 rounds to nearest
/// even at every bit position), and f32 → i64 over exponents around the range's
/// ends (truncating, saturating, NaN → 0).
#[test]
fn wgsl_i64_conversions_are_bit_exact() {
    use rand::{Rng, SeedableRng};
    use smelt_ir::Data;
    let Some(b) = backend() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let mut ints: Vec<i64> = super::cases_i64::SPECIAL.to_vec();
    for s in 0..64 {
        // Around every power of two, and ties of the f32 rounding at each width.
        let p = 1i64.wrapping_shl(s);
        ints.extend([p, p.wrapping_add(1), p.wrapping_sub(1), p.wrapping_neg(), p | (p >> 25), ((p >> 24) * 3) | p]);
        ints.extend((0..8).map(|_| rng.random::<i64>() >> s));
    }
    let mut floats: Vec<f32> = vec![f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, f32::MIN_POSITIVE, 1e-45];
    for e in 0..70 {
        let p = 2f32.powi(e);
        floats.extend([p, -p, p * 1.5, -p * 1.5, p * 0.75, f32::from_bits(p.to_bits() + 1), -f32::from_bits(p.to_bits() - 1)]);
    }
    let runs = [("i64", "f32", Data::I64(ints.clone())), ("f32", "i64", Data::F32(floats)), ("i64", "i64", Data::I64(ints))];
    for (from, to, data) in runs {
        let n = data.len();
        let body = if from == to { "  y = neg(x)" } else { "  y = cast(x) {to = TO}" }.replace("TO", to);
        let g = parse(&format!("graph g(x: {from}[{n}]) -> (y) {{\n{body}\n}}\n")).unwrap();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::new(vec![n], data).unwrap())]);
        let want = smelt_runtime::run(&g, &inputs).unwrap()["y"].data().to_le_bytes();
        let got = gpu::compile(&g, b.device.clone()).unwrap().run(&inputs).unwrap()["y"].data().to_le_bytes();
        let w = if to == "f32" { 4 } else { 8 };
        let bad: Vec<String> = want
            .chunks(w)
            .zip(got.chunks(w))
            .enumerate()
            .filter(|(_, (a, g))| a != g)
            .take(5)
            .map(|(i, (a, g))| format!("element {i} ({:?}): want {a:02x?}, got {g:02x?}", inputs["x"].data().to_le_bytes().chunks(8 - (from == "f32") as usize * 4).nth(i)))
            .collect();
        assert!(bad.is_empty(), "{from} → {to}:\n{}", bad.join("\n"));
    }
}

#[test]
fn wgsl_fixtures() {
    let Some(b) = backend() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interp");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.txt")).expect("MANIFEST.txt");
    let mut table = Table::default();
    for line in manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let case = line.split_whitespace().next().unwrap_or_default();
        let g = load_model(&dir.join(format!("{case}.smelt"))).unwrap_or_else(|e| panic!("{case}: {e:?}"));
        let io = read_safetensors(&dir.join(format!("{case}.io.safetensors"))).expect("io file");
        let inputs: BTreeMap<String, Tensor> = io.into_iter().filter(|(k, _)| !k.starts_with("expected.")).collect();
        check(&mut table, &b, &op_of(&g), case, &g, &inputs);
    }
    finish(&table, &format!("interpreter fixtures on {}", b.name()), FIXTURE_OPS);
}

#[test]
fn wgsl_examples() {
    let Some(b) = backend() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("examples/").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "smelt"));
    files.sort();
    let mut table = Table::default();
    for path in &files {
        let g = load_model(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        for size in [1u64, 5] {
            let dims: Bindings = ["N", "B", "T"].iter().map(|s| (s.to_string(), size + (s == &"T") as u64 * 2)).collect();
            let inputs = smelt_runtime::init::random_inputs(&g, size, &dims).expect("inputs");
            check(&mut table, &b, &format!("example {name}"), &format!("{name}@{size}"), &g, &inputs);
        }
    }
    finish(&table, &format!("examples on {}", b.name()), &["example attention", "example mlp", "example resblock"]);
}

/// Errors only the data reveals are reported from the status buffers exactly as
/// the interpreter reports them.
#[test]
fn wgsl_run_time_errors_match_the_interpreter() {
    let Some(b) = backend() else { return };
    let g = parse("graph g(x: f32[3, 2], i: i64[3]) -> (y) {\n  y = gather(x, i)\n}\n").unwrap();
    let inputs = BTreeMap::from([
        ("x".to_string(), Tensor::f32(vec![3, 2], vec![1.0; 6]).unwrap()),
        ("i".to_string(), Tensor::i64(vec![3], vec![1, 3, -9]).unwrap()),
    ]);
    let want = smelt_runtime::run(&g, &inputs).unwrap_err().to_string();
    let model = gpu::compile(&g, b.device.clone()).unwrap();
    let got = model.run(&inputs).unwrap_err().to_string();
    assert_eq!(got, want);
    // i32 division by zero: the first failing element's operands.
    let g = parse("graph g(a: i32[5], b: i32[5]) -> (y) {\n  y = div(a, b)\n}\n").unwrap();
    let inputs = BTreeMap::from([
        ("a".to_string(), Tensor::new(vec![5], smelt_ir::tensor::Data::I32(vec![i32::MIN, 7, -9, 4, 5])).unwrap()),
        ("b".to_string(), Tensor::new(vec![5], smelt_ir::tensor::Data::I32(vec![-1, 2, 0, 0, 1])).unwrap()),
    ]);
    let want = smelt_runtime::run(&g, &inputs).unwrap_err().to_string();
    let got = gpu::compile(&g, b.device.clone()).unwrap().run(&inputs).unwrap_err().to_string();
    assert_eq!(got, want);
    // i64 division: MIN / -1 and by zero, the first failing element's operands
    // (both words).
    let g = parse("graph g(a: i64[5], b: i64[5]) -> (y) {\n  y = div(a, b)\n}\n").unwrap();
    for (a, d) in [([i64::MAX, 7, i64::MIN, 4, 5], [-1, 2, -1, 0, 1]), ([1 << 40, 7, -9, i64::MIN, 5], [3, 2, 0, -1, 1])] {
        let inputs = BTreeMap::from([
            ("a".to_string(), Tensor::i64(vec![5], a.to_vec()).unwrap()),
            ("b".to_string(), Tensor::i64(vec![5], d.to_vec()).unwrap()),
        ]);
        let want = smelt_runtime::run(&g, &inputs).unwrap_err().to_string();
        let got = gpu::compile(&g, b.device.clone()).unwrap().run(&inputs).unwrap_err().to_string();
        assert_eq!(got, want);
    }
}

/// The 16-bit conversions bit for bit against the interpreter (the `half`
/// crate): every f16 and bf16 pattern to f32, and f32 → f16/bf16 over every
/// top-16-bit pattern with low halves at and around each rounding boundary
/// (ties to even, subnormals, overflow to inf, NaN). NaNs compare as NaN.
#[test]
fn wgsl_half_conversions_are_bit_exact() {
    use smelt_ir::Data;
    let Some(b) = backend() else { return };
    let lows = [0x0000u32, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff];
    let f32s: Vec<f32> = (0..65536u32).flat_map(|hi| lows.iter().map(move |lo| f32::from_bits(hi << 16 | lo))).collect();
    let bits: Vec<u8> = (0..65536u32).flat_map(|h| (h as u16).to_le_bytes()).collect();
    let runs = [
        ("f16", "f32", Data::from_le_bytes(smelt_ir::DType::F16, &bits).unwrap()),
        ("bf16", "f32", Data::from_le_bytes(smelt_ir::DType::BF16, &bits).unwrap()),
        ("f32", "f16", Data::F32(f32s.clone())),
        ("f32", "bf16", Data::F32(f32s)),
    ];
    for (from, to, data) in runs {
        let n = data.len();
        let g = parse(&format!("graph g(x: {from}[{n}]) -> (y) {{\n  y = cast(x) {{to = {to}}}\n}}\n")).unwrap();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::new(vec![n], data).unwrap())]);
        let want = smelt_runtime::run(&g, &inputs).unwrap()["y"].data().to_le_bytes();
        let got = gpu::compile(&g, b.device.clone()).unwrap().run(&inputs).unwrap()["y"].data().to_le_bytes();
        let w = if to == "f32" { 4 } else { 2 };
        let nan = |c: &[u8]| if w == 4 { f32::from_le_bytes(c.try_into().unwrap()).is_nan() } else {
            let h = u16::from_le_bytes(c.try_into().unwrap());
            if to == "f16" { h & 0x7c00 == 0x7c00 && h & 0x3ff != 0 } else { h & 0x7f80 == 0x7f80 && h & 0x7f != 0 }
        };
        let bad: Vec<String> = want
            .chunks(w)
            .zip(got.chunks(w))
            .enumerate()
            .filter(|(_, (a, g))| a != g && !(nan(a) && nan(g)))
            .take(5)
            .map(|(i, (a, g))| format!("element {i}: want {a:02x?}, got {g:02x?}"))
            .collect();
        assert!(bad.is_empty(), "{from} → {to}:\n{}", bad.join("\n"));
    }
}
