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
//! Each function has the C ABI `fn(a, b, koff, tile, kc)` and computes
//! `tile[r·NR + j] = Σ_{d < kc} a[d·MR + r] · b(d)[j]` with `b(d) = b + d·NR`
//! (packed panels) or `b + koff[d]` (B in place). The products are fused
//! multiply-adds in depth order, one accumulator per element, as the generated
//! tile does, so the results are bit-identical to it.
#![allow(unsafe_code)]

/// The C signature of a tile micro-kernel: `a`, `b`, `koff` (null for packed B),
/// `tile`, `kc`.
pub type TileFn = unsafe extern "C" fn(*const f32, *const f32, *const i64, *mut f32, i64);

/// The tile micro-kernel for an `mr × nr` tile, B packed or in place (`direct`),
/// when the host has one.
pub fn tile_gemm(mr: u32, nr: u32, direct: bool) -> Option<TileFn> {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = host()?;
        if (mr as usize, nr as usize) != isa.tile() {
            return None;
        }
        return Some(match (isa, direct) {
            (Isa::Avx512, false) => x86::avx512_packed,
            (Isa::Avx512, true) => x86::avx512_direct,
            (Isa::Avx2, false) => x86::avx2_packed,
            (Isa::Avx2, true) => x86::avx2_direct,
        });
    }
    #[allow(unreachable_code)]
    {
        let _ = (mr, nr, direct);
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
}

/// The best ISA of the host that has micro-kernels, unless `SMELT_UKERNELS=0`.
pub fn host() -> Option<Isa> {
    if std::env::var("SMELT_UKERNELS").is_ok_and(|v| v.trim() == "0") {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
            return Some(Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Some(Isa::Avx2);
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

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
    unsafe fn avx512<const DIRECT: bool>(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64) {
        const MR: usize = 8;
        let mut c0 = [_mm512_setzero_ps(); MR];
        let mut c1 = [_mm512_setzero_ps(); MR];
        // SAFETY: the function's contract.
        unsafe {
            for d in 0..kc.max(0) as usize {
                let bp = b_row::<DIRECT, 32>(b, koff, d);
                let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)));
                let ap = a.add(d * MR);
                for r in 0..MR {
                    let av = _mm512_set1_ps(*ap.add(r));
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
    unsafe fn avx2<const DIRECT: bool>(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64) {
        const MR: usize = 6;
        let mut c0 = [_mm256_setzero_ps(); MR];
        let mut c1 = [_mm256_setzero_ps(); MR];
        // SAFETY: the function's contract.
        unsafe {
            for d in 0..kc.max(0) as usize {
                let bp = b_row::<DIRECT, 16>(b, koff, d);
                let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                let ap = a.add(d * MR);
                for r in 0..MR {
                    let av = _mm256_set1_ps(*ap.add(r));
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

    // The C entry points. SAFETY (all four): `tile_gemm` hands them out only when
    // the host has the ISA; the JIT passes pointers that cover the tile's reads and
    // writes (`TileGemm`).
    pub unsafe extern "C" fn avx512_packed(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64) {
        unsafe { avx512::<false>(a, b, koff, tile, kc) }
    }
    pub unsafe extern "C" fn avx512_direct(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64) {
        unsafe { avx512::<true>(a, b, koff, tile, kc) }
    }
    pub unsafe extern "C" fn avx2_packed(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64) {
        unsafe { avx2::<false>(a, b, koff, tile, kc) }
    }
    pub unsafe extern "C" fn avx2_direct(a: *const f32, b: *const f32, koff: *const i64, tile: *mut f32, kc: i64) {
        unsafe { avx2::<true>(a, b, koff, tile, kc) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every micro-kernel of the host against the plain sum of products, with
    /// depths 0, 1, odd and prime, packed and in place (offsets out of order).
    #[test]
    fn tiles_match_fused_sums() {
        #[cfg(target_arch = "x86_64")]
        for isa in [Isa::Avx512, Isa::Avx2] {
            let ok = match isa {
                Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma"),
                Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            };
            if !ok {
                continue;
            }
            let (mr, nr) = isa.tile();
            for kc in [0usize, 1, 7, 131] {
                let a: Vec<f32> = (0..kc * mr).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
                let b: Vec<f32> = (0..(kc + 3) * nr).map(|i| ((i * 53 % 97) as f32 - 48.0) / 13.0).collect();
                // In place: depth step d at row (kc + 2 - d) of `b`, shifted by one.
                let koff: Vec<i64> = (0..kc).map(|d| ((kc + 2 - d) * nr - 1) as i64).collect();
                for direct in [false, true] {
                    let f = match (isa, direct) {
                        (Isa::Avx512, false) => x86::avx512_packed as TileFn,
                        (Isa::Avx512, true) => x86::avx512_direct,
                        (Isa::Avx2, false) => x86::avx2_packed,
                        (Isa::Avx2, true) => x86::avx2_direct,
                    };
                    let mut tile = vec![f32::NAN; mr * nr];
                    // SAFETY: the host has the ISA (checked above); the buffers
                    // cover kc·mr of A, the B rows and the tile.
                    unsafe { f(a.as_ptr(), b.as_ptr(), koff.as_ptr(), tile.as_mut_ptr(), kc as i64) };
                    for r in 0..mr {
                        for j in 0..nr {
                            let mut want = 0f32;
                            for d in 0..kc {
                                let at = if direct { koff[d] as usize + j } else { d * nr + j };
                                want = a[d * mr + r].mul_add(b[at], want);
                            }
                            assert_eq!(tile[r * nr + j].to_bits(), want.to_bits(), "{isa:?} direct={direct} kc={kc} ({r}, {j})");
                        }
                    }
                }
            }
        }
    }
}
