//! The numerical suite on the WGSL backend (wgpu on Vulkan: Mesa's lavapipe in CI,
//! a real GPU where there is one): every op case, the interpreter's fixtures and
//! the examples, against the interpreter. Tolerances are the suite's (the shaders
//! use the CPU backends' polynomial transcendentals and compute integers exactly
//! in i32/i64; requantization's f64 is real f64 via `shader-f64`).
//!
//! Without an adapter these tests FAIL (CI installs lavapipe), unless
//! `SMELT_SKIP_GPU=1` says to skip them.

use super::{cases, cases_conv_pool_rnn, cases_quant, examples_suite, fixtures_suite, from_cases, nan_case, op_cases, run_suite, zoo_suite};
use smelt_engine::{Backend, ScheduleOptions};
use smelt_ir::{Graph, Tensor, text::parse};
use std::collections::BTreeMap;

/// The WGSL backend through the engine, with the device's emit options (native
/// f16 where the adapter has `shader-f16`) or forced ones.
#[derive(Debug, Clone)]
pub struct Wgsl(smelt_engine::Wgsl);

impl Wgsl {
    /// The same device with f16 native or packed (`--schedule wgsl-f16=…`).
    pub fn with_native_f16(&self, native_f16: bool) -> Wgsl {
        let schedule = ScheduleOptions { wgsl_f16: Some(native_f16), ..self.0.schedule.clone() };
        Wgsl(smelt_engine::Wgsl { schedule, ..self.0.clone() })
    }

    /// Whether the adapter has `shader-f16` (native f16 storage can run).
    pub fn has_f16(&self) -> bool {
        self.device().shader_f16()
    }

    pub fn device(&self) -> std::sync::Arc<smelt_runtime::gpu::Device> {
        self.0.device().expect("the device opened before")
    }

    /// Whether its shaders store f16 natively.
    fn native_f16(&self) -> bool {
        self.device().wgsl_options(&self.0.schedule).native_f16
    }

    /// Compiles and runs `g`, panicking on any error.
    fn run(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
        self.0.compile(g).and_then(|m| m.run(inputs)).unwrap_or_else(|e| panic!("{}: {e}", g.name))
    }

    /// Compiles and runs `g`, which must fail; the error.
    fn run_err(&self, g: &Graph, inputs: &BTreeMap<String, Tensor>) -> String {
        self.0.compile(g).and_then(|m| m.run(inputs)).unwrap_err().to_string()
    }
}

impl Backend for Wgsl {
    fn name(&self) -> String {
        let f16 = if self.native_f16() { "f16 native" } else { "f16 packed" };
        format!("wgsl ({}, {f16})", self.device().info.name)
    }

    fn kind(&self) -> smelt_engine::BackendKind {
        smelt_engine::BackendKind::Wgsl
    }

    fn compile(&self, g: &Graph) -> smelt_engine::Result<Box<dyn smelt_engine::Executable>> {
        self.0.compile(g)
    }
}

/// The device, or `None` when `SMELT_SKIP_GPU=1` and there is none; without it a
/// missing adapter fails the test.
pub fn backend() -> Option<Wgsl> {
    let w = smelt_engine::Wgsl::default();
    match w.device() {
        Ok(_) => Some(Wgsl(w)),
        Err(e) if std::env::var("SMELT_SKIP_GPU").is_ok_and(|v| v == "1") => {
            eprintln!("skipping the WGSL suite (SMELT_SKIP_GPU=1): {e}");
            None
        }
        Err(e) => panic!("{e}\n(set SMELT_SKIP_GPU=1 to skip the WGSL tests on a machine without Vulkan)"),
    }
}

/// The cases the WGSL backend refuses, each with the reason (`*` ends a name
/// prefix). Anything else it refuses fails the suite, and so does an entry here
/// that runs.
pub const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[];

#[test]
fn wgsl_ops() {
    let Some(b) = backend() else { return };
    run_suite(&b, &from_cases(&op_cases()), "ops", EXPECTED_UNSUPPORTED);
}

/// The f16/bf16 cases with f16 packed two to a `u32` word (the portable form,
/// `--schedule wgsl-f16=off`), whatever the adapter offers.
#[test]
fn wgsl_half_packed() {
    let Some(b) = backend() else { return };
    let b = b.with_native_f16(false);
    run_suite(&b, &from_cases(&cases::half()), "16-bit floats", EXPECTED_UNSUPPORTED);
}

/// The f16/bf16 cases with native f16 storage (`array<f16>`), on an adapter with
/// `shader-f16`; on one without, a native shader is refused clearly (its
/// WGSL is still validated by naga in `wgsl_snapshots.rs`).
#[test]
fn wgsl_half_native() {
    let Some(b) = backend() else { return };
    let native = b.with_native_f16(true);
    if !b.has_f16() {
        eprintln!("{} lacks shader-f16: checking that native f16 is refused", b.device().info.name);
        let g = parse("graph g(x: f16[3]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
        let e = native.0.compile(&g).unwrap_err().to_string();
        assert!(e.contains("lacks shader-f16"), "{e}");
        return;
    }
    run_suite(&native, &from_cases(&cases::half()), "16-bit floats", EXPECTED_UNSUPPORTED);
}

/// Large-window max/avg pooling (a workgroup per output, `cases_pool.rs`), and
/// the 3-d pooling, indices and padding cases of `cases_conv_pool_rnn.rs`.
#[test]
fn wgsl_pools() {
    let Some(b) = backend() else { return };
    let mut cases = super::cases_pool::pools();
    cases.extend(super::cases_conv_pool_rnn::conv_pool_rnn().into_iter().filter(|c| c.name.contains("pool") || c.name.starts_with("pad")));
    run_suite(&b, &from_cases(&cases), "pooling and padding", EXPECTED_UNSUPPORTED);
}

/// Softmax, layer norm, reductions and global pooling over long rows: a
/// workgroup per row with a tree reduction in shared memory (and short rows, one
/// per invocation).
#[test]
fn wgsl_rows() {
    let Some(b) = backend() else { return };
    run_suite(&b, &from_cases(&super::cases_rows::rows()), "row reductions", EXPECTED_UNSUPPORTED);
}

/// i64 tensors as data (`cases_i64.rs`): two-word integers in the shaders,
/// exactly as the interpreter computes.
#[test]
fn wgsl_i64() {
    let Some(b) = backend() else { return };
    run_suite(&b, &from_cases(&super::cases_i64::cases()), "i64 data", EXPECTED_UNSUPPORTED);
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
        let want = smelt_interp::run(&g, &inputs).unwrap()["y"].data().to_le_bytes();
        let got = b.run(&g, &inputs)["y"].data().to_le_bytes();
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
    run_suite(&b, &fixtures_suite(), "interpreter fixtures", EXPECTED_UNSUPPORTED);
}

#[test]
fn wgsl_examples() {
    let Some(b) = backend() else { return };
    run_suite(&b, &examples_suite(), "examples", EXPECTED_UNSUPPORTED);
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
    let want = super::interp_error(&g, &inputs);
    let got = b.run_err(&g, &inputs);
    assert_eq!(got, want);
    // i32 division by zero: the first failing element's operands.
    let g = parse("graph g(a: i32[5], b: i32[5]) -> (y) {\n  y = div(a, b)\n}\n").unwrap();
    let inputs = BTreeMap::from([
        ("a".to_string(), Tensor::new(vec![5], smelt_ir::tensor::Data::I32(vec![i32::MIN, 7, -9, 4, 5])).unwrap()),
        ("b".to_string(), Tensor::new(vec![5], smelt_ir::tensor::Data::I32(vec![-1, 2, 0, 0, 1])).unwrap()),
    ]);
    let want = super::interp_error(&g, &inputs);
    let got = b.run_err(&g, &inputs);
    assert_eq!(got, want);
    // i64 division: MIN / -1 and by zero, the first failing element's operands
    // (both words).
    let g = parse("graph g(a: i64[5], b: i64[5]) -> (y) {\n  y = div(a, b)\n}\n").unwrap();
    for (a, d) in [([i64::MAX, 7, i64::MIN, 4, 5], [-1, 2, -1, 0, 1]), ([1 << 40, 7, -9, i64::MIN, 5], [3, 2, 0, -1, 1])] {
        let inputs = BTreeMap::from([
            ("a".to_string(), Tensor::i64(vec![5], a.to_vec()).unwrap()),
            ("b".to_string(), Tensor::i64(vec![5], d.to_vec()).unwrap()),
        ]);
        let want = super::interp_error(&g, &inputs);
        let got = b.run_err(&g, &inputs);
        assert_eq!(got, want);
    }
}

/// The 16-bit conversions bit for bit against the interpreter (the `half`
/// crate): every f16 and bf16 pattern to f32, and f32 → f16/bf16 over every
/// top-16-bit pattern with low halves at and around each rounding boundary
/// (ties to even, subnormals, overflow to inf, NaN). NaNs compare as NaN. On
/// the packed path, and on the native-f16 one where the adapter has it.
#[test]
fn wgsl_half_conversions_are_bit_exact() {
    use smelt_ir::Data;
    let Some(dev) = backend() else { return };
    let lows = [0x0000u32, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff];
    let f32s: Vec<f32> = (0..65536u32).flat_map(|hi| lows.iter().map(move |lo| f32::from_bits(hi << 16 | lo))).collect();
    let bits: Vec<u8> = (0..65536u32).flat_map(|h| (h as u16).to_le_bytes()).collect();
    let runs = [
        ("f16", "f32", Data::from_le_bytes(smelt_ir::DType::F16, &bits).unwrap()),
        ("bf16", "f32", Data::from_le_bytes(smelt_ir::DType::BF16, &bits).unwrap()),
        ("f32", "f16", Data::F32(f32s.clone())),
        ("f32", "bf16", Data::F32(f32s)),
    ];
    let mut paths = vec![dev.with_native_f16(false)];
    if dev.has_f16() {
        paths.push(dev.with_native_f16(true));
    } else {
        eprintln!("{} lacks shader-f16: the packed path only", dev.device().info.name);
    }
    for b in &paths {
    for (from, to, data) in runs.clone() {
        let n = data.len();
        let g = parse(&format!("graph g(x: {from}[{n}]) -> (y) {{\n  y = cast(x) {{to = {to}}}\n}}\n")).unwrap();
        let inputs = BTreeMap::from([("x".to_string(), Tensor::new(vec![n], data).unwrap())]);
        let want = smelt_interp::run(&g, &inputs).unwrap()["y"].data().to_le_bytes();
        let got = b.run(&g, &inputs)["y"].data().to_le_bytes();
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
        assert!(bad.is_empty(), "{from} → {to} on {}:\n{}", b.name(), bad.join("\n"));
    }
    }
}

/// 3-d convolution and pooling, pooling indices, `wrap` padding, LSTM (peepholes,
/// hidden sizes past a workgroup) and GRU (`cases_conv_pool_rnn.rs`), as on the CPU backends.
#[test]
fn wgsl_conv_pool_rnn_ops() {
    let Some(b) = backend() else { return };
    run_suite(&b, &from_cases(&cases_conv_pool_rnn::conv_pool_rnn()), "3-d conv/pool, indices, wrap pad, recurrences", EXPECTED_UNSUPPORTED);
}

/// The quantized GEMMs (`cases_quant.rs`): qmatmul and the qconvs at awkward
/// sizes, zero points and dtypes (attention, routing, sparse and the other
/// quantization ops are among the op cases of `wgsl_ops`).
#[test]
fn wgsl_quant_gemms() {
    let Some(b) = backend() else { return };
    run_suite(&b, &from_cases(&cases_quant::quant()), "quantized GEMMs", EXPECTED_UNSUPPORTED);
}

/// `sparse_matmul` with constant weights (`cases_sparse.rs`) on the GPU's
/// block walk, and the zero fill of a product with nothing stored.
#[test]
fn wgsl_sparse() {
    let Some(b) = backend() else { return };
    run_suite(&b, &from_cases(&super::cases_sparse::sparse()), "constant sparse weights", EXPECTED_UNSUPPORTED);
}

/// Every small zoo model (ResNet, DQN, AlphaZero, LSTM/GRU, attention,
/// transformer, NMT, LAS, WaveNet) against the interpreter.
#[test]
fn wgsl_zoo_models() {
    let Some(b) = backend() else { return };
    run_suite(&b, &zoo_suite(false), "zoo models", EXPECTED_UNSUPPORTED);
}

/// GEMMs large enough for the 128×128 tile (at least `BIG_FROM_GROUPS` of its
/// workgroups), at sizes that are not multiples of it: plain, batched with a
/// broadcast operand, transposed with a bias, and a batched conv.
#[test]
fn wgsl_big_tiles() {
    use cases::{Dist::Any, case};
    use smelt_ir::DType::F32;
    let Some(b) = backend() else { return };
    let c = vec![
        case("matmul_2049x23x2050", 7001, &[("a", F32, &[2049, 23], Any), ("b", F32, &[23, 2050], Any)], &["y"], "  y = matmul(a, b)"),
        case("matmul_16x260x19x1030", 7002, &[("a", F32, &[16, 260, 19], Any), ("b", F32, &[19, 1030], Any)], &["y"], "  y = matmul(a, b)"),
        case("gemm_tt_2053x13x2051",
            7003,
            &[("a", F32, &[13, 2053], Any), ("b", F32, &[2051, 13], Any), ("c", F32, &[2051], Any)],
            &["y"],
            "  y = gemm(a, b, c) {trans_a = true, trans_b = true, alpha = 0.5, beta = 2.0}",
        ),
        case("conv2d_3x3_12x520ch_25x25",
            7004,
            &[("x", F32, &[12, 3, 25, 25], Any), ("w", F32, &[520, 3, 3, 3], Any)],
            &["y"],
            "  y = conv2d(x, w) {pad = [1, 1, 1, 1]}",
        ),
    ];
    // Each case does take the 128-wide tile (else this test checks the other).
    for case in &c {
        let g = parse(&case.src).expect("case");
        let prog = smelt_codegen::lower::lower(&g, &smelt_codegen::wgsl::target()).expect("lowering");
        let big = prog.steps.iter().filter_map(|st| smelt_codegen::wgsl::emit_step(st, &Default::default()).ok()).any(|sh| sh.source.contains("128x128 tiles"));
        assert!(big, "{} does not use the 128-wide tile", case.name);
    }
    run_suite(&b, &from_cases(&c), "GEMMs on the 128-wide tile", EXPECTED_UNSUPPORTED);
    // And the same on the 64-wide tile (`--schedule wgsl-tile=64`), and the
    // 128-wide one forced on the cases of the split-K test.
    let small = Wgsl(smelt_engine::Wgsl { schedule: ScheduleOptions { wgsl_tile: Some(64), ..Default::default() }, ..b.0.clone() });
    run_suite(&small, &from_cases(&c), "GEMMs, wgsl-tile=64", EXPECTED_UNSUPPORTED);
}

/// NaN semantics as the interpreter's: NaN-propagating max/min and reductions,
/// float → int casts of NaN (0), float → bool (NaN is true), and `!=` between
/// floats (true with a NaN; the kernel IR's `Ne` on floats is also max
/// pooling's NaN test, `cases_pool.rs`). naga emits WGSL's float `!=` as SPIR-V's ordered
/// `FOrdNotEqual`, so the emitter tests NaN as `!(x == x)`.
#[test]
fn wgsl_nan_semantics() {
    let Some(b) = backend() else { return };
    run_suite(&b, &[nan_case()], "NaN semantics", EXPECTED_UNSUPPORTED);
}

/// Split-K (`lower::gpu::split_k`): GEMMs with few output tiles and a long depth
/// (a matmul, a gemm with a bias and scaling, a batched matmul, a conv; a fused
/// conv with bias, residual and relu is in `cases_conv_pool_rnn.rs`) summed from depth
/// slices, against the interpreter.
#[test]
fn wgsl_split_k() {
    use cases::{Dist::Any, case};
    use smelt_ir::DType::F32;
    let Some(b) = backend() else { return };
    let c = vec![
        case("matmul_5x1030x70", 7101, &[("a", F32, &[5, 1030], Any), ("b", F32, &[1030, 70], Any)], &["y"], "  y = matmul(a, b)"),
        case("matmul_3x7x2048x9", 7102, &[("a", F32, &[3, 7, 2048], Any), ("b", F32, &[3, 2048, 9], Any)], &["y"], "  y = matmul(a, b)"),
        case("gemm_t_33x4096x65",
            7103,
            &[("a", F32, &[4096, 33], Any), ("b", F32, &[4096, 65], Any), ("c", F32, &[65], Any)],
            &["y"],
            "  y = gemm(a, b, c) {trans_a = true, alpha = 0.5, beta = 2.0}",
        ),
        case("conv2d_3x3_64ch_7x7",
            7104,
            &[("x", F32, &[1, 64, 7, 7], Any), ("w", F32, &[37, 64, 3, 3], Any)],
            &["y"],
            "  y = conv2d(x, w) {pad = [1, 1, 1, 1]}",
        ),
    ];
    // Each case is split (a partial-sums step and a summing one).
    for case in &c {
        let g = parse(&case.src).expect("case");
        let prog = smelt_codegen::lower::lower(&g, &smelt_codegen::wgsl::target()).expect("lowering");
        assert!(prog.steps.iter().any(|st| st.kernel.name.ends_with("split_k_sum")), "{} is not split over K", case.name);
    }
    run_suite(&b, &from_cases(&c), "split-K GEMMs", EXPECTED_UNSUPPORTED);
    let big = Wgsl(smelt_engine::Wgsl { schedule: ScheduleOptions { wgsl_tile: Some(128), ..Default::default() }, ..b.0.clone() });
    run_suite(&big, &from_cases(&c), "split-K GEMMs, wgsl-tile=128", EXPECTED_UNSUPPORTED);
}
