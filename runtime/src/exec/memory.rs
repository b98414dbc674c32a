//! The memory planner: every arena buffer of a program (graph inputs and computed
//! values) gets an offset in one arena, reusing the space of buffers whose lives
//! do not overlap. Lives come from the step order: a buffer lives from the step
//! that first writes it (inputs: from the start) to the last step that reads it
//! (graph outputs: to the end). Offsets are assigned greedily, largest buffer
//! first, at the lowest offset free for its whole life.

use smelt_codegen::lower::{BufIdx, BufKind, Program};

/// Arena offsets are multiples of this (a cache line; vectors need 16).
pub const ALIGN: usize = 64;

/// Where each buffer lives, and the totals.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Arena offset of each program buffer (`None` for constants).
    pub offsets: Vec<Option<usize>>,
    /// Arena size: the peak of live bytes after reuse (with alignment).
    pub peak_bytes: usize,
    /// What the arena would take without reuse: every arena buffer side by side.
    pub total_bytes: usize,
}

fn round_up(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// Plans the arena of `p`.
pub fn plan(p: &Program) -> MemoryPlan {
    let n = p.buffers.len();
    let end = p.steps.len();
    // (first, last) step of each arena buffer's life.
    let mut life: Vec<Option<(usize, usize)>> = vec![None; n];
    for (b, buf) in p.buffers.iter().enumerate() {
        if matches!(buf.kind, BufKind::Input) {
            life[b] = Some((0, 0));
        }
    }
    for (s, step) in p.steps.iter().enumerate() {
        for &BufIdx(b) in &step.args {
            if matches!(p.buffers[b].kind, BufKind::Const(_)) {
                continue;
            }
            life[b] = Some(match life[b] {
                None => (s, s),
                Some((f, _)) => (f, s),
            });
        }
    }
    for o in &p.outputs {
        if let Some((f, _)) = life[o.buf.0] {
            life[o.buf.0] = Some((f, end));
        } else if !matches!(p.buffers[o.buf.0].kind, BufKind::Const(_)) {
            life[o.buf.0] = Some((0, end));
        }
    }
    let size = |b: usize| round_up(p.buffers[b].bytes() as usize).max(ALIGN);
    let mut order: Vec<usize> = (0..n).filter(|&b| life[b].is_some()).collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(size(b)), b));
    let mut placed: Vec<(usize, usize, usize, usize)> = vec![]; // (offset, size, first, last)
    let mut offsets = vec![None; n];
    let mut peak = 0;
    for b in order {
        let (f, l) = life[b].unwrap_or((0, end));
        let sz = size(b);
        // Intervals of the arena taken by buffers alive at the same time, by offset.
        let mut busy: Vec<(usize, usize)> =
            placed.iter().filter(|p| p.2 <= l && f <= p.3).map(|p| (p.0, p.0 + p.1)).collect();
        busy.sort_unstable();
        let mut at = 0;
        for (s, e) in busy {
            if s >= at + sz {
                break;
            }
            at = at.max(e);
        }
        placed.push((at, sz, f, l));
        offsets[b] = Some(at);
        peak = peak.max(at + sz);
    }
    let total = placed.iter().map(|p| p.1).sum();
    MemoryPlan { offsets, peak_bytes: peak, total_bytes: total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_codegen::lower::lower;
    use smelt_codegen::schedule::Target;
    use smelt_ir::{Bindings, load_model};
    use std::path::Path;

    /// For each arena buffer its (offset, bytes, first step, last step).
    fn lives(p: &Program, m: &MemoryPlan) -> Vec<(usize, usize, usize, usize)> {
        let mut first = vec![usize::MAX; p.buffers.len()];
        let mut last = vec![0; p.buffers.len()];
        for (s, st) in p.steps.iter().enumerate() {
            for b in &st.args {
                first[b.0] = first[b.0].min(s);
                last[b.0] = last[b.0].max(s);
            }
        }
        for (b, buf) in p.buffers.iter().enumerate() {
            if matches!(buf.kind, BufKind::Input) {
                first[b] = 0;
            }
        }
        for o in &p.outputs {
            last[o.buf.0] = p.steps.len();
        }
        (0..p.buffers.len())
            .filter_map(|b| m.offsets[b].map(|off| (off, p.buffers[b].bytes() as usize, first[b].min(last[b]), last[b])))
            .collect()
    }

    #[test]
    fn examples_reuse_memory_without_overlap() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        for (model, sym) in [("mlp", "N"), ("resblock", "N")] {
            let g = load_model(&dir.join(format!("{model}.smelt"))).unwrap();
            let g = g.bind(&Bindings::from([(sym.to_string(), 4)])).unwrap();
            let p = lower(&g, &Target::default()).unwrap();
            let m = plan(&p);
            assert!(m.peak_bytes < m.total_bytes, "{model}: peak {} is not below the total {}", m.peak_bytes, m.total_bytes);
            let l = lives(&p, &m);
            for (i, a) in l.iter().enumerate() {
                assert_eq!(a.0 % ALIGN, 0);
                assert!(a.0 + a.1 <= m.peak_bytes);
                for b in &l[i + 1..] {
                    let alive_together = a.2 <= b.3 && b.2 <= a.3;
                    let overlap = a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
                    assert!(!(alive_together && overlap), "{model}: buffers at {} and {} overlap while both live", a.0, b.0);
                }
            }
        }
    }
}
