//! A plan: the lowered program of one input shape, its compiled kernels and its
//! memory layout; running it copies the inputs into an arena, calls every
//! kernel in order (parallel loops split over the thread pool) and reads the
//! outputs back. Arenas are kept for the next run (one per concurrent run), so a
//! run neither allocates nor page-faults its working memory; kernels never rely
//! on an arena's contents (debug builds fill fresh arenas with NaN bytes to
//! catch one that would).

use super::memory::{self, MemoryPlan};
use super::Result;
use smelt_codegen::Backend;
use smelt_codegen::native::{Arena, JitCode, Place};
use smelt_codegen::lower::{self, BufKind, Program};
use smelt_codegen::schedule::Target;
use smelt_ir::{Data, Graph, Tensor};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Sizes of a plan, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanStats {
    pub kernels: usize,
    /// Arena bytes after buffer reuse.
    pub peak_bytes: usize,
    /// Arena bytes without reuse.
    pub total_bytes: usize,
    /// Bytes of constants (weights and packed weights).
    pub const_bytes: usize,
}

/// The time of one kernel call.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelTime {
    pub kernel: String,
    /// The graph node the kernel computes (part of).
    pub node: String,
    pub seconds: f64,
}

/// Kernel calls of one run, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub kernels: Vec<KernelTime>,
}

impl Profile {
    pub fn total_seconds(&self) -> f64 {
        self.kernels.iter().map(|k| k.seconds).sum()
    }
}

/// A compiled, memory-planned program for one set of input shapes.
#[derive(Debug)]
pub struct Plan {
    prog: Program,
    code: JitCode,
    mem: MemoryPlan,
    /// Arenas of finished runs, reused by the next ones.
    arenas: Mutex<Vec<Arena>>,
    /// Per program buffer: an input that kernels only read and that is not an
    /// output, so a run binds the caller's tensor in place instead of copying it.
    in_place: Vec<bool>,
}

impl Plan {
    /// Lowers, plans and compiles a graph whose input shapes are bound.
    pub fn build(g: &Graph, target: &Target, backend: Backend) -> Result<Plan> {
        let prog = lower::lower(g, target)?;
        let mem = memory::plan(&prog);
        let kernels: Vec<_> = prog.steps.iter().map(|s| s.kernel.clone()).collect();
        let code = smelt_codegen::jit(backend, &kernels, target)?;
        let mut in_place = vec![false; prog.buffers.len()];
        for (_, b) in &prog.inputs {
            in_place[b.0] = true;
        }
        for o in &prog.outputs {
            in_place[o.buf.0] = false;
        }
        for s in &prog.steps {
            for (kb, b) in s.kernel.buffers.iter().zip(&s.args) {
                if kb.access.writes() {
                    in_place[b.0] = false;
                }
            }
        }
        Ok(Plan { prog, code, mem, arenas: Mutex::new(Vec::new()), in_place })
    }

    pub fn program(&self) -> &Program {
        &self.prog
    }

    pub fn stats(&self) -> PlanStats {
        let const_bytes = self
            .prog
            .buffers
            .iter()
            .map(|b| match &b.kind {
                BufKind::Const(c) => c.len(),
                _ => 0,
            })
            .sum();
        PlanStats {
            kernels: self.prog.steps.len(),
            peak_bytes: self.mem.peak_bytes,
            total_bytes: self.mem.total_bytes,
            const_bytes,
        }
    }

    fn place<'a>(&'a self, b: lower::BufIdx, ext: &[Option<&'a [u8]>]) -> Place<'a> {
        let buf = &self.prog.buffers[b.0];
        if let Some(bytes) = ext[b.0] {
            return Place::Const(bytes);
        }
        match (&buf.kind, self.mem.offsets[b.0]) {
            (BufKind::Const(c), _) => Place::Const(&c[..]),
            (_, Some(offset)) => Place::Arena { offset, bytes: buf.bytes() as usize },
            // Unplanned buffers have no life: give them an empty place (bind rejects
            // it if a kernel does use one, which would be a planner bug).
            (_, None) => Place::Arena { offset: 0, bytes: 0 },
        }
    }

    /// Runs the plan; `inputs` must match the shapes it was built for. With a
    /// `profile`, each kernel call's time is appended to it.
    pub fn run(
        &self,
        inputs: &BTreeMap<String, Tensor>,
        pool: Option<&rayon::ThreadPool>,
        profile: Option<&mut Profile>,
    ) -> Result<BTreeMap<String, Tensor>> {
        let mut arena = self.take_arena();
        // The whole run on a pool thread: each parallel kernel then forks from
        // inside the pool, the calling thread sleeps once per run rather than once
        // per kernel, and idle workers are still spinning when the next kernel
        // starts.
        let out = match pool {
            Some(p) => p.install(|| self.run_in(&mut arena, inputs, pool, profile)),
            None => self.run_in(&mut arena, inputs, pool, profile),
        };
        self.arenas.lock().unwrap_or_else(|e| e.into_inner()).push(arena);
        out
    }

    /// A kept arena, or a new one.
    fn take_arena(&self) -> Arena {
        if let Some(a) = self.arenas.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return a;
        }
        #[allow(unused_mut)]
        let mut a = Arena::new(self.mem.peak_bytes);
        #[cfg(debug_assertions)]
        a.bytes_mut().fill(0xff);
        a
    }

    fn run_in(
        &self,
        arena: &mut Arena,
        inputs: &BTreeMap<String, Tensor>,
        pool: Option<&rayon::ThreadPool>,
        mut profile: Option<&mut Profile>,
    ) -> Result<BTreeMap<String, Tensor>> {
        // Inputs bound in place (by buffer).
        let mut ext: Vec<Option<&[u8]>> = vec![None; self.prog.buffers.len()];
        for (name, b) in &self.prog.inputs {
            let t = inputs.get(name).ok_or_else(|| crate::Error::Inputs(format!("missing input `{name}`")))?;
            let buf = &self.prog.buffers[b.0];
            let n = t.numel() * t.dtype().size();
            if n as u64 != buf.bytes() {
                return Err(crate::Error::Inputs(format!("input `{name}` has {n} bytes, the plan expects {}", buf.bytes())).into());
            }
            if self.in_place[b.0]
                && let Some(bytes) = smelt_codegen::native::tensor_bytes(t)
            {
                ext[b.0] = Some(bytes);
                continue;
            }
            if let Some(off) = self.mem.offsets[b.0] {
                let dst = &mut arena.bytes_mut()[off..off + n];
                match t.data() {
                    // The common case without an intermediate copy.
                    Data::F32(v) => dst.chunks_exact_mut(4).zip(v).for_each(|(d, x)| d.copy_from_slice(&x.to_le_bytes())),
                    d => dst.copy_from_slice(&d.to_le_bytes()),
                }
            }
        }
        for (k, step) in self.prog.steps.iter().enumerate() {
            let t0 = std::time::Instant::now();
            let status = step.check.as_ref().and_then(|c| self.mem.offsets[c.buf.0]);
            if let Some(off) = status {
                arena.bytes_mut()[off..off + 32].fill(0);
            }
            let places: Vec<Place> = step.args.iter().map(|&b| self.place(b, &ext)).collect();
            let call = self.code.bind(k, arena, &places)?;
            let extent = call.extent();
            match pool {
                Some(pool) if extent > 1 => {
                    // Rayon splits the range adaptively (further when a thread runs
                    // out of work), which balances blocks of unequal cost.
                    // Pieces of at least 1/64th of a thread's share.
                    use rayon::prelude::*;
                    let call = &call;
                    let threads = pool.current_num_threads().max(1) as u64;
                    let piece = (extent / (threads * 64)).max(1);
                    let pieces = extent.div_ceil(piece);
                    pool.install(|| (0..pieces).into_par_iter().for_each(|p| call.run(p * piece, (p + 1) * piece)));
                }
                _ => call.run(0, extent),
            }
            if let (Some(off), Some(check)) = (status, &step.check) {
                let word = |i: usize| {
                    let b = &arena.bytes()[off + 8 * i..off + 8 * i + 8];
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                };
                if word(0) != 0 {
                    let message = check
                        .message
                        .replace("{0}", &word(1).to_string())
                        .replace("{1}", &word(2).to_string())
                        .replace("{2}", &word(3).to_string());
                    return Err(crate::Error::Node { node: step.node.clone(), op: check.op.clone(), message }.into());
                }
            }
            if let Some(p) = profile.as_deref_mut() {
                p.kernels.push(KernelTime {
                    kernel: step.kernel.name.clone(),
                    node: step.node.clone(),
                    seconds: t0.elapsed().as_secs_f64(),
                });
            }
        }
        let mut out = BTreeMap::new();
        for o in &self.prog.outputs {
            let buf = &self.prog.buffers[o.buf.0];
            let n = buf.bytes() as usize;
            let bytes: &[u8] = match (&buf.kind, self.mem.offsets[o.buf.0]) {
                (BufKind::Const(c), _) => &c[..n],
                (_, Some(off)) => &arena.bytes()[off..off + n],
                (_, None) => &[],
            };
            let data = Data::from_le_bytes(o.dtype, bytes)
                .ok_or_else(|| crate::Error::Inputs(format!("output `{}` has malformed bytes", o.name)))?;
            let t = Tensor::new(o.shape.clone(), data).map_err(|e| crate::Error::Inputs(e.to_string()))?;
            out.insert(o.name.clone(), t);
        }
        Ok(out)
    }
}

