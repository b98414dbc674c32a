//! The schedule switches (`--schedule`, `ScheduleOptions`) in both settings,
//! numerically, on the cases each one changes; and the code paths the cases are
//! named for are taken: Winograd (`-winograd-` cases), convs with positions as
//! rows (`-rows-`), A read in place (`matmul_48_37x37_45`), micro-kernel tiles —
//! each present with its switch on and absent with it off, so a case meant for a
//! path cannot silently test another.

use super::backend::switched;
use super::{Checked, cases, cases_conv_pool_rnn, cases_quant, from_cases, zoo_suite};
use smelt_codegen::Backend::{Cranelift, Llvm};
use smelt_codegen::schedule::{Choice, ConvMethod, Tuning, class_key};
use smelt_engine::{ScheduleOptions, Target, Ukernels};

fn opts(f: impl FnOnce(&mut ScheduleOptions)) -> ScheduleOptions {
    let mut o = ScheduleOptions::default();
    f(&mut o);
    o
}

/// The cases of `suite` whose name satisfies `keep`.
fn only(suite: &[Checked], keep: impl Fn(&str) -> bool) -> Vec<&Checked> {
    suite.iter().filter(|c| keep(&c.name)).collect()
}

fn run_refs(b: &dyn smelt_engine::Backend, cases: &[&Checked], title: &str) {
    let mut table = super::report::Table::default();
    for c in cases {
        super::check(&mut table, b, c, &[]);
    }
    super::finish(&table, &format!("{title} on {}", b.name()));
}

/// Each switch in its non-default setting (the default runs in every other
/// test) on the cases it changes.
#[test]
fn schedule_switches() {
    let convs = from_cases(&cases_conv_pool_rnn::conv_pool_rnn());
    let linalg = from_cases(&cases::linalg());
    let quant = from_cases(&cases_quant::quant());
    let conv2d = only(&convs, |n| n.contains("conv2d") || n.contains("conv1d"));
    let is_matmul = |n: &str| n.starts_with("matmul") || n.starts_with("gemm") || n.starts_with("fused_matmul");
    let matmuls = only(&linalg, is_matmul);
    // Winograd off: the 3×3 convs on both backends (Cranelift with its micro-kernels).
    for b in [Cranelift, Llvm] {
        run_refs(&switched(format!("{b:?}, winograd=off"), b, opts(|o| o.winograd = Some(false))), &conv2d, "convs");
    }
    // Winograd on with Cranelift's own tile (off by default there).
    let own = opts(|o| {
        o.ukernels = Some(Ukernels::Off);
        o.winograd = Some(true);
    });
    run_refs(&switched("cranelift, own tile, winograd=on", Cranelift, own), &only(&convs, |n| n.contains("winograd")), "convs");
    // Convs with positions as columns on LLVM.
    run_refs(&switched("llvm, conv-rows=off", Llvm, opts(|o| o.conv_rows = Some(false))), &conv2d, "convs");
    // A packed instead of read in place (LLVM), and read in place by Cranelift.
    run_refs(&switched("llvm, direct-a=off", Llvm, opts(|o| o.direct_a = Some(false))), &matmuls, "matmuls");
    run_refs(&switched("cranelift, direct-a=on", Cranelift, opts(|o| o.direct_a = Some(true))), &matmuls, "matmuls");
    // The plain i32 loops for quantized products.
    for b in [Cranelift, Llvm] {
        let q: Vec<&Checked> = quant.iter().collect();
        run_refs(&switched(format!("{b:?}, quant-pairs=off"), b, opts(|o| o.quant_pairs = Some(false))), &q, "quantized GEMMs");
    }
    // Pairs instead of quads on a host with AVX512-VNNI (or AVX2's narrow quads),
    // and both without AMX where the host has it (on by default there).
    let t = target(Llvm, ScheduleOptions::default());
    let q: Vec<&Checked> = quant.iter().collect();
    if t.quant_quads || t.quant_quads_narrow {
        let no_amx = |o: &mut ScheduleOptions| o.amx = Some(false).filter(|_| t.quant_amx);
        run_refs(&switched("llvm, vnni=off", Llvm, opts(|o| { o.vnni = Some(false); no_amx(o) })), &q, "quantized GEMMs");
    }
    if t.quant_amx {
        for b in [Cranelift, Llvm] {
            run_refs(&switched(format!("{b:?}, amx=off"), b, opts(|o| o.amx = Some(false))), &q, "quantized GEMMs");
        }
    }
    // LLVM's own loop passes.
    let l: Vec<&Checked> = linalg.iter().collect();
    run_refs(&switched("llvm, loop-opts=on", Llvm, opts(|o| o.loop_opts = true)), &l, "linalg");
    // Compile threads change nothing in the code: one thread and three.
    let zoo = zoo_suite(false);
    let few = only(&zoo, |n| n.contains("resnet") || n.contains("transformer"));
    for n in [1, 3] {
        run_refs(&switched(format!("llvm, compile-threads={n}"), Llvm, opts(|o| o.compile_threads = Some(n))), &few, "zoo");
    }
}

/// The kernels of `c` lowered with `t`, as text.
fn kernels(c: &Checked, t: &Target) -> String {
    let bound = c.g.bind(&smelt_ir::Bindings::new()).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
    smelt_codegen::lower::lower(&bound, t).unwrap_or_else(|e| panic!("{}: {e}", c.name)).print_kernels()
}

fn target(b: smelt_codegen::Backend, o: ScheduleOptions) -> Target {
    Target::for_backend(b, &o).expect("a schedule of this host")
}

/// Every case named for a path takes it with the switch on, and not with it off.
#[test]
fn cases_take_the_paths_they_are_named_for() {
    let convs = from_cases(&cases_conv_pool_rnn::conv_pool_rnn());
    let linalg = from_cases(&cases::linalg());
    let off = |f: fn(&mut ScheduleOptions)| opts(f);
    let mut checked = 0;
    // Winograd: on by default on LLVM and Cranelift with micro-kernels.
    let wino: Vec<&Checked> = only(&convs, |n| n.contains("winograd"));
    assert!(wino.len() >= 5, "the Winograd cases");
    let mut with = vec![target(Llvm, ScheduleOptions::default())];
    if Target::cranelift_host().ukernels {
        with.push(Target::cranelift_host());
    }
    for c in &wino {
        for t in &with {
            assert!(kernels(c, t).contains("_winograd_in("), "{} does not run as Winograd with {}", c.name, t.name);
        }
        let t = target(Llvm, off(|o| o.winograd = Some(false)));
        assert!(!kernels(c, &t).contains("winograd"), "{} runs as Winograd with winograd=off", c.name);
        checked += 1;
    }
    // Positions as rows (LLVM, conv-rows on by default above 128 bits).
    let rows: Vec<&Checked> = only(&convs, |n| n.contains("-rows"));
    assert!(rows.len() >= 8, "the conv-rows cases");
    let llvm = target(Llvm, off(|o| o.winograd = Some(false)));
    if llvm.conv_rows {
        for c in &rows {
            // 1×1 convs run as rows only when asked (a tuned choice).
            if c.name.contains("1x1") {
                assert!(!kernels(c, &llvm).contains("_rows("), "{} runs as rows by default", c.name);
            }
            let llvm = Target { conv_rows_pointwise: true, ..llvm.clone() };
            assert!(kernels(c, &llvm).contains("_rows("), "{} does not run with positions as rows", c.name);
            let t = target(Llvm, off(|o| o.conv_rows = Some(false)));
            assert!(!kernels(c, &t).contains("_rows("), "{} runs as rows with conv-rows=off", c.name);
            checked += 1;
        }
    }
    // A read in place: no packing kernel for A.
    let direct: Vec<&Checked> = only(&linalg, |n| n == "matmul_48_37x37_45" || n == "matmul_2_3_24_19x19_33" || n == "matmul_24_1000x1000_40");
    assert_eq!(direct.len(), 3, "the direct-A cases");
    for c in &direct {
        let on = kernels(c, &target(Llvm, ScheduleOptions::default()));
        assert!(on.contains("_gemm(") && !on.contains("_pack_a("), "{}: A is packed with direct-a on", c.name);
        let off = kernels(c, &target(Llvm, opts(|o| o.direct_a = Some(false))));
        assert!(off.contains("_pack_a("), "{}: A is not packed with direct-a=off", c.name);
        checked += 1;
    }
    // Micro-kernel tiles in every GEMM of Cranelift's default schedule (where the
    // host has them), none with its own tile.
    if let Some(isa) = smelt_codegen::ukernel::host() {
        for c in only(&linalg, |n| n.starts_with("matmul_")) {
            let k = kernels(c, &Target::cranelift_host());
            if k.contains("_gemm(") {
                assert!(k.contains("tile_gemm"), "{}: no micro-kernel call on Cranelift ({isa:?})", c.name);
            }
            assert!(!kernels(c, &Target::cranelift_x64()).contains("tile_gemm"), "{}: a micro-kernel with ukernels=off", c.name);
            checked += 1;
        }
    } else {
        eprintln!("this host has no micro-kernel ISA (AVX2 or AVX-512 with FMA): micro-kernel paths not checked");
    }
    // Quads (`vpdpbusd`) in the quantized GEMMs whose weights are a constant s8
    // side, on LLVM where the host has AVX512-VNNI; none with vnni=off.
    let quant = from_cases(&cases_quant::quant());
    let llvm = target(Llvm, opts(|o| o.amx = Some(false).filter(|_| smelt_codegen::amx::available())));
    if llvm.quant_quads {
        let quads: Vec<&str> = quant.iter().filter(|c| kernels(c, &llvm).contains("dot_quads_u8i8")).map(|c| c.name.as_str()).collect();
        assert!(quads.len() >= 4, "quads in only {quads:?}");
        for c in &quant {
            let t = target(Llvm, opts(|o| {
                o.vnni = Some(false);
                o.amx = llvm.quant_amx.then_some(false);
            }));
            assert!(!kernels(c, &t).contains("dot_quads"), "{}: quads with vnni=off", c.name);
        }
        checked += quads.len();
    } else if llvm.quant_quads_narrow {
        // Without VNNI only the weights within ±64 take (narrow) quads.
        for c in &quant {
            let k = kernels(c, &llvm);
            let narrow = c.name.contains("narrow");
            assert_eq!(k.contains("dot_quads_u8i8_narrow"), narrow, "{}: narrow quads", c.name);
            assert!(narrow || !k.contains("dot_quads"), "{}: quads without VNNI", c.name);
            assert!(!kernels(c, &target(Llvm, opts(|o| o.vnni = Some(false)))).contains("dot_quads"), "{}: quads with vnni=off", c.name);
            checked += usize::from(narrow);
        }
    } else {
        eprintln!("this host has neither AVX512-VNNI nor AVX2: the quads paths are not checked");
    }
    // AMX tiles (on by default where the host has AMX-INT8) in every quantized
    // GEMM with a constant s8 side on both backends — the `quads`, `narrow` and
    // `amx` cases — and in none with amx=off.
    if smelt_codegen::amx::available() {
        for b in [Cranelift, Llvm] {
            let on = target(b, ScheduleOptions::default());
            let off = target(b, opts(|o| o.amx = Some(false)));
            for c in &quant {
                let named = ["quads", "narrow", "amx"].iter().any(|p| c.name.contains(p));
                if named {
                    let k = kernels(c, &on);
                    assert!(k.contains("amx_tile"), "{}: no AMX tile on {b:?}", c.name);
                    if c.name.starts_with("qmatmul") {
                        assert_eq!(k.contains("_pack_a("), !c.name.contains("direct"), "{}: A packed or read in place on {b:?}", c.name);
                    }
                    checked += 1;
                }
                assert!(!kernels(c, &off).contains("amx_tile"), "{}: an AMX tile with amx=off", c.name);
            }
        }
    } else {
        eprintln!("this host has no AMX-INT8: the AMX paths are not checked");
    }
    eprintln!("{checked} cases take the paths they are named for");
}

/// A tuning of every tunable node of `c` (as written and as optimized) to `choice`.
fn tuning_of(c: &Checked, choice: Choice) -> Tuning {
    let mut t = Tuning::default();
    for g in std::iter::once(&c.g).chain(&c.optimized) {
        let bound = g.bind(&smelt_ir::Bindings::new()).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        for id in bound.topo_order().expect("acyclic") {
            if let Some(k) = class_key(&bound, id) {
                t.choices.insert(k, choice);
            }
        }
    }
    assert!(!t.choices.is_empty(), "{}: nothing to tune", c.name);
    t
}

/// Tuned choices (`smelt tune`) change how a node runs, never what it computes:
/// each conv method (Winograd F(2×2, 3×3) and F(4×4, 3×3) within the suite's
/// f32 tolerance) and odd cache blocks (KC of 7, MC below one panel, NC of
/// three panels) on every conv and matmul case, both CPU backends, against the
/// interpreter (the one-thread choice on two threads); and the method asked for
/// is the one that runs.
#[test]
fn tuned_choices_compute_the_same() {
    let convs = from_cases(&cases_conv_pool_rnn::conv_pool_rnn());
    let linalg = from_cases(&cases::linalg());
    let conv2d = only(&convs, |n| n.contains("conv2d") || n.contains("conv3d"));
    let matmuls = only(&linalg, |n| n.starts_with("matmul") || n.starts_with("gemm") || n.starts_with("fused_matmul"));
    assert!(conv2d.len() >= 10 && matmuls.len() >= 10);
    let odd = Choice { kc: Some(7), mc: Some(3), nc: Some(96), ..Choice::default() };
    let mut choices: Vec<(String, Choice)> = ConvMethod::ALL.iter().map(|&m| (format!("conv={}", m.name()), Choice { conv: Some(m), ..odd })).collect();
    choices.push(("blocks".into(), Choice { kc: Some(1000), mc: Some(1000), nc: Some(10_000), serial: Some(true), conv: None }));
    for b in [Cranelift, Llvm] {
        for (what, choice) in &choices {
            let mut table = super::report::Table::default();
            for c in conv2d.iter().chain(&matmuls) {
                let schedule = ScheduleOptions { tuning: Some(std::sync::Arc::new(tuning_of(c, *choice))), ..ScheduleOptions::default() };
                // The serial choice on two threads (where it changes the loops).
                let threads = if choice.serial == Some(true) { 2 } else { 1 };
                let native = smelt_engine::Native { threads, ..switched(format!("{b:?}, tuned {what}, {threads} thread(s)"), b, schedule) };
                super::check(&mut table, &native, c, &[]);
            }
            super::finish(&table, &format!("tuned {what} on {b:?}"));
        }
    }
    // The method asked for runs where it applies; an explicit switch wins.
    let t = target(Llvm, ScheduleOptions::default());
    let ran = |c: &Checked, m: ConvMethod, o: ScheduleOptions| {
        let o = ScheduleOptions { tuning: Some(std::sync::Arc::new(tuning_of(c, Choice { conv: Some(m), ..Choice::default() }))), ..o };
        kernels(c, &target(Llvm, o))
    };
    for c in only(&convs, |n| n.contains("winograd")) {
        assert!(!ran(c, ConvMethod::Rows, ScheduleOptions::default()).contains("winograd"), "{}", c.name);
        assert!(ran(c, ConvMethod::Winograd, ScheduleOptions::default()).contains("_winograd_in("), "{}", c.name);
        assert!(ran(c, ConvMethod::Winograd4, ScheduleOptions::default()).contains("_winograd4_in("), "{}: F(4x4, 3x3)", c.name);
        assert!(!ran(c, ConvMethod::Winograd, opts(|o| o.winograd = Some(false))).contains("winograd"), "{}: the tuned method won over winograd=off", c.name);
    }
    if t.conv_rows {
        for c in only(&convs, |n| n.contains("rows-1x1")) {
            assert!(ran(c, ConvMethod::Rows, ScheduleOptions::default()).contains("_rows("), "{}", c.name);
            assert!(!ran(c, ConvMethod::Gemm, ScheduleOptions::default()).contains("_rows("), "{}", c.name);
        }
    }
}
