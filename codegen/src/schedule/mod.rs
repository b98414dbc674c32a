//! Schedules: the target-specific choices of how loops run — vector width,
//! register tiles and cache blocks of the matmul micro-kernel, when to parallelize —
//! kept in one place per target ([`Target`]), and the kernel-IR transformations
//! that apply them ([`vectorize`]).

pub mod vectorize;

pub use vectorize::vectorize;

/// Schedule parameters of one target. Lowering reads these; nothing else in
/// codegen hard-codes a tile size or a vector width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    /// f32 lanes of one SIMD register.
    pub vector_width: u32,
    /// Rows of the matmul register tile (the micro-kernel's `MR`).
    pub mr: usize,
    /// Columns of the register tile (`NR`), a multiple of `vector_width`.
    pub nr: usize,
    /// With `ukernels`, the register tile (MR, NR) of the GEMM-like loops that
    /// stay generated code (see [`Target::own_tile`]); `mr`/`nr` are then the
    /// micro-kernel's. `None`: (`mr`, `nr`).
    pub generated_tile: Option<(usize, usize)>,
    /// Depth of one packed panel (`KC`): a `KC × NR` panel of B stays in L1.
    pub kc: usize,
    /// Rows of A per cache block (`MC`, a multiple of `MR`): an `MC × KC` block of
    /// packed A stays in L2.
    pub mc: usize,
    /// Columns per parallel block (`NC`, a multiple of `NR`).
    pub nc: usize,
    /// Depth steps per iteration of the micro-kernel's loop.
    pub k_unroll: usize,
    /// Elementwise work below this many elements runs without threads.
    pub parallel_min_elems: u64,
    /// Elements per parallel chunk of elementwise kernels.
    pub parallel_chunk: u64,
    /// Quantized products (qmatmul, qconv) as the packed GEMM of i16 pairs
    /// (`lower/qgemm.rs`); off, the plain i32 loops (the GPU, and a baseline).
    pub quant_pairs: bool,
    /// A GEMM epilogue with transcendental functions runs as a second kernel over
    /// C instead of in the micro-kernel (`lower/gemm.rs`): on Cranelift its
    /// constants stay in registers through the K loop and spill an accumulator.
    pub split_heavy_epilogue: bool,
    /// Convolutions with at least `NR` output channels per group run with the
    /// output positions as the GEMM's rows (`lower/conv_rows.rs`): no wasted
    /// padded columns, no im2col, no crop pass.
    pub conv_rows: bool,
    /// A row-major A that is not a constant is read in place by the GEMM kernel
    /// (each of the MR rows broadcast from its own row) instead of packed into
    /// panels by a kernel of its own, when its rows fill whole panels
    /// (`lower/gemm.rs`, `DirectA`).
    pub direct_a: bool,
    /// The GEMM's register tile is a call of the host's precompiled micro-kernel
    /// (`crate::ukernel`, `TileGemm` in the kernel IR) instead of generated code;
    /// `mr`/`nr` must then be the micro-kernel's tile. JIT only: object files and
    /// AOT libraries lower without it.
    pub ukernels: bool,
    /// 3×3 unit-stride convs with constant weights run as Winograd F(2×2, 3×3)
    /// (`lower/winograd.rs`): 2.25× fewer multiply-adds, for three passes over
    /// memory. On by default with LLVM (AlphaZero b8 154 → 102 ms, ResNet-18
    /// 33 → 23 ms) and with Cranelift's micro-kernel schedule (AlphaZero b8 183
    /// → 146 ms, ResNet-18 46 → 34 ms); off with Cranelift's own 4×8 tile, whose
    /// GEMM reading V in place is the slow generated one. `SMELT_WINOGRAD=0`
    /// turns it off.
    pub winograd: bool,
}

/// Whether `SMELT_WINOGRAD` leaves Winograd convs on (the CPU default).
fn winograd_env() -> bool {
    std::env::var("SMELT_WINOGRAD").map_or(true, |v| v.trim() != "0")
}

impl Target {
    /// The register tile (MR, NR) of the GEMM-like loops that are always generated
    /// code — attention's, the quantized GEMM's, the LSTM's matrix-vector panels —
    /// whatever computes the f32 GEMM's tile.
    pub fn own_tile(&self) -> (usize, usize) {
        self.generated_tile.unwrap_or((self.mr, self.nr))
    }

    /// Cranelift on x86-64: 128-bit SIMD (f32x4), 16 xmm registers. A 4×8 register
    /// tile holds 8 accumulators, 2 B vectors, the A column (one vector, each row
    /// broadcast with `pshufd`) and the copy that Cranelift's `vfmadd213ps` needs
    /// (its result is tied to a multiplicand). Larger tiles spill (measured: 6×8
    /// and 4×12 run at ~60% of 4×8); unrolling the depth loop did not help.
    pub fn cranelift_x64() -> Target {
        Target {
            name: "cranelift-x86_64",
            vector_width: 4,
            mr: 4,
            nr: 8,
            generated_tile: None,
            kc: 256,
            mc: 128,
            nc: 512,
            k_unroll: 1,
            parallel_min_elems: 1 << 15,
            parallel_chunk: 1 << 14,
            quant_pairs: true,
            split_heavy_epilogue: true,
            conv_rows: false,
            direct_a: false,
            ukernels: false,
            winograd: false,
        }
    }

    /// Cranelift's default schedule on this host: [`Target::cranelift_x64`], with
    /// the GEMM tile from the host's micro-kernel (`crate::ukernel`) when it has
    /// one (AVX2 or AVX-512; `SMELT_UKERNELS=0` turns them off), at that ISA's
    /// tile and cache blocks (LLVM's, see [`Target::llvm_host`]). The tile is
    /// all of a GEMM's FLOPs, and at 128 bits Cranelift computes it at half or a
    /// quarter of the host's rate; packing, blocking, threads and epilogues stay
    /// Cranelift's code. Heavy epilogues stay in the GEMM kernel: the K loop is in
    /// the micro-kernel, so nothing holds registers across it (transformer
    /// 11.0–11.2 ms split or not). 3×3 convs run as Winograd (the micro-kernel
    /// reads V in place).
    pub fn cranelift_host() -> Target {
        let base = Target::cranelift_x64();
        match crate::ukernel::host() {
            Some(isa) => {
                let (mr, nr) = isa.tile();
                let (name, kc) = match isa {
                    crate::ukernel::Isa::Avx512 => ("cranelift-x86_64+ukernel-avx512", 512),
                    crate::ukernel::Isa::Avx2 => ("cranelift-x86_64+ukernel-avx2", 256),
                };
                let generated_tile = Some((base.mr, base.nr));
                Target { name, mr, nr, generated_tile, kc, mc: 96, ukernels: true, split_heavy_epilogue: false, winograd: winograd_env(), ..base }
            }
            None => base,
        }
    }
}

impl Target {
    /// LLVM on the host. With AVX-512 (here, an AMD Zen 4): 512-bit vectors (f32x16)
    /// and 32 zmm registers, so an 8×32 register tile — 16 accumulators, 2 B
    /// vectors, one A broadcast — with KC = 512 (64 KiB of B panel, streamed
    /// through L1/L2; against 384: a 512-deep product in one K block, matmul512
    /// 2.38 → 2.34 ms, the transformer 8.68 → 8.54 ms) and MC·KC·4 = 192 KiB of A
    /// in L2. Measured against the AVX2
    /// tile on this machine (`smelt bench`, CPU time, 1 thread): 1024³ matmul 23.7 →
    /// 21.3 ms, 3×3 convs of ResNet-18 8–10% faster; 6×32, 10×32, 12×32 and 8×48
    /// tiles were slower or no better. `SMELT_LLVM_VECTOR_BITS=256` keeps the AVX2
    /// schedule (for CPUs that slow down on 512-bit code); `=128` Cranelift's, to
    /// compare code generators at one width. With AVX2 + FMA: 256-bit
    /// vectors (f32x8) and 16 ymm registers, so a 6×16 register tile — 12
    /// accumulators, 2 B vectors, one A broadcast (`vbroadcastss` from memory) —
    /// with KC·NR·4 = 16 KiB of B in L1 and MC·KC·4 = 96 KiB of A in L2. Without
    /// AVX2 it keeps Cranelift's 4×8 f32x4 schedule.
    pub fn llvm_host() -> Target {
        let bits = std::env::var("SMELT_LLVM_VECTOR_BITS").ok();
        let bits = bits.as_deref().map(str::trim);
        let wide = !matches!(bits, Some("256" | "128"));
        let avx2 = Target {
            name: "llvm-avx2",
            vector_width: 8,
            mr: 6,
            nr: 16,
            generated_tile: None,
            kc: 256,
            mc: 96,
            nc: 512,
            k_unroll: 1,
            parallel_min_elems: 1 << 15,
            parallel_chunk: 1 << 14,
            quant_pairs: true,
            split_heavy_epilogue: false,
            conv_rows: true,
            direct_a: std::env::var("SMELT_DIRECT_A").map_or(true, |v| v.trim() != "0"),
            ukernels: false,
            winograd: winograd_env(),
        };
        if wide && crate::llvm::host_has_avx512() {
            Target { name: "llvm-avx512", vector_width: 16, mr: 8, nr: 32, kc: 512, ..avx2 }
        } else if bits != Some("128") && crate::llvm::host_has_avx2_fma() {
            avx2
        } else {
            Target { name: "llvm-sse", split_heavy_epilogue: false, direct_a: avx2.direct_a, winograd: avx2.winograd, ..Target::cranelift_x64() }
        }
    }

    /// The schedule of a backend for code that leaves this process (object
    /// files, AOT libraries, `--emit` text): without micro-kernels, whose calls
    /// are to addresses in this process.
    pub fn for_object(b: crate::Backend) -> Target {
        match b {
            crate::Backend::Llvm => Target::llvm_host(),
            _ => Target::cranelift_x64(),
        }
    }

    /// The default schedule of a backend.
    pub fn for_backend(b: crate::Backend) -> Target {
        match b {
            crate::Backend::Llvm => Target::llvm_host(),
            _ => Target::cranelift_host(),
        }
    }
}

impl Default for Target {
    fn default() -> Target {
        Target::cranelift_x64()
    }
}
