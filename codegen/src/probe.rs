//! The host as measured: its name and ISA ([`Host::detect`]), its f32 FMA peak
//! on one core ([`fma_peak`]: independent FMA chains at the widest vectors, as
//! vendors' peak figures count them) and its streaming read bandwidth on one
//! core ([`read_bandwidth`]). `smelt tune` keys its database by [`Host`] and
//! stores the two rates with it; the benchmark tables state them, so that every
//! timing comes with the machine's ceiling.

#![allow(unsafe_code)]

use std::time::Instant;

/// What identifies a CPU for tuning data: its brand string and the ISA features
/// code generation depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host {
    /// The CPUID brand string (`Intel(R) Xeon(R) …`, `AMD EPYC …`), trimmed;
    /// `unknown` where the CPU names none.
    pub cpu: String,
    /// The features code generation reads, comma-separated, in a fixed order.
    pub features: String,
}

impl Host {
    /// This process's host.
    pub fn detect() -> Host {
        Host { cpu: brand(), features: features().join(",") }
    }
}

#[cfg(target_arch = "x86_64")]
fn brand() -> String {
    use std::arch::x86_64::__cpuid;
    // CPUID is safe on x86-64; the name's leaves exist up to the maximum.
    let max = __cpuid(0x8000_0000).eax;
    if max < 0x8000_0004 {
        return "unknown".into();
    }
    let mut bytes = Vec::with_capacity(48);
    for leaf in 0x8000_0002u32..=0x8000_0004 {
        let r = __cpuid(leaf);
        for w in [r.eax, r.ebx, r.ecx, r.edx] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
    }
    let s: String = String::from_utf8_lossy(&bytes).chars().filter(|c| *c != '\0').collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() { "unknown".into() } else { s }
}

#[cfg(not(target_arch = "x86_64"))]
fn brand() -> String {
    "unknown".into()
}

fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! has {
            ($($name:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($name) { f.push($name); })*
            };
        }
        has!("sse4.1", "avx", "avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512vnni", "avx512bf16", "avx512fp16");
    }
    if crate::amx::available() {
        f.push("amx-int8");
    }
    f
}

/// The rate of `kernel(iters)` doing `per_iter` operations per iteration, in
/// G/s: a short run sizes three of about `seconds / 3` each; the best of them.
fn best_rate(seconds: f64, per_iter: f64, kernel: impl Fn(u64)) -> f64 {
    let run = |iters: u64| {
        let t0 = Instant::now();
        kernel(iters);
        per_iter * iters as f64 / t0.elapsed().as_secs_f64() * 1e-9
    };
    let iters = ((seconds / 3.0) * run(100_000) * 1e9 / per_iter).max(1e5) as u64;
    (0..3).map(|_| run(iters)).fold(0.0, f64::max)
}

/// The f32 FMA peak of one core in GFLOP/s: independent FMA chains of the
/// widest vectors (AVX-512, else AVX2; 0 on hosts with neither), best of three
/// runs of about `seconds / 3` each.
pub fn fma_peak(seconds: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        match crate::schedule::host_vector_bits() {
            // 16 chains of 16 lanes (32 zmm registers).
            // SAFETY: the host has AVX-512F and FMA (host_vector_bits).
            512 => best_rate(seconds, 2.0 * 16.0 * 16.0, |n| unsafe { x86::chains512(n) }),
            // 12 chains of 8 (16 ymm registers, two hold the operands).
            // SAFETY: the host has AVX2 and FMA (host_vector_bits).
            256 => best_rate(seconds, 2.0 * 12.0 * 8.0, |n| unsafe { x86::chains256(n) }),
            _ => 0.0,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = seconds;
        0.0
    }
}

/// The int8 peak of one core in GOP/s (a multiply and an add per u8×s8 pair):
/// 16 independent `vpdpbusd` chains on AVX512-VNNI, best of three runs of
/// about `seconds / 3`; `None` without AVX512-VNNI. (AMX's tiles are not
/// probed: `scripts/bench/amx_peak.c` measures them.)
pub fn vnni_peak(seconds: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        // 16 chains × 64 pairs × 2 ops per iteration.
        // SAFETY: the host has AVX512-VNNI (checked first).
        std::arch::is_x86_feature_detected!("avx512vnni").then(|| best_rate(seconds, 16.0 * 64.0 * 2.0, |n| unsafe { x86::dpbusd_chains(n) }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = seconds;
        None
    }
}

/// The read bandwidth of one core in GB/s: sums of a 256 MiB buffer (far past
/// the caches), best of three passes.
pub fn read_bandwidth() -> f64 {
    let v = vec![1.0f32; 64 << 20];
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t0 = Instant::now();
        // Eight partial sums: the adds are not the limit, the reads are.
        let mut acc = [0f32; 8];
        for c in v.chunks_exact(8) {
            for (a, x) in acc.iter_mut().zip(c) {
                *a += x;
            }
        }
        std::hint::black_box(acc);
        best = best.max((v.len() * 4) as f64 / t0.elapsed().as_secs_f64() * 1e-9);
    }
    best
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// Needs AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn chains512(iters: u64) {
        let mut acc = [_mm512_setzero_ps(); 16];
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        std::hint::black_box(acc);
    }

    /// # Safety
    /// Needs AVX512-VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dpbusd_chains(iters: u64) {
        let mut acc = [_mm512_setzero_si512(); 16];
        let (a, b) = (_mm512_set1_epi32(0x0102_0304), _mm512_set1_epi32(0x0101_0101));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_dpbusd_epi32(*x, a, b);
            }
        }
        std::hint::black_box(acc);
    }

    /// # Safety
    /// Needs AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chains256(iters: u64) {
        let mut acc = [_mm256_setzero_ps(); 12];
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        std::hint::black_box(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_has_a_name_and_rates() {
        let h = Host::detect();
        assert!(!h.cpu.is_empty());
        if crate::schedule::host_vector_bits() >= 256 {
            assert!(h.features.contains("avx2"), "{h:?}");
            let p = fma_peak(0.05);
            assert!(p > 1.0 && p < 1e5, "{p} GFLOP/s");
        }
        if h.features.contains("avx512vnni") {
            let q = vnni_peak(0.05).expect("a VNNI peak");
            assert!(q > 1.0 && q < 1e6, "{q} GOP/s");
        }
    }
}
