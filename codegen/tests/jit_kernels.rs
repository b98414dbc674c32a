//! Hand-built kernels through the Cranelift JIT: loops of every kind, vector and
//! scalar arithmetic, casts, and the inline transcendentals (bit-identical to the
//! scalar reference of `math.rs`, in scalar and vector code), and `dot_pairs_i16` on
//! both JITs.

use smelt_codegen::cranelift::{Arena, Place, jit};
use smelt_codegen::kernel::{Access, Expr, Intrinsic, KernelBuilder, LoopKind, Scalar};
use smelt_codegen::math::{self, F32Ref};
use smelt_codegen::Backend;
use smelt_codegen::schedule::Target;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_f32(a: &Arena, off: usize, n: usize) -> Vec<f32> {
    a.bytes()[off..off + 4 * n].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Builds `y[i] = f(x[i])` over n elements as a vectorized loop; runs it on `xs`.
fn map_f32(n: usize, kind: LoopKind, f: impl Fn(Expr) -> Expr, xs: &[f32]) -> Vec<f32> {
    map_f32_on(Backend::Cranelift, n, kind, f, xs)
}

/// [`map_f32`] compiled by `backend`.
fn map_f32_on(backend: Backend, n: usize, kind: LoopKind, f: impl Fn(Expr) -> Expr, xs: &[f32]) -> Vec<f32> {
    let mut kb = KernelBuilder::new("map");
    let x = kb.buffer("x", Scalar::F32, n as u64, Access::Read);
    let y = kb.buffer("y", Scalar::F32, n as u64, Access::Write);
    kb.for_("i", Expr::i(0), Expr::i(n as i64), kind, |kb, i| {
        kb.store(y, i.clone(), f(Expr::load(x, i)));
    });
    let k = kb.finish();
    let code = smelt_codegen::jit(backend, &[k], &Target::default()).expect("compiles");
    let xb = f32_bytes(xs);
    let mut arena = Arena::new(4 * n);
    let call = code.bind(0, &mut arena, &[Place::Const(&xb), Place::Arena { offset: 0, bytes: 4 * n }]).expect("binds");
    call.run(0, 1);
    drop(call);
    read_f32(&arena, 0, n)
}

#[test]
fn relu_vectorized_with_a_tail() {
    // 13 elements: three vectors of 4 and a scalar tail of 1.
    let xs: Vec<f32> = (0..13).map(|i| i as f32 - 6.5).collect();
    let relu = |e: Expr| Expr::select(e.clone().gt(Expr::f(0.0)), e, Expr::f(0.0));
    let got = map_f32(13, LoopKind::Vectorized(4), relu, &xs);
    let want: Vec<f32> = xs.iter().map(|x| x.max(0.0)).collect();
    assert_eq!(got, want);
}

/// Every inline transcendental on `backend` at the loop `kinds` against the
/// scalar reference of `math.rs`, bit for bit (any NaN matches any NaN).
fn intrinsics_bit_for_bit(backend: Backend, xs: &[f32], kinds: &[LoopKind]) {
    type Ref = fn(&mut F32Ref, f32) -> f32;
    let cases: [(Intrinsic, Ref); 8] = [
        (Intrinsic::Exp, math::exp),
        (Intrinsic::Log, math::log),
        (Intrinsic::Tanh, math::tanh),
        (Intrinsic::Erf, math::erf),
        (Intrinsic::Sin, math::sin),
        (Intrinsic::Cos, math::cos),
        (Intrinsic::Sigmoid, math::sigmoid),
        (Intrinsic::Softplus, math::softplus),
    ];
    for (f, r) in cases {
        let want: Vec<u32> = xs.iter().map(|&x| r(&mut F32Ref, x).to_bits()).collect();
        for &kind in kinds {
            let got: Vec<u32> =
                map_f32_on(backend, xs.len(), kind, |e| Expr::call(f, vec![e]), xs).into_iter().map(f32::to_bits).collect();
            let diff = got.iter().zip(&want).position(|(a, b)| a != b && !(f32::from_bits(*a).is_nan() && f32::from_bits(*b).is_nan()));
            assert!(diff.is_none(), "{backend:?} {} ({kind:?}) differs at x = {}", f.name(), xs[diff.unwrap()]);
        }
    }
}

/// A sweep of ordinary arguments and the edges: NaN, infinities, huge arguments
/// whose float-to-int conversion in `exp`, `sin` and `cos` saturates, the f32
/// range of `exp`, subnormals and signed zeros.
fn edge_inputs() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.0731).collect();
    xs.extend([
        f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 3e9, -3e9, 2.2e9, 88.7, 89.5, -103.9, -150.0,
        1e-40, -1e-40, 0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE,
    ]);
    xs
}

#[test]
fn intrinsics_match_the_scalar_reference_bit_for_bit() {
    intrinsics_bit_for_bit(Backend::Cranelift, &edge_inputs(), &[LoopKind::Serial, LoopKind::Vectorized(4)]);
}

/// LLVM's vector code too (16 lanes, the AVX-512 width, and a scalar tail).
#[test]
fn llvm_intrinsics_match_the_scalar_reference_bit_for_bit() {
    intrinsics_bit_for_bit(Backend::Llvm, &edge_inputs(), &[LoopKind::Serial, LoopKind::Vectorized(16)]);
}

/// `pow` on every pair of a grid of edges and ordinary values (negative bases
/// with integral and fractional exponents, ±0, ±∞, NaN, |a| = 1) on both JITs,
/// against the scalar reference of `math.rs` bit for bit, and that reference
/// against C's `powf` (Rust's `f32::powf`): the same specials (NaN, ±∞, ±0, 1),
/// and finite results within 2e-5 relative (`exp(b·ln|a|)` carries the rounding
/// of `b·ln|a|`, up to ~88 in magnitude, into the result; `math_accuracy` bounds
/// moderate arguments at 4e-6).
#[test]
fn pow_matches_the_scalar_reference_and_c_powf() {
    let vals = [
        f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 0.5, -0.5, 2.5, -2.5, 1e-38,
        3e38, -3e38, 10.0, 0.1, 7.3, -7.0, 1e-40,
    ];
    let (a, b): (Vec<f32>, Vec<f32>) = vals.iter().flat_map(|&x| vals.iter().map(move |&y| (x, y))).unzip();
    let n = a.len();
    let want: Vec<f32> = a.iter().zip(&b).map(|(&x, &y)| math::pow(&mut F32Ref, x, y)).collect();
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        let (r, c) = (want[i], x.powf(y));
        let close = r.is_finite() && c.is_finite() && c != 0.0 && ((r as f64 - c as f64) / c as f64).abs() <= 2e-5;
        let same = (r.is_nan() && c.is_nan()) || r == c || close;
        assert!(same, "pow({x:e}, {y:e}): smelt's {r:e}, C's {c:e}");
    }
    for (backend, kinds) in [(Backend::Cranelift, [LoopKind::Serial, LoopKind::Vectorized(4)]), (Backend::Llvm, [LoopKind::Serial, LoopKind::Vectorized(16)])] {
        for kind in kinds {
            let mut kb = KernelBuilder::new("pow");
            let xa = kb.buffer("a", Scalar::F32, n as u64, Access::Read);
            let xb = kb.buffer("b", Scalar::F32, n as u64, Access::Read);
            let y = kb.buffer("y", Scalar::F32, n as u64, Access::Write);
            kb.for_("i", Expr::i(0), Expr::i(n as i64), kind, |kb, i| {
                kb.store(y, i.clone(), Expr::call(Intrinsic::Pow, vec![Expr::load(xa, i.clone()), Expr::load(xb, i)]));
            });
            let code = smelt_codegen::jit(backend, &[kb.finish()], &Target::default()).expect("compiles");
            let (ab, bb) = (f32_bytes(&a), f32_bytes(&b));
            let mut arena = Arena::new(4 * n);
            let call = code.bind(0, &mut arena, &[Place::Const(&ab), Place::Const(&bb), Place::Arena { offset: 0, bytes: 4 * n }]).expect("binds");
            call.run(0, 1);
            drop(call);
            let got = read_f32(&arena, 0, n);
            for i in 0..n {
                let ok = got[i].to_bits() == want[i].to_bits() || (got[i].is_nan() && want[i].is_nan());
                assert!(ok, "{backend:?} ({kind:?}) pow({:e}, {:e}) = {:e}, the reference {:e}", a[i], b[i], got[i], want[i]);
            }
        }
    }
}

#[test]
fn parallel_ranges_cover_the_loop() {
    // y[r, c] = r * 10 + c over a parallel loop of 7 rows; run rows 0..3 and 3..7 apart.
    let mut kb = KernelBuilder::new("iota");
    let y = kb.buffer("y", Scalar::I32, 7 * 5, Access::Write);
    kb.for_("r", Expr::i(0), Expr::i(7), LoopKind::Parallel, |kb, r| {
        kb.for_("c", Expr::i(0), Expr::i(5), LoopKind::Unrolled, |kb, c| {
            let v = Expr::cast(Scalar::I32, r.clone() * 10 + c.clone());
            kb.store(y, r.clone() * 5 + c, v);
        });
    });
    let code = jit(&[kb.finish()]).unwrap();
    assert_eq!(code.extent(0), 7);
    let mut arena = Arena::new(4 * 35);
    let call = code.bind(0, &mut arena, &[Place::Arena { offset: 0, bytes: 140 }]).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| call.run(0, 3));
        s.spawn(|| call.run(3, 7));
    });
    drop(call);
    let got: Vec<i32> = arena.bytes()[..140].chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    let want: Vec<i32> = (0..7).flat_map(|r| (0..5).map(move |c| r * 10 + c)).collect();
    assert_eq!(got, want);
}

#[test]
fn casts_saturate() {
    // f32 → i8 saturates and truncates, NaN → 0.
    let xs = [2.9f32, -2.9, 300.0, -1e9, f32::NAN];
    let mut kb = KernelBuilder::new("cast");
    let x = kb.buffer("x", Scalar::F32, 5, Access::Read);
    let y = kb.buffer("y", Scalar::I8, 5, Access::Write);
    kb.for_n("i", 5, |kb, i| kb.store(y, i.clone(), Expr::cast(Scalar::I8, Expr::load(x, i))));
    let code = jit(&[kb.finish()]).unwrap();
    let xb = f32_bytes(&xs);
    let mut arena = Arena::new(16);
    code.bind(0, &mut arena, &[Place::Const(&xb), Place::Arena { offset: 0, bytes: 5 }]).unwrap().run(0, 1);
    let got: Vec<i8> = arena.bytes()[..5].iter().map(|&b| b as i8).collect();
    assert_eq!(got, vec![2, -2, 127, -128, 0]);
}

#[test]
fn bind_rejects_small_and_overlapping_buffers() {
    let mut kb = KernelBuilder::new("copy");
    let x = kb.buffer("x", Scalar::F32, 4, Access::Read);
    let y = kb.buffer("y", Scalar::F32, 4, Access::Write);
    kb.for_n("i", 4, |kb, i| kb.store(y, i.clone(), Expr::load(x, i)));
    let code = jit(&[kb.finish()]).unwrap();
    // Arenas come in whole cache lines: 64 bytes.
    let mut arena = Arena::new(64);
    let e = code.bind(0, &mut arena, &[Place::Arena { offset: 0, bytes: 16 }, Place::Arena { offset: 8, bytes: 16 }]);
    assert!(e.unwrap_err().to_string().contains("overlaps"));
    let e = code.bind(0, &mut arena, &[Place::Arena { offset: 0, bytes: 8 }, Place::Arena { offset: 16, bytes: 16 }]);
    assert!(e.unwrap_err().to_string().contains("needs 16 bytes"));
    let e = code.bind(0, &mut arena, &[Place::Arena { offset: 0, bytes: 16 }, Place::Arena { offset: 56, bytes: 16 }]);
    assert!(e.unwrap_err().to_string().contains("the arena has 64"));
}

/// `dot_pairs_i16` on both JITs, scalar and at every width they take (LLVM:
/// 4 and 8 lanes as `pmaddwd`, 2 and 16 through the generic widening code),
/// against `lo·lo + hi·hi` in wrapping i32 — including the halves' extremes and
/// the one overflow (all four −32768).
#[test]
fn dot_pairs_i16_matches_the_reference() {
    let halves: [i16; 9] = [i16::MIN, -32767, -255, -1, 0, 1, 255, 32766, i16::MAX];
    let word = |lo: i16, hi: i16| (lo as u16 as u32 | (hi as u16 as u32) << 16) as i32;
    let mut a = vec![];
    let mut b = vec![];
    for (i, &x) in halves.iter().enumerate() {
        for (j, &y) in halves.iter().enumerate() {
            a.push(word(x, y));
            b.push(word(halves[(i + j) % 9], halves[(i * 7 + j * 5) % 9]));
        }
    }
    a.extend([word(i16::MIN, i16::MIN); 16]);
    b.extend([word(i16::MIN, i16::MIN); 16]);
    let n = a.len(); // 97 = 81 + 16: a multiple of 16 plus 1
    let n_main = n - n % 16;
    let half = |w: i32, k: u32| (w >> (16 * k)) as i16 as i32;
    let want: Vec<i32> = a.iter().zip(&b).map(|(&x, &y)| half(x, 0).wrapping_mul(half(y, 0)).wrapping_add(half(x, 1).wrapping_mul(half(y, 1)))).collect();
    let bytes = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (ab, bb) = (bytes(&a), bytes(&b));
    for backend in [smelt_codegen::Backend::Cranelift, smelt_codegen::Backend::Llvm] {
        let widths: &[u32] = if backend == smelt_codegen::Backend::Cranelift { &[1, 4] } else { &[1, 2, 4, 8, 16] };
        for &w in widths {
            let mut kb = KernelBuilder::new("dot");
            let x = kb.buffer("a", Scalar::I32, n as u64, Access::Read);
            let y = kb.buffer("b", Scalar::I32, n as u64, Access::Read);
            let z = kb.buffer("y", Scalar::I32, n as u64, Access::Write);
            let upto = if w == 1 { n } else { n_main };
            kb.for_step("i", Expr::i(0), Expr::i(upto as i64), w as u64, LoopKind::Serial, |kb, i| {
                let d = Expr::call(Intrinsic::DotPairsI16, vec![Expr::loadv(x, i.clone(), w), Expr::loadv(y, i.clone(), w)]);
                kb.store(z, i, d);
            });
            let code = smelt_codegen::jit(backend, &[kb.finish()], &Target::default()).expect("compiles");
            let mut arena = Arena::new(4 * n);
            let call = code.bind(0, &mut arena, &[Place::Const(&ab), Place::Const(&bb), Place::Arena { offset: 0, bytes: 4 * n }]).expect("binds");
            call.run(0, 1);
            drop(call);
            let got: Vec<i32> = arena.bytes()[..4 * upto].chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(got, want[..upto], "{backend:?} at width {w}");
        }
    }
}

/// Kernels compiled by LLVM on several threads (one module and engine each) and
/// kernels shared by name-only duplicates (`smelt_codegen::jit`) each run their
/// own code: `y = x·s + i` for kernel `i`, `s` per kernel.
#[test]
fn llvm_on_threads_and_shared_duplicates_run_the_right_code() {
    let n = 37;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
    let xb = f32_bytes(&xs);
    let scales = [2.0f32, 3.0, 2.0, -1.5, 3.0, 0.25, 2.0];
    let kernel = |i: usize, s: f32| {
        let mut kb = KernelBuilder::new(format!("k{i}"));
        let x = kb.buffer("x", Scalar::F32, n as u64, Access::Read);
        let y = kb.buffer("y", Scalar::F32, n as u64, Access::Write);
        kb.for_("j", Expr::i(0), Expr::i(n as i64), LoopKind::Vectorized(4), |kb, j| {
            kb.store(y, j.clone(), Expr::load(x, j) * Expr::f(s) + Expr::f(s * s));
        });
        kb.finish()
    };
    let ks: Vec<_> = scales.iter().enumerate().map(|(i, &s)| kernel(i, s)).collect();
    let codes = [
        smelt_codegen::llvm::jit_on(&ks, 3, &Default::default()).expect("compiles on 3 threads"),
        smelt_codegen::llvm::jit_on(&ks, 1, &Default::default()).expect("compiles on 1 thread"),
        smelt_codegen::jit(smelt_codegen::Backend::Llvm, &ks, &Target::default()).expect("compiles with sharing"),
        smelt_codegen::jit(smelt_codegen::Backend::Cranelift, &ks, &Target::default()).expect("compiles with sharing"),
    ];
    for code in &codes {
        assert_eq!(code.len(), ks.len());
        for (i, &s) in scales.iter().enumerate() {
            let mut arena = Arena::new(4 * n);
            let call = code.bind(i, &mut arena, &[Place::Const(&xb), Place::Arena { offset: 0, bytes: 4 * n }]).expect("binds");
            call.run(0, 1);
            drop(call);
            let want: Vec<f32> = xs.iter().map(|x| x * s + s * s).collect();
            assert_eq!(read_f32(&arena, 0, n), want, "kernel {i}");
        }
    }
}

/// A `tile_gemm` kernel: the verifier checks its buffers (a read-only tile, an
/// A read past its buffer), and object files refuse the call (it is to an address
/// in this process). Its numbers are checked through whole graphs in the
/// numerics suite and against plain sums in `ukernel.rs`.
#[test]
fn tile_gemm_is_verified_and_stays_in_process() {
    use smelt_codegen::kernel::{At, Stmt, TileGemm, verify::verify};
    let build = |tile_access: Access, a_len: u64| {
        let mut kb = KernelBuilder::new("tile");
        let a = kb.buffer("a", Scalar::F32, a_len, Access::Read);
        let b = kb.buffer("b", Scalar::F32, 3 * 32, Access::Read);
        let t = kb.buffer("t", Scalar::F32, 8 * 32, tile_access);
        kb.push(Stmt::TileGemm(TileGemm {
            mr: 8,
            nr: 32,
            a: At { buf: a, index: Expr::i(0) },
            b: At { buf: b, index: Expr::i(0) },
            koff: None,
            tile: At { buf: t, index: Expr::i(0) },
            kc: Expr::i(3),
            a_rs: None,
        }));
        kb.finish()
    };
    assert!(verify(&build(Access::Write, 24)).is_ok());
    let errs = verify(&build(Access::Read, 23)).unwrap_err().join("\n");
    assert!(errs.contains("tile %t is read-only"), "{errs}");
    assert!(errs.contains("a %a[0..+24] is past its 23 elements"), "{errs}");
    for backend in [Backend::Cranelift, Backend::Llvm] {
        let e = smelt_codegen::object(backend, &[build(Access::Write, 24)], "lib", &Target::default()).unwrap_err().to_string();
        assert!(e.contains("not supported in object files: micro-kernel calls"), "{backend:?}: {e}");
    }
}
