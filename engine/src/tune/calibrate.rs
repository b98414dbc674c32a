//! The rates a backend reaches on this machine, measured with its own kernels
//! (one thread): a GEMM, an elementwise stream and a tiny kernel's call. They
//! calibrate the cost models that choose between alternatives — the
//! optimizer's ([`cost_target`]: fusion, sparse formats) and the MoE strategy's
//! (`Target::moe_machine`) — in place of the built-in figures of a nominal
//! machine.

use crate::backend;
use crate::error::{Error, ErrorKind, Result};
use crate::options::{BackendKind, Options};
use smelt_codegen::schedule::Calibration;
use smelt_ir::{Bindings, text::parse};
use smelt_passes::CostTarget;
use std::time::Instant;

/// Median seconds of `runs` runs of `src` on seeded random weights and inputs:
/// the whole run's, or (`kernels`) its kernels' alone, without the copies of
/// inputs and outputs in and out of the arena.
fn time(opts: &Options, src: &str, runs: usize, kernels: bool) -> Result<f64> {
    let internal = |e: String| Error::text(ErrorKind::Internal, format!("error: calibration graph: {e}"));
    let mut g = parse(src).map_err(|e| internal(format!("{e:?}")))?;
    for (k, w) in smelt_interp::init::random_weights(&g, 0).map_err(internal)? {
        g.set_weight(k, w);
    }
    let inputs = smelt_interp::init::random_inputs(&g, 0, &Bindings::new()).map_err(internal)?;
    let exe = backend::for_options(opts)?.compile(&g)?;
    exe.run(&inputs)?;
    let mut ts = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        if kernels {
            let (_, p) = exe.run_profiled(&inputs)?;
            ts.push(p.map(|p| p.total_seconds()).unwrap_or_else(|| t0.elapsed().as_secs_f64()));
        } else {
            exe.run(&inputs)?;
            ts.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(super::median(ts))
}

/// Measures `opts`'s backend (a CPU one) on one thread.
pub fn calibrate(opts: &Options) -> Result<Calibration> {
    let opts = Options { threads: 1, ..opts.clone() };
    let (m, k, n) = (256, 512, 512);
    let gemm = format!("graph g(x: f32[{m}, {k}]) -> (y) {{\n  w = param f32[{k}, {n}]\n  y = matmul(x, w)\n}}\n");
    let t = time(&opts, &gemm, 7, true)?;
    let gemm_mflops = (2.0 * (m * k * n) as f64 / t * 1e-6) as u64;
    let len = 8 << 20;
    let add = format!("graph g(a: f32[{len}], b: f32[{len}]) -> (y) {{\n  y = add(a, b)\n}}\n");
    let t = time(&opts, &add, 5, true)?;
    let stream_mbs = (3.0 * 4.0 * len as f64 / t * 1e-6) as u64;
    // 32 kernels that cannot fuse (the graph is compiled as written).
    let mut chain = String::from("graph g(x: f32[16]) -> (y31) {\n  y0 = relu(x)\n");
    for i in 1..32 {
        chain.push_str(&format!("  y{i} = neg(y{})\n", i - 1));
    }
    chain.push_str("}\n");
    let t = time(&opts, &chain, 21, false)?;
    let launch_ns = (t / 32.0 * 1e9) as u64;
    Ok(Calibration { gemm_mflops, stream_mbs, launch_ns })
}

/// The optimizer's cost target for `backend` on `threads` threads: the
/// calibration's rates where there is one (the GEMM's rate and the stream's
/// bandwidth times the threads, a kernel call's cost as measured), else the
/// built-in CPU or GPU figures.
pub fn cost_target(backend: BackendKind, threads: usize, c: Option<&Calibration>) -> CostTarget {
    match (backend, c) {
        (BackendKind::Wgsl, _) => CostTarget::GPU,
        (_, Some(c)) if c.gemm_mflops > 0 && c.stream_mbs > 0 => {
            let t = threads.max(1) as f64;
            CostTarget {
                name: "cpu",
                flops: c.gemm_mflops as f64 * 1e6 * t,
                bandwidth: c.stream_mbs as f64 * 1e6 * t,
                launch: (c.launch_ns as f64 * 1e-9).max(1e-8),
                ..CostTarget::CPU
            }
        }
        _ => CostTarget::CPU,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_target_takes_the_measured_rates() {
        let c = Calibration { gemm_mflops: 100_000, stream_mbs: 10_000, launch_ns: 150 };
        let t = cost_target(BackendKind::Llvm, 2, Some(&c));
        assert_eq!((t.flops, t.bandwidth), (200e9, 20e9));
        assert!((t.launch - 150e-9).abs() < 1e-15, "{}", t.launch);
        assert_eq!(t.sparse_csr, CostTarget::CPU.sparse_csr);
        assert_eq!(cost_target(BackendKind::Cranelift, 1, None), CostTarget::CPU);
        assert_eq!(cost_target(BackendKind::Wgsl, 1, Some(&c)), CostTarget::GPU);
    }

    #[test]
    fn calibration_measures_positive_rates() {
        let c = calibrate(&Options::backend(BackendKind::Cranelift)).expect("calibrates");
        assert!(c.gemm_mflops > 0 && c.stream_mbs > 0, "{c:?}");
    }
}
