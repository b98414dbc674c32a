//! Precompiled micro-kernels ("ukernels", as IREE calls them; MLAS and tract have
//! the same in assembly): the GEMM register tile written once in Rust with
//! `std::arch` intrinsics for each x86-64 vector ISA, compiled ahead of time into
//! smelt, and called by JIT code through [`crate::kernel::TileGemm`].
//!
//! Why: Cranelift's x86-64 backend has 128-bit vectors only, half (AVX2) or a
//! quarter (AVX-512) of the host's FLOP rate, and its `vfmadd213` ties the result
//! to a multiplicand, which costs a register copy per two FMAs. The tile is where
//! all the FLOPs of a GEMM or convolution are; everything around it — packing,
//! blocking, threads, edges, the fused epilogue — stays generated code. LLVM
//! generates a tile as fast as these itself, so its schedule does not use them
//! (`Target::ukernels`).
//!
//! Each function has the C ABI `fn(a, b, koff, tile, kc, a_rs)` and computes
//! `tile[r·NR + j] = Σ_{d < kc} a(r, d) · b(d)[j]` with `a(r, d) = a[d·MR + r]`
//! (a packed panel) or `a[r·a_rs + d]` (A in place), and `b(d) = b + d·NR`
//! (a packed panel) or `b + koff[d]` (B in place). The products are fused
//! multiply-adds in depth order, one accumulator per element, as the generated
//! tile does, so the results are bit-identical to it.
#![allow(unsafe_code)]

/// The C signature of a tile micro-kernel: `a`, `b`, `koff` (null for packed B),
/// `tile`, `kc`, `a_rs` (A's row stride in place; unused for packed A).
pub type TileFn = unsafe extern "C" fn(*const f32, *const f32, *const i64, *mut f32, i64, i64);

/// The tile micro-kernel for an `mr × nr` tile (the ISA whose tile it is: 8×32
/// AVX-512, 6×16 AVX2), B packed or in place (`direct_b`), A packed or in place
/// (`direct_a`), when the host runs that ISA.
pub fn tile_gemm(mr: u32, nr: u32, direct_b: bool, direct_a: bool) -> Option<TileFn> {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = [Isa::Avx512, Isa::Avx2].into_iter().find(|i| i.on_host() && i.tile() == (mr as usize, nr as usize))?;
        return Some(x86::entry(isa, direct_b, direct_a));
    }
    #[allow(unreachable_code)]
    {
        let _ = (mr, nr, direct_b, direct_a);
        None
    }
}

/// The vector ISAs with micro-kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F + FMA: an 8×32 tile (16 zmm accumulators, 2 B vectors).
    Avx512,
    /// AVX2 + FMA: a 6×16 tile (12 ymm accumulators, 2 B vectors).
    Avx2,
}

impl Isa {
    /// The tile (MR, NR) of this ISA's micro-kernel.
    pub fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (8, 32),
            Isa::Avx2 => (6, 16),
        }
    }

    /// Whether the host runs this ISA's micro-kernels.
    pub fn on_host(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            match self {
                Isa::Avx512 => fma && std::arch::is_x86_feature_detected!("avx512f"),
                Isa::Avx2 => fma && std::arch::is_x86_feature_detected!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

/// The best ISA of the host that has micro-kernels.
pub fn host() -> Option<Isa> {
    [Isa::Avx512, Isa::Avx2].into_iter().find(|isa| isa.on_host())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Element (row `r`, depth `d`) of A.
    ///
    /// # Safety
    /// In A's buffer (`TileGemm`'s reads are in bounds).
    #[inline(always)]
    unsafe fn a_at<const DIRECT: bool, const MR: usize>(a: *const f32, rs: i64, r: usize, d: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe { if DIRECT { *a.offset(r as isize * rs as isize + d as isize) } else { *a.add(d * MR + r) } }
    }

    /// Where depth step `d` of B starts.
    ///
    /// # Safety
    /// `koff` holds `d + 1` offsets when `DIRECT`; the result is in B's buffer.
    #[inline(always)]
    unsafe fn b_row<const DIRECT: bool, const NR: usize>(b: *const f32, koff: *const i64, d: usize) -> *const f32 {
        // SAFETY: the caller's contract (`TileGemm`'s reads are in bounds).
        unsafe { if DIRECT { b.offset(*koff.add(d) as isize) } else { b.add(d * NR) } }
    }

    /// The 8×32 tile with AVX-512.
    ///
    /// # Safety
    /// The host has AVX-512F and FMA; the pointers cover what `TileGemm` reads
    /// and writes.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn avx512<const DB: bool, const DA: bool>(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64, rs: i64) {
        const MR: usize = 8;
        let mut c0 = [_mm512_setzero_ps(); MR];
        let mut c1 = [_mm512_setzero_ps(); MR];
        // SAFETY: the function's contract.
        unsafe {
            for d in 0..kc.max(0) as usize {
                let bp = b_row::<DB, 32>(b, koff, d);
                let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)));
                for r in 0..MR {
                    let av = _mm512_set1_ps(a_at::<DA, MR>(a, rs, r, d));
                    c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
                    c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
                }
            }
            for r in 0..MR {
                _mm512_storeu_ps(tile.add(r * 32), c0[r]);
                _mm512_storeu_ps(tile.add(r * 32 + 16), c1[r]);
            }
        }
    }

    /// The 6×16 tile with AVX2.
    ///
    /// # Safety
    /// The host has AVX2 and FMA; the pointers cover what `TileGemm` reads and
    /// writes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<const DB: bool, const DA: bool>(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64, rs: i64) {
        const MR: usize = 6;
        let mut c0 = [_mm256_setzero_ps(); MR];
        let mut c1 = [_mm256_setzero_ps(); MR];
        // SAFETY: the function's contract.
        unsafe {
            for d in 0..kc.max(0) as usize {
                let bp = b_row::<DB, 16>(b, koff, d);
                let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                for r in 0..MR {
                    let av = _mm256_set1_ps(a_at::<DA, MR>(a, rs, r, d));
                    c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                    c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
                }
            }
            for r in 0..MR {
                _mm256_storeu_ps(tile.add(r * 16), c0[r]);
                _mm256_storeu_ps(tile.add(r * 16 + 8), c1[r]);
            }
        }
    }

    // The C entry points, one per (ISA, B in place, A in place). SAFETY (all):
    // `tile_gemm` hands them out only when the host has the ISA; the JIT passes
    // pointers that cover the tile's reads and writes (`TileGemm`).
    macro_rules! entries {
        ($($name:ident = $f:ident<$db:literal, $da:literal>;)*) => {
            $(unsafe extern "C" fn $name(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64, rs: i64) {
                unsafe { $f::<$db, $da>(a, b, koff, tile, kc, rs) }
            })*
        };
    }
    entries! {
        avx512_pp = avx512<false, false>;
        avx512_dp = avx512<true, false>;
        avx512_pd = avx512<false, true>;
        avx512_dd = avx512<true, true>;
        avx2_pp = avx2<false, false>;
        avx2_dp = avx2<true, false>;
        avx2_pd = avx2<false, true>;
        avx2_dd = avx2<true, true>;
    }

    /// The entry point for the ISA and the operands' layouts.
    pub fn entry(isa: super::Isa, direct_b: bool, direct_a: bool) -> super::TileFn {
        use super::Isa::{Avx2, Avx512};
        match (isa, direct_b, direct_a) {
            (Avx512, false, false) => avx512_pp,
            (Avx512, true, false) => avx512_dp,
            (Avx512, false, true) => avx512_pd,
            (Avx512, true, true) => avx512_dd,
            (Avx2, false, false) => avx2_pp,
            (Avx2, true, false) => avx2_dp,
            (Avx2, false, true) => avx2_pd,
            (Avx2, true, true) => avx2_dd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every micro-kernel of the host against the plain sum of products, with
    /// depths 0, 1, odd and prime; A and B packed or in place (B's depth steps
    /// out of order, A's rows 5 apart wider than the depth). The ISAs the host
    /// lacks are named; on an x86-64 host without AVX2 and FMA (which has no
    /// micro-kernels, so nothing would be tested) the test fails.
    #[test]
    fn tiles_match_fused_sums() {
        #[cfg(target_arch = "x86_64")]
        {
            let tested: Vec<Isa> = [Isa::Avx512, Isa::Avx2].into_iter().filter(|isa| isa.on_host()).collect();
            for isa in [Isa::Avx512, Isa::Avx2].into_iter().filter(|isa| !isa.on_host()) {
                eprintln!("this host cannot run the {isa:?} micro-kernel: not tested here");
            }
            assert!(!tested.is_empty(), "no micro-kernel ISA (AVX2 or AVX-512 with FMA) on this host: nothing tested");
            assert_eq!(super::host(), tested.first().copied(), "host() is the best ISA the host runs");
            check_tiles(&tested);
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn check_tiles(isas: &[Isa]) {
        for &isa in isas {
            let (mr, nr) = isa.tile();
            for kc in [0usize, 1, 7, 131] {
                let rs = kc + 5;
                let a: Vec<f32> = (0..mr * rs).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
                let b: Vec<f32> = (0..(kc + 3) * nr).map(|i| ((i * 53 % 97) as f32 - 48.0) / 13.0).collect();
                // In place: depth step d at row (kc + 2 - d) of `b`, shifted by one.
                let koff: Vec<i64> = (0..kc).map(|d| ((kc + 2 - d) * nr - 1) as i64).collect();
                for (direct_b, direct_a) in [(false, false), (true, false), (false, true), (true, true)] {
                    let f = x86::entry(isa, direct_b, direct_a);
                    let mut tile = vec![f32::NAN; mr * nr];
                    // SAFETY: the host has the ISA (checked above); the buffers
                    // cover A's rows or kc·mr of it, the B rows and the tile.
                    unsafe { f(a.as_ptr(), b.as_ptr(), koff.as_ptr(), tile.as_mut_ptr(), kc as i64, rs as i64) };
                    for r in 0..mr {
                        for j in 0..nr {
                            let mut want = 0f32;
                            for (d, &off) in koff.iter().enumerate() {
                                let bat = if direct_b { off as usize + j } else { d * nr + j };
                                let aat = if direct_a { r * rs + d } else { d * mr + r };
                                want = a[aat].mul_add(b[bat], want);
                            }
                            let got = tile[r * nr + j];
                            assert_eq!(got.to_bits(), want.to_bits(), "{isa:?} b in place {direct_b}, a in place {direct_a}, kc={kc} ({r}, {j})");
                        }
                    }
                }
            }
        }
    }
}
