//! The AMX-INT8 micro-kernel of the quantized GEMM: a 32×32 tile of i32 sums of
//! u8×s8 (or s8×u8) products, precompiled into smelt and called by JIT code
//! through [`crate::kernel::AmxTile`], as the f32 tiles of [`crate::ukernel`] are.
//!
//! Sapphire Rapids and later Xeons multiply 8-bit matrices in eight 1 KiB tile
//! registers: one `tdpbusd` adds a 16×64 u8 tile times a 64×16 s8 tile into a
//! 16×16 i32 tile, 16,384 multiply-adds, eight times the products of a cycle of
//! AVX-512 VNNI. Neither Cranelift nor LLVM 14 emits tile code from the kernel
//! IR, so the tile is written here, once, with `asm!` (the AMX intrinsics of
//! `std::arch` are not stable). It keeps the 32×32 result in four tiles (2×2),
//! loading two A and two B tiles per depth block of 64.
//!
//! Operands (as `qgemm`'s quads: each i32 word four consecutive depth steps of one
//! row or column, byte `j` the step `4q + j`):
//! - A: a 32-row panel blocked by depth: block `kb` is 32 rows × 16 words,
//!   contiguous (1 KiB per 16 rows), so each A tile is one 1 KiB load; or
//!   (`a_rs` > 0) u8 rows read in place, `a_rs` bytes apart — a row-major u8
//!   matrix is already AMX's A layout, so activations need no packing.
//! - B: a 32-column panel, 32 words per quad step (`qgemm`'s panel layout, which
//!   is AMX's B layout): a tile is 16 steps of 16 columns, 128 bytes apart.
//! - C: 32 rows of 32 i32, `ldc` elements apart, written whole: the sums plus the
//!   bias, which is either zero (`bias` null), one row of 32 column values
//!   (`bias_rows` = 0, read for every row) or 32 rows of 16 copies of each row's
//!   value (`bias_rows` = 1, 64 bytes a row: the bias of the rows of a qconv).
//!
//! The depth is `64·kblocks` (the packers zero-pad it). Sums wrap in i32 as the
//! reference's do, and integer addition is exact, so results are bit-identical to
//! every other form of the GEMM.
//!
//! Linux gives a process the AMX register state only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); [`available`] asks
//! once and reports whether both the CPU and the kernel allow it.
#![allow(unsafe_code)]

/// The C signature of the tile: `a`, `b`, `c`, `bias` (null: none), `kblocks`,
/// `ldc` (elements), `bias_rows` (0 or 1), `a_rs` (0: A blocked; else A read in
/// place, rows `a_rs` bytes apart).
pub type AmxFn = unsafe extern "C" fn(*const u8, *const u8, *mut i32, *const i32, i64, i64, i64, i64);

/// Rows and columns of the tile.
pub const TILE: usize = 32;
/// Quad words (4 depth steps each) of one depth block.
pub const BLOCK_WORDS: usize = 16;

/// Whether the host runs AMX-INT8 tiles: the CPU has AMX-TILE and AMX-INT8, and
/// the OS granted this process the tile state (asked for on the first call).
pub fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(imp::request)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    false
}

/// The tile for `a` unsigned and `b` signed (`tdpbusd`), or `a` signed and `b`
/// unsigned (`tdpbsud`), when the host runs it.
pub fn tile(signed_a: bool) -> Option<AmxFn> {
    if !available() {
        return None;
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        return Some(if signed_a { imp::tile::<true> } else { imp::tile::<false> });
    }
    #[allow(unreachable_code)]
    {
        let _ = signed_a;
        None
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use std::arch::asm;

    /// Asks Linux for the tile data state; true when the CPU has AMX-TILE and
    /// AMX-INT8 and the request succeeded.
    pub fn request() -> bool {
        // Leaf 7 exists when the highest leaf (leaf 0's eax) is at least 7.
        if std::arch::x86_64::__cpuid(0).eax < 7 {
            return false;
        }
        let l7 = std::arch::x86_64::__cpuid_count(7, 0);
        let (tile, int8) = ((l7.edx >> 24) & 1 == 1, (l7.edx >> 25) & 1 == 1);
        if !(tile && int8) {
            return false;
        }
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with these arguments only changes this process's
        // permitted xsave features; it fails cleanly on kernels without AMX.
        unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
    }

    /// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    const CONFIG: Config = {
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut t = 0;
        while t < 8 {
            c[16 + 2 * t] = 64;
            c[48 + t] = 16;
            t += 1;
        }
        Config(c)
    };

    /// The 32×32 tile (module doc). tmm0..3: C (rows 0–15/16–31 × columns
    /// 0–15/16–31), tmm4/5: A's two row halves, tmm6/7: B's two column halves.
    ///
    /// # Safety
    /// [`super::available`] returned true; `a` holds `kblocks` blocks of 2 KiB,
    /// `b` `kblocks · 16` steps of 128 bytes, `c` 32 rows `ldc` apart of 32
    /// elements, `bias` (when not null) 32 elements or 32 rows of 16; with
    /// `a_rs` > 0, `a` 32 rows `a_rs` apart of `64 · kblocks` bytes.
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "C" fn tile<const SIGNED_A: bool>(
        a: *const u8,
        b: *const u8,
        c: *mut i32,
        bias: *const i32,
        kblocks: i64,
        ldc: i64,
        bias_rows: i64,
        a_rs: i64,
    ) {
        let cfg = &CONFIG;
        let (sb, sc) = (128i64, ldc * 4);
        // A's row stride, the step to its next depth block and to its row 16.
        let (sa, a_step, a_half) = if a_rs > 0 { (a_rs, 64, 16 * a_rs as usize) } else { (64, 2048, 1024) };
        // SAFETY: the function's contract; the asm touches only the tile
        // registers (which no compiled Rust code uses) and the operands' memory.
        unsafe {
            asm!("ldtilecfg [{c}]", c = in(reg) cfg.0.as_ptr(), options(nostack, readonly));
            if bias.is_null() {
                asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
            } else {
                // Column bias: the same 64 bytes for every row (stride 0). Row
                // bias: 16 copies of a row's value, 64 bytes a row.
                let bp = bias as *const u8;
                let (b00, b01, b10, b11, s) = if bias_rows != 0 {
                    (bp, bp, bp.add(16 * 64), bp.add(16 * 64), 64i64)
                } else {
                    (bp, bp.add(64), bp, bp.add(64), 0i64)
                };
                asm!(
                    "tileloadd tmm0, [{b00} + {s}]",
                    "tileloadd tmm1, [{b01} + {s}]",
                    "tileloadd tmm2, [{b10} + {s}]",
                    "tileloadd tmm3, [{b11} + {s}]",
                    b00 = in(reg) b00, b01 = in(reg) b01, b10 = in(reg) b10, b11 = in(reg) b11, s = in(reg) s,
                    options(nostack, readonly)
                );
            }
            let (mut ap, mut bp) = (a, b);
            for _ in 0..kblocks.max(0) {
                // One depth block: the same loads and products, the product
                // instruction by the operands' signedness.
                macro_rules! block {
                    ($dp:literal) => {
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa}]",
                            "tileloadd tmm6, [{b0} + {sb}]",
                            "tileloadd tmm7, [{b1} + {sb}]",
                            concat!($dp, " tmm0, tmm4, tmm6"),
                            "tileloadd tmm5, [{a1} + {sa}]",
                            concat!($dp, " tmm1, tmm4, tmm7"),
                            concat!($dp, " tmm2, tmm5, tmm6"),
                            concat!($dp, " tmm3, tmm5, tmm7"),
                            a0 = in(reg) ap, a1 = in(reg) ap.add(a_half), b0 = in(reg) bp, b1 = in(reg) bp.add(64),
                            sa = in(reg) sa, sb = in(reg) sb,
                            options(nostack, readonly)
                        )
                    };
                }
                if SIGNED_A { block!("tdpbsud") } else { block!("tdpbusd") }
                ap = ap.add(a_step);
                bp = bp.add(16 * 128);
            }
            let cp = c as *mut u8;
            let c1 = cp.offset(16 * sc as isize);
            asm!(
                "tilestored [{c00} + {s}], tmm0",
                "tilestored [{c01} + {s}], tmm1",
                "tilestored [{c10} + {s}], tmm2",
                "tilestored [{c11} + {s}], tmm3",
                "tilerelease",
                c00 = in(reg) cp, c01 = in(reg) cp.add(64), c10 = in(reg) c1, c11 = in(reg) c1.add(64), s = in(reg) sc,
                options(nostack)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tile against plain sums, both signednesses, with each bias form, A
    /// blocked and read in place (on hosts without AMX there is nothing to run).
    #[test]
    fn tile_matches_sums() {
        let kblocks = 3usize;
        let depth = 64 * kblocks;
        let mut seed = 7u64;
        let mut byte = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 40) as u8
        };
        let a: Vec<u8> = (0..TILE * depth).map(|_| byte()).collect();
        let b: Vec<u8> = (0..depth * TILE).map(|_| byte()).collect();
        let word = |f: &dyn Fn(usize) -> u8, q: usize| (0..4).fold(0u32, |w, j| w | (f(4 * q + j) as u32) << (8 * j)) as i32;
        // A blocked by depth: block kb, row r, word q%16.
        let mut pa = vec![0i32; TILE * depth / 4];
        for r in 0..TILE {
            for q in 0..depth / 4 {
                pa[(q / 16) * TILE * 16 + r * 16 + q % 16] = word(&|d| a[r * depth + d], q);
            }
        }
        let mut pb = vec![0i32; depth / 4 * TILE];
        for q in 0..depth / 4 {
            for j in 0..TILE {
                pb[q * TILE + j] = word(&|d| b[d * TILE + j], q);
            }
        }
        let cols: Vec<i32> = (0..TILE as i32).map(|j| j * 1000 - 7).collect();
        let rows: Vec<i32> = (0..TILE).flat_map(|r| [r as i32 * -31 + 5; 16]).collect();
        for signed_a in [false, true] {
            let Some(f) = tile(signed_a) else {
                eprintln!("this host has no AMX-INT8 (or the OS refused the tile state): the tile is not tested here");
                return;
            };
            for bias in [None, Some(false), Some(true)] {
                let ldc = TILE + 3;
                let mut c = vec![-1i32; TILE * ldc];
                let bp = match bias {
                    None => std::ptr::null(),
                    Some(false) => cols.as_ptr(),
                    Some(true) => rows.as_ptr(),
                };
                // SAFETY: the host has AMX (`tile` returned it); the buffers
                // have the sizes the contract asks for.
                // A blocked, then (u8 A only) read in place.
                let direct = !signed_a && bias == Some(false);
                let (ap, a_rs) = if direct { (a.as_ptr(), depth as i64) } else { (pa.as_ptr() as *const u8, 0) };
                unsafe { f(ap, pb.as_ptr() as *const u8, c.as_mut_ptr(), bp, kblocks as i64, ldc as i64, (bias == Some(true)) as i64, a_rs) };
                for r in 0..TILE {
                    for j in 0..TILE {
                        let mut s: i32 = match bias {
                            None => 0,
                            Some(false) => cols[j],
                            Some(true) => rows[r * 16],
                        };
                        for d in 0..depth {
                            let (x, y) = if signed_a {
                                (a[r * depth + d] as i8 as i32, b[d * TILE + j] as i32)
                            } else {
                                (a[r * depth + d] as i32, b[d * TILE + j] as i8 as i32)
                            };
                            s = s.wrapping_add(x * y);
                        }
                        assert_eq!(c[r * ldc + j], s, "signed_a {signed_a}, bias {bias:?}, ({r}, {j})");
                    }
                    assert_eq!(c[r * ldc + TILE], -1, "wrote past the tile");
                }
            }
        }
    }
}
