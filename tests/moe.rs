//! Mixture of experts end to end: ONNX Runtime's `com.microsoft` `MoE` imported
//! and run in every strategy on every backend against ONNX Runtime's own outputs
//! (tests/fixtures/moe, made by scripts/models/ort_moe.py); the strategy chosen
//! by token count; bad layers as clear errors naming the node.

use smelt::engine::{BackendKind, Options, Source, Tensors};
use smelt::ir::ops::{MoeShape, MoeStrategy};
use smelt::Tensor;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/moe").join(name)
}

fn backends() -> Vec<BackendKind> {
    let mut v = vec![BackendKind::Interp, BackendKind::Cranelift, BackendKind::Llvm];
    match smelt::engine::Wgsl::default().device() {
        Ok(_) => v.push(BackendKind::Wgsl),
        Err(e) => eprintln!("no WGSL adapter ({e}): the CPU backends only"),
    }
    v
}

/// max |got − want| / max |want|.
fn rel(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (got.to_f32(), want.to_f32());
    let scale = w.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
    g.iter().zip(&w).fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs())) / scale
}

/// Both fixtures — a `[T, D]` input with relu experts, top-2 and renormalized
/// weights; a `[B, S, D]` input with gelu experts, top-1 and the softmax over all
/// experts — match ONNX Runtime within 1e-5 (relative to the output's largest
/// element) in each strategy, on every backend.
#[test]
fn onnx_runtime_moe_imports_and_agrees_with_it_in_every_strategy() {
    let io = smelt::ir::weights::read_safetensors(&fixture("io.safetensors")).expect("io");
    for model in ["ort_moe", "ort_moe_softmax"] {
        let bytes = std::fs::read(fixture(&format!("{model}.onnx"))).expect("model");
        let inputs: Tensors = ["x", "logits"].iter().map(|k| (k.to_string(), io[&format!("{model}.{k}")].clone())).collect();
        let want = &io[&format!("{model}.expected")];
        for b in backends() {
            for strategy in ["auto", "dense", "gather", "loop"] {
                let mut opts = Options { backend: b, ..Default::default() };
                opts.schedule.apply(&format!("moe={strategy}")).expect("schedule");
                let m = smelt::engine::compile(Source::Onnx { bytes: bytes.clone(), name: model.into() }, &opts)
                    .unwrap_or_else(|e| panic!("{model} on {b:?}: {e}"));
                let got = m.run(&inputs).unwrap_or_else(|e| panic!("{model} on {b:?}, moe={strategy}: {e}"));
                let e = rel(&got["y"], want);
                assert!(e <= 1e-5, "{model} on {b:?}, moe={strategy}: {e:e} from ONNX Runtime");
            }
        }
    }
}

/// The cost model picks the loop for decode and the grouped GEMM for prefill
/// (E = 8, k = 2, d_model 1024, d_ff 2816 on a 16-lane machine: measured there,
/// docs/performance.md), never the dense strategy with 64 experts, and reads
/// only the touched experts' weights in decode.
#[test]
fn moe_strategy_follows_the_token_count() {
    let m = smelt::codegen::schedule::Target::llvm(512).moe_machine();
    let shape = |tokens, experts, k| MoeShape { tokens, d_model: 1024, d_ff: 2816, experts, k, gated: false };
    assert_eq!(shape(1, 8, 2).choose(&m), MoeStrategy::Loop);
    assert_eq!(shape(16, 8, 2).choose(&m), MoeStrategy::Loop);
    assert_eq!(shape(4096, 8, 2).choose(&m), MoeStrategy::Gather);
    for t in [1, 4, 16, 64, 256, 1024, 4096] {
        assert_ne!(shape(t, 64, 6).choose(&m), MoeStrategy::Dense, "T = {t}");
    }
    let decode = shape(1, 64, 6);
    let all = decode.weight_bytes(MoeStrategy::Dense);
    assert!(decode.weight_bytes(decode.choose(&m)) <= all * 6.0 / 64.0 * 1.1);
}

/// A layer whose k exceeds its experts, or whose router logits do not match its
/// tokens, is refused at load with the node named.
#[test]
fn bad_moe_layers_are_clear_errors() {
    let src = |k: usize, t: usize| {
        format!(
            "graph g(x: f32[4, 3], logits: f32[{t}, 2]) -> (y) {{\n  w1 = param f32[2, 3, 5]\n  w2 = param f32[2, 5, 3]\n  layer = moe(x, logits, w1, w2) {{k = {k}}}\n  y = relu(layer)\n}}\n"
        )
    };
    let e = smelt::parse(&src(3, 4)).expect_err("k > E").to_string();
    assert!(e.contains("moe k = 3 must be in 1..=2") && e.contains("layer"), "{e}");
    let e = smelt::parse(&src(1, 5)).expect_err("logits of 5 tokens").to_string();
    assert!(e.contains("router logits f32[4, E]") && e.contains("layer"), "{e}");
    let e = smelt::parse(&src(1, 4).replace("k = 1", "k = 1, strategy = sorted")).expect_err("no such strategy").to_string();
    assert!(e.contains("strategy") && e.contains("`gather`"), "{e}");
}

/// What the CLI compiles for a layer is the strategy the cost model picks for the
/// token count it is given (`--dim T=…`), or the one `--schedule moe=` forces;
/// `--schedule help` lists the key. The strategies are told apart by their
/// kernels: dense has `dense_pairs`, gather a grouped `down_gemm`, the loop a
/// plain `down`.
#[test]
fn the_compiled_plan_takes_the_strategy_chosen_for_its_token_count() {
    use smelt::codegen::Backend;
    use smelt::codegen::schedule::{ScheduleOptions, Target};
    let dir = std::env::temp_dir().join(format!("smelt-moe-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (e, k, d, h) = (8, 2, 256, 512);
    let src = format!(
        "graph g(x: f32[T, {d}], logits: f32[T, {e}]) -> (y) {{\n  w1 = param f32[{e}, {d}, {h}]\n  w2 = param f32[{e}, {h}, {d}]\n  y = moe(x, logits, w1, w2) {{k = {k}}}\n}}\n"
    );
    std::fs::write(dir.join("m.smelt"), src).unwrap();
    let smelt = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_smelt")).env("SMELT_TUNING", "off").args(args).current_dir(&dir).output().expect("smelt");
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    smelt(&["init-weights", "m.smelt"]);
    let plan = |t: usize, extra: &[&str]| {
        let dim = format!("T={t}");
        let mut args = vec!["compile", "m.smelt", "--backend", "llvm", "--emit", "kernel", "--dim", &dim];
        args.extend_from_slice(extra);
        let text = smelt(&args);
        let has = |k: &str| text.lines().any(|l| l.starts_with(&format!("kernel y_{k}(")));
        match (has("dense_pairs"), has("down_gemm"), has("down")) {
            (true, true, _) => MoeStrategy::Dense,
            (false, true, _) => MoeStrategy::Gather,
            (false, false, true) => MoeStrategy::Loop,
            other => panic!("T = {t} {extra:?}: no strategy recognized in the kernels ({other:?}):\n{text}"),
        }
    };
    let target = Target::for_object(Backend::Llvm, &ScheduleOptions::default()).unwrap();
    let mut chosen = vec![];
    for t in [1, 4096] {
        let want = MoeShape { tokens: t, d_model: d, d_ff: h, experts: e, k, gated: false }.choose(&target.moe_machine());
        assert_eq!(plan(t, &[]), want, "T = {t}");
        chosen.push(want);
    }
    assert_eq!(chosen, [MoeStrategy::Loop, MoeStrategy::Gather], "decode and prefill take different strategies");
    for s in MoeStrategy::ALL {
        assert_eq!(plan(16, &["--schedule", &format!("moe={}", s.name())]), s);
    }
    assert!(smelt(&["run", "m.smelt", "--schedule", "help"]).contains("moe              dense|gather|loop"));
    let _ = std::fs::remove_dir_all(&dir);
}
