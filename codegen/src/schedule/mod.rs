//! Schedules: the target-specific choices of how loops run — vector width,
//! register tiles and cache blocks of the matmul micro-kernel, when to parallelize —
//! kept in one place per target ([`Target`]), and the kernel-IR transformations
//! that apply them ([`vectorize`]).

pub mod options;
pub mod tuning;
pub mod vectorize;

pub use options::{ParseError, ScheduleOptions, Ukernels};
pub use tuning::{Calibration, Choice, ConvMethod, Tuning, class_key};
pub use vectorize::{Caps, vectorize, vectorize_for};

use crate::{Backend, Error};
use crate::ukernel::Isa;
use smelt_ir::ops::{MoeMachine, MoeStrategy};

/// What a schedule's code runs on: the lowering takes the GPU's forms of the
/// GEMM-shaped ops, reductions and pooling for [`Processor::Gpu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Processor {
    Cpu,
    Gpu,
}

/// Schedule parameters of one target. Lowering reads these; nothing else in
/// codegen hard-codes a tile size or a vector width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    /// CPU or GPU code.
    pub processor: Processor,
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
    /// The packed quantized GEMM takes quads of bytes per word, multiplied with
    /// `vpdpbusd` (AVX512-VNNI): u8 activations against s8 weights, the
    /// activations' zero point corrected through the bias (`lower/qgemm.rs`).
    pub quant_quads: bool,
    /// Without VNNI: quads for weights within ±64 (`smelt quantize
    /// --reduce-range` makes such), multiplied with `pmaddubsw` and `pmaddwd`
    /// (LLVM on AVX2); other weights keep pairs.
    pub quant_quads_narrow: bool,
    /// The packed quantized GEMM on AMX-INT8 tiles: quads in 32×32 tiles by the
    /// precompiled micro-kernel of `crate::amx` (CPU backends, JIT code only;
    /// on hosts with AMX).
    pub quant_amx: bool,
    /// A GEMM epilogue with transcendental functions runs as a second kernel over
    /// C instead of in the micro-kernel (`lower/gemm.rs`): on Cranelift its
    /// constants stay in registers through the K loop and spill an accumulator.
    pub split_heavy_epilogue: bool,
    /// Convolutions with at least `NR` output channels per group run with the
    /// output positions as the GEMM's rows (`lower/conv/rows.rs`): no wasted
    /// padded columns, no im2col, no crop pass.
    pub conv_rows: bool,
    /// With `conv_rows`, 1×1 convs too. Off by default: their rows read the
    /// input one channel plane apart per step, and the GEMM over the packed
    /// input ran 1.1–2.3× faster on ResNet-50's 1×1 convs at 56², 28² and 14²
    /// (AVX-512, `smelt tune`); a tuned choice of rows sets it.
    pub conv_rows_pointwise: bool,
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
    /// (`lower/conv/winograd.rs`): 2.25× fewer multiply-adds, for three passes over
    /// memory. On by default with LLVM and with Cranelift's micro-kernel
    /// schedule; off with Cranelift's own 4×8 tile, whose GEMM reading V in
    /// place is the slow generated one (timings: `docs/performance.md`).
    pub winograd: bool,
    /// Outputs per side of a Winograd tile: 2 (F(2×2, 3×3), the default) or 4
    /// (F(4×4, 3×3): 4× fewer GEMMs of 36 instead of 16, 2.25× fewer
    /// multiply-adds than F(2×2), and larger rounding — chosen only where a
    /// tuning measured it and checked the model).
    pub winograd_tile: usize,
    /// LLVM's own loop vectorizer, interleaver and unroller (off: kernels arrive
    /// vectorized and register-tiled; on, they multiplied the code of packing
    /// and edge loops, and the compile time 3–5×, for no measured gain).
    pub loop_opts: bool,
    /// Threads LLVM compiles a model's kernels on (`None`: the machine's, fewer
    /// when the kernels are small). Compile time only, not the code.
    pub compile_threads: Option<usize>,
    /// The strategy of every `moe` layer (`Auto`: each layer's own, and where
    /// that is `Auto` too, the cheapest by [`smelt_ir::ops::MoeShape::cost`]).
    pub moe: MoeStrategy,
    /// Tuned choices by node class, applied per node by [`Target::for_node`]
    /// (from `smelt tune`; fields the options force are left out).
    pub tuning: Option<std::sync::Arc<Tuning>>,
}

impl Target {
    /// This target as the MoE strategy cost sees it (per thread): the rates of
    /// its tuning's calibration where it has one, else the GEMM at
    /// 62.5% of 2 FMAs of `vector_width` lanes per cycle at 2.5 GHz (100 GFLOP/s
    /// with AVX-512, measured 97 on an expert stack), the loop at 3/4 of that,
    /// weights streamed at 25 GB/s. Measured against the forced strategies in
    /// docs/performance.md (*Mixture of experts*).
    pub fn moe_machine(&self) -> MoeMachine {
        // Rates measured on this machine (`smelt tune`), where there are some.
        if let Some(c) = self.tuning.as_ref().and_then(|t| t.calibration).filter(|c| c.gemm_mflops > 0 && c.stream_mbs > 0) {
            let gemm_flops = c.gemm_mflops as f64 * 1e6;
            return MoeMachine { gemm_flops, loop_flops: 0.75 * gemm_flops, bandwidth: c.stream_mbs as f64 * 1e6, panel_rows: self.mr };
        }
        let lanes = match (self.processor, self.ukernels) {
            (Processor::Gpu, _) => 256.0,
            // The micro-kernel's tile is two vectors wide (8×32 AVX-512, 6×16 AVX2).
            (_, true) => (self.nr / 2).max(self.vector_width as usize) as f64,
            _ => self.vector_width as f64,
        };
        let gemm_flops = 2.0 * 2.0 * lanes * 2.5e9 * 0.625;
        MoeMachine { gemm_flops, loop_flops: 0.75 * gemm_flops, bandwidth: 25e9, panel_rows: self.mr }
    }

    /// The register tile (MR, NR) of the GEMM-like loops that are always generated
    /// code — attention's, the quantized GEMM's, the LSTM's matrix-vector panels —
    /// whatever computes the f32 GEMM's tile.
    pub fn own_tile(&self) -> (usize, usize) {
        self.generated_tile.unwrap_or((self.mr, self.nr))
    }

    /// Whether the lowering targets a GPU.
    pub fn is_gpu(&self) -> bool {
        self.processor == Processor::Gpu
    }

    /// Cranelift on x86-64: 128-bit SIMD (f32x4), 16 xmm registers. A 4×8 register
    /// tile holds 8 accumulators, 2 B vectors, the A column (one vector, each row
    /// broadcast with `pshufd`) and the copy that Cranelift's `vfmadd213ps` needs
    /// (its result is tied to a multiplicand). Larger tiles spill (measured: 6×8
    /// and 4×12 run at ~60% of 4×8); unrolling the depth loop did not help.
    pub fn cranelift_x64() -> Target {
        Target {
            name: "cranelift-x86_64",
            processor: Processor::Cpu,
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
            quant_quads: false,
            quant_quads_narrow: false,
            quant_amx: false,
            split_heavy_epilogue: true,
            conv_rows: false,
            conv_rows_pointwise: false,
            direct_a: false,
            ukernels: false,
            winograd: false,
            winograd_tile: 2,
            loop_opts: false,
            compile_threads: None,
            moe: MoeStrategy::Auto,
            tuning: None,
        }
    }

    /// Cranelift with the GEMM tile computed by `isa`'s precompiled micro-kernel
    /// (`crate::ukernel`) at that ISA's tile and cache blocks (LLVM's, see
    /// [`Target::llvm`]). The tile is all of a GEMM's FLOPs, and at 128 bits
    /// Cranelift computes it at half or a quarter of the host's rate; packing,
    /// blocking, threads and epilogues stay Cranelift's code. Heavy epilogues stay
    /// in the GEMM kernel: the K loop is in the micro-kernel, so nothing holds
    /// registers across it (transformer 11.0–11.2 ms split or not). 3×3 convs run
    /// as Winograd (the micro-kernel reads V in place).
    pub fn cranelift_ukernel(isa: Isa) -> Target {
        let base = Target::cranelift_x64();
        let (mr, nr) = isa.tile();
        let (name, kc) = match isa {
            Isa::Avx512 => ("cranelift-x86_64+ukernel-avx512", 512),
            Isa::Avx2 => ("cranelift-x86_64+ukernel-avx2", 256),
        };
        let generated_tile = Some((base.mr, base.nr));
        Target { name, mr, nr, generated_tile, kc, mc: 96, ukernels: true, split_heavy_epilogue: false, winograd: true, ..base }
    }

    /// Cranelift's default schedule on this host: [`Target::cranelift_ukernel`]
    /// with the host's best micro-kernel ISA (AVX-512, else AVX2), else
    /// [`Target::cranelift_x64`].
    pub fn cranelift_host() -> Target {
        match crate::ukernel::host() {
            Some(isa) => Target::cranelift_ukernel(isa),
            None => Target::cranelift_x64(),
        }
    }

    /// LLVM at a vector width of `bits`. 512 (AVX-512, f32x16, 32 zmm
    /// registers): an 8×32 register tile — 16 accumulators, 2 B vectors, one A
    /// broadcast — with KC = 512 (64 KiB of B panel, streamed through L1/L2;
    /// against 384: a 512-deep product in one K block, matmul512 2.38 → 2.34 ms,
    /// the transformer 8.68 → 8.54 ms) and MC·KC·4 = 192 KiB of A in L2; measured
    /// against the AVX2 tile on an AVX-512 host (1 thread): 1024³ matmul 23.7 →
    /// 21.3 ms, 3×3 convs of ResNet-18 8–10% faster; 6×32, 10×32, 12×32 and 8×48
    /// tiles were slower or no better. 256 (AVX2 + FMA, f32x8, 16 ymm registers):
    /// a 6×16 register tile — 12 accumulators, 2 B vectors, one A broadcast
    /// (`vbroadcastss` from memory) — with KC·NR·4 = 16 KiB of B in L1 and
    /// MC·KC·4 = 96 KiB of A in L2. 128: Cranelift's 4×8 f32x4 schedule (to
    /// compare code generators at one width, and for hosts without AVX2).
    pub fn llvm(bits: u32) -> Target {
        let avx2 = Target {
            name: "llvm-avx2",
            processor: Processor::Cpu,
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
            quant_quads: false,
            quant_quads_narrow: false,
            quant_amx: false,
            split_heavy_epilogue: false,
            conv_rows: true,
            conv_rows_pointwise: false,
            direct_a: true,
            ukernels: false,
            winograd: true,
            winograd_tile: 2,
            loop_opts: false,
            compile_threads: None,
            moe: MoeStrategy::Auto,
            tuning: None,
        };
        match bits {
            512 => Target { name: "llvm-avx512", vector_width: 16, mr: 8, nr: 32, kc: 512, ..avx2 },
            256 => avx2,
            _ => Target {
                name: "llvm-sse",
                split_heavy_epilogue: false,
                direct_a: true,
                winograd: true,
                ..Target::cranelift_x64()
            },
        }
    }

    /// LLVM's default schedule on this host: [`Target::llvm`] at the widest
    /// vector width the host has ([`host_vector_bits`]).
    pub fn llvm_host() -> Target {
        Target::llvm(host_vector_bits())
    }

    /// The schedule of `backend` with `opts` applied on the host's defaults.
    /// Options that do not apply to the backend (the GPU's on a CPU, the CPU's on
    /// the GPU) are ignored; one the host cannot run (`vector-bits=512` without
    /// AVX-512, `ukernels=avx2` without AVX2) is an error.
    pub fn for_backend(backend: Backend, opts: &ScheduleOptions) -> Result<Target, Error> {
        let mut t = match backend {
            Backend::Wgsl => return Ok(Target { moe: opts.moe.unwrap_or(MoeStrategy::Auto), ..crate::wgsl::target() }),
            Backend::Cranelift => {
                if let Some(b) = opts.vector_bits.filter(|&b| b != 128) {
                    return Err(Error::Schedule(format!("vector-bits={b}: cranelift's vectors are 128 bits (vector-bits sets llvm's)")));
                }
                match ukernel_isa(opts.ukernels.unwrap_or(Ukernels::Host))? {
                    Some(isa) => Target::cranelift_ukernel(isa),
                    None => Target::cranelift_x64(),
                }
            }
            Backend::Llvm => {
                let bits = opts.vector_bits.unwrap_or_else(host_vector_bits);
                if bits > host_vector_bits() {
                    return Err(Error::Schedule(format!(
                        "vector-bits={bits}: this host's widest vectors with FMA are {} bits",
                        host_vector_bits()
                    )));
                }
                let base = Target::llvm(bits);
                match ukernel_isa(opts.ukernels.unwrap_or(Ukernels::Off))? {
                    Some(isa) => {
                        let (mr, nr) = isa.tile();
                        let name = match isa {
                            Isa::Avx512 => "llvm+ukernel-avx512",
                            Isa::Avx2 => "llvm+ukernel-avx2",
                        };
                        Target { name, mr, nr, generated_tile: Some((base.mr, base.nr)), ukernels: true, ..base }
                    }
                    None => base,
                }
            }
        };
        if let Some(w) = opts.winograd {
            t.winograd = w;
        }
        if let Some(r) = opts.winograd_tile {
            t.winograd_tile = r;
        }
        if let Some(d) = opts.direct_a {
            t.direct_a = d;
        }
        if let Some(c) = opts.conv_rows {
            t.conv_rows = c;
        }
        if let Some(q) = opts.quant_pairs {
            t.quant_pairs = q;
        }
        if backend == Backend::Llvm {
            let host = host_has_vnni(t.vector_width as usize * 32);
            t.quant_quads = match opts.vnni {
                Some(true) if !host => {
                    return Err(Error::Schedule(format!(
                        "vnni=on: this host has no AVX512-VNNI for {}-bit vectors",
                        t.vector_width * 32
                    )));
                }
                Some(v) => v,
                None => host,
            } && t.quant_pairs;
            t.quant_quads_narrow = !t.quant_quads && t.quant_pairs && opts.vnni != Some(false) && host_has_narrow_quads(t.vector_width as usize * 32);
        } else if opts.vnni == Some(true) {
            return Err(Error::Schedule("vnni=on: only llvm emits vpdpbusd".into()));
        }
        let amx = crate::amx::available();
        t.quant_amx = match opts.amx {
            Some(true) if !amx => return Err(Error::Schedule("amx=on: this host has no AMX-INT8 (or the OS does not grant it)".into())),
            Some(a) => a,
            None => amx,
        } && t.quant_pairs;
        t.loop_opts = opts.loop_opts;
        t.compile_threads = opts.compile_threads;
        t.moe = opts.moe.unwrap_or(MoeStrategy::Auto);
        if t.processor == Processor::Cpu {
            t.kc = opts.kc.unwrap_or(t.kc);
            t.mc = opts.mc.unwrap_or(t.mc);
            t.nc = opts.nc.unwrap_or(t.nc);
            let forced = tuning::Forced {
                conv: opts.winograd.is_some() || opts.conv_rows.is_some() || opts.winograd_tile.is_some(),
                kc: opts.kc.is_some(),
                mc: opts.mc.is_some(),
                nc: opts.nc.is_some(),
            };
            t.tuning = opts.tuning.as_ref().map(|tu| std::sync::Arc::new(tu.without(forced))).filter(|tu| !tu.is_empty());
        }
        Ok(t)
    }

    /// The schedule of a backend for code that leaves this process (object
    /// files, AOT libraries, `--emit` text): as [`Target::for_backend`], but
    /// without micro-kernels, whose calls are to addresses in this process
    /// (asking for them is an error).
    pub fn for_object(backend: Backend, opts: &ScheduleOptions) -> Result<Target, Error> {
        if matches!(opts.ukernels, Some(u) if u != Ukernels::Off) || opts.amx == Some(true) {
            return Err(Error::Schedule(
                "ukernels, amx: micro-kernels are calls into this process; object files and libraries are built without them".into(),
            ));
        }
        let opts = ScheduleOptions { ukernels: Some(Ukernels::Off), amx: Some(false), ..opts.clone() };
        Target::for_backend(backend, &opts)
    }
}

/// Whether the host multiplies u8×s8 pairs into i16 (`pmaddubsw`) at `bits`-bit
/// vectors: AVX2 at 256, SSSE3 at 128.
pub fn host_has_narrow_quads(bits: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match bits {
            256 => std::arch::is_x86_feature_detected!("avx2"),
            128 => std::arch::is_x86_feature_detected!("ssse3"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bits;
        false
    }
}

/// Whether the host multiplies u8×s8 quads (`vpdpbusd`) at `bits`-bit vectors:
/// AVX512-VNNI (with AVX512-VL below 512 bits).
pub fn host_has_vnni(bits: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let vnni = std::arch::is_x86_feature_detected!("avx512vnni");
        match bits {
            512 => vnni,
            256 => vnni && std::arch::is_x86_feature_detected!("avx512vl"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bits;
        false
    }
}

/// The micro-kernel ISA a `ukernels` setting asks for on this host (`None`:
/// generated tiles). `Host` takes the best the host has, if any; a named ISA
/// the host lacks is an error.
fn ukernel_isa(u: Ukernels) -> Result<Option<Isa>, Error> {
    let named = |isa: Isa, what: &str| {
        if isa.on_host() { Ok(Some(isa)) } else { Err(Error::Schedule(format!("ukernels={what}: this host has no {what} with FMA"))) }
    };
    match u {
        Ukernels::Off => Ok(None),
        Ukernels::Host => Ok(crate::ukernel::host()),
        Ukernels::Avx2 => named(Isa::Avx2, "avx2"),
        Ukernels::Avx512 => named(Isa::Avx512, "avx512"),
    }
}

/// The widest f32 vectors with FMA the host has, in bits: 512 with AVX-512 (F
/// and VL), 256 with AVX2, else 128.
pub fn host_vector_bits() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
            return 512;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            return 256;
        }
    }
    128
}

impl Default for Target {
    fn default() -> Target {
        Target::cranelift_x64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AMX key: on by default where the host has AMX-INT8 (both CPU
    /// backends), refused where it has not, never in code that leaves the
    /// process.
    #[test]
    fn amx_where_the_host_has_it_and_never_in_objects() {
        let host = crate::amx::available();
        let on = ScheduleOptions { amx: Some(true), ..Default::default() };
        for b in [Backend::Cranelift, Backend::Llvm] {
            if cfg!(not(feature = "llvm")) && b == Backend::Llvm {
                continue;
            }
            let t = Target::for_backend(b, &ScheduleOptions::default()).expect("the host's schedule");
            assert_eq!(t.quant_amx, host, "{b:?}");
            assert_eq!(Target::for_backend(b, &on).is_ok(), host, "{b:?}: amx=on");
            let obj = Target::for_object(b, &ScheduleOptions::default()).expect("an object schedule");
            assert!(!obj.quant_amx && !obj.ukernels, "{b:?}: micro-kernels in an object");
            let e = Target::for_object(b, &on).expect_err("amx=on in an object");
            assert!(e.to_string().contains("amx"), "{e}");
        }
        assert!(!Target::for_backend(Backend::Wgsl, &ScheduleOptions::default()).expect("wgsl").quant_amx);
    }
}
