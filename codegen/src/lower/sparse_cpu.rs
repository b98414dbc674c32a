//! CPU kernels for `sparse_matmul` whose weights are constants: the stored
//! CSR/BSR arrays are only the storage format; at compile time the weight is
//! repacked into whichever of two layouts does less work for its zeros, and the
//! kernel is register-tiled like the dense GEMM:
//!
//! - **Panels** (the block-sparse kernel, TVM's `bsr_dense` and DeepSparse's
//!   way): the columns of W are cut into panels `P` wide (one to four vectors);
//!   for each panel, only the rows `k` whose `P`-wide slice holds a nonzero are
//!   kept, dense. A tile of `MR` rows of `x` times one panel is an `MR × P`
//!   register tile updated once per kept row: one vector load of the slice per
//!   vector, one broadcast of `x[m, k]` per row — the dense micro-kernel with
//!   the zero rows skipped. Structured (block 1×P) zeros make it pay in full.
//! - **Columns** (the unstructured kernel, XNNPACK's sparse way): `x` is first
//!   transposed to `xᵀ [K, M']` (`M'` = M rounded up to the vector), then each
//!   output column `n` is `Σ_p w_p · xᵀ[k_p, :]` over its own nonzeros, a vector
//!   along the rows `m` per stored weight: no zero is ever multiplied, whatever
//!   the pattern. Used with at least a vector of rows.
//!
//! The choice is an estimate of each kernel's time from the actual pattern
//! ([`choose`]); the e-graph has already decided that the
//! sparse form beats the dense GEMM (`smelt-passes`' sparsity rules). The sums
//! run in a different order from the reference's, so results agree to rounding.

use super::util::Operand;
use super::Lowerer;
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar, Ty};

/// One stored weight: `W[k, n] = v`.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub k: usize,
    pub n: usize,
    pub v: f32,
}

/// Which kernel: panels of `width` columns with their kept rows, or columns.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    Panels { width: usize, kept: Vec<Vec<usize>> },
    Columns,
}

/// Lowers `y[M, N] = x[M, K] · W` with `W` given by its stored entries.
pub fn lower(l: &mut Lowerer, node: &str, entries: &[Entry], k: usize, n: usize, x: &Operand, out: &Operand) {
    let w = l.target.vector_width as usize;
    debug_assert!(w > 1, "CPU schedules have vectors");
    let m = x.len() as usize / k.max(1);
    match choose(entries, m, n, k, w, l.target.nr) {
        Layout::Panels { width, kept } => panels(l, node, entries, k, n, m, width, &kept, x, out),
        Layout::Columns => columns(l, node, entries, k, n, m, x, out),
    }
}

/// `out = 0`: a product with no stored weight, or with `K = 0` (any target:
/// the elementwise loop nest, one invocation per element on a GPU).
pub fn zeros(l: &mut Lowerer, node: &str, out: &Operand) {
    let mut kb = KernelBuilder::new(l.kernel_name(node, "zeros"));
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    super::util::nest(&mut kb, &l.target, &[out.len() as usize], &[vec![1]], |kb, ix| kb.store(y, ix[0].clone(), Expr::f(0.0)));
    l.step(node, kb.finish(), vec![out.buf]);
}

/// Rows `k` kept per panel of `width` columns.
fn kept_rows(entries: &[Entry], n: usize, width: usize) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = vec![vec![]; n.div_ceil(width)];
    for e in entries {
        rows[e.n / width].push(e.k);
    }
    for r in &mut rows {
        r.sort_unstable();
        r.dedup();
    }
    rows
}

/// The layout with the smaller estimated time, in nanoseconds per unit as
/// measured on an AVX2 host (docs/performance.md, *Sparsity*): a row of a kept
/// panel slice costs ~0.45 ns whatever its width (the broadcast of `x` and the
/// slice's loads dominate), a vector multiply-add of the column kernel ~1 ns
/// (its loads of `xᵀ` rows come from L2), plus the transpose and the
/// scattered stores.
fn choose(entries: &[Entry], m: usize, n: usize, k: usize, w: usize, nr: usize) -> Layout {
    let nnz = entries.len() as f64;
    let edges = 0.2 * ((m * n) as f64 + (k * m.div_ceil(w) * w) as f64);
    // Fewer rows than a vector: the column kernel's lanes would be idle (as
    // scalars, a dependent chain per column, ~1.3 ns each: never the faster).
    let columns = if m >= w { nnz * m.div_ceil(w) as f64 + edges } else { f64::INFINITY };
    let mut best = (Layout::Columns, columns);
    let mut width = w;
    while width <= nr.max(w) {
        let kept = kept_rows(entries, n, width);
        let slices: usize = kept.iter().map(Vec::len).sum();
        let cost = 0.45 * slices as f64 * m as f64;
        if cost < best.1 {
            best = (Layout::Panels { width, kept }, cost);
        }
        width *= 2;
    }
    best.0
}

fn i32s(v: impl IntoIterator<Item = usize>) -> Vec<u8> {
    v.into_iter().flat_map(|x| (x as i32).to_le_bytes()).collect()
}

#[allow(clippy::too_many_arguments)]
fn panels(l: &mut Lowerer, node: &str, entries: &[Entry], k: usize, n: usize, m: usize, width: usize, kept: &[Vec<usize>], x: &Operand, out: &Operand) {
    let w = l.target.vector_width as usize;
    let nv = width / w;
    // Packed: per panel its kept rows (k) and their `width`-wide slices.
    let mut ptr = vec![0usize];
    let mut ks = vec![];
    for r in kept {
        ks.extend(r.iter().copied());
        ptr.push(ks.len());
    }
    let mut vals = vec![0f32; ks.len().max(1) * width];
    for e in entries {
        let p = e.n / width;
        let at = ptr[p] + kept[p].binary_search(&e.k).expect("a kept row");
        vals[at * width + e.n % width] += e.v;
    }
    let npanels = kept.len();
    let vb_i = l.constant_f32(&format!("{node}.panels"), &vals);
    let kb_i = l.constant(&format!("{node}.rows"), Scalar::I32, i32s(ks.iter().copied().chain((ks.is_empty()).then_some(0))));
    let pb_i = l.constant(&format!("{node}.ptr"), Scalar::I32, i32s(ptr.iter().copied()));
    // As many rows per tile as the dense tile's accumulators allow.
    let acc_regs = (l.target.mr * (l.target.nr / w).max(1)).max(nv);
    let mr = (acc_regs / nv).clamp(1, 8).min(m.max(1));
    let mut kb = KernelBuilder::new(l.kernel_name(node, "panels"));
    let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
    let vb = kb.buffer("vals", Scalar::F32, vals.len() as u64, Access::Read);
    let rb = kb.buffer("rows", Scalar::I32, ks.len().max(1) as u64, Access::Read);
    let pb = kb.buffer("ptr", Scalar::I32, ptr.len() as u64, Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let acc: Vec<Vec<_>> = (0..mr).map(|r| (0..nv).map(|v| kb.var(&format!("c{r}{v}"), Ty::vec(Scalar::F32, w as u32))).collect()).collect();
    let work = (entries.len() * m) as u64;
    let par = if npanels > 1 && work >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    let (k, n) = (k as i64, n as i64);
    kb.for_("p", Expr::i(0), Expr::i(npanels as i64), par, |kb, p| {
        let lo = kb.let_("lo", Expr::cast(Scalar::I64, Expr::load(pb, p.clone())));
        let hi = kb.let_("hi", Expr::cast(Scalar::I64, Expr::load(pb, p.clone() + 1)));
        let col0 = kb.let_("col0", p.clone() * width as i64);
        // One tile of `rows` rows from `m0`.
        let tile = |kb: &mut KernelBuilder, m0: Expr, rows: usize| {
            for row in &acc[..rows] {
                for &v in row {
                    kb.set(v, Expr::splat(Expr::f(0.0), w as u32));
                }
            }
            kb.for_("q", lo.clone(), hi.clone(), LoopKind::Serial, |kb, q| {
                let kk = kb.let_("k", Expr::cast(Scalar::I64, Expr::load(rb, q.clone())));
                let b: Vec<Expr> = (0..nv).map(|v| kb.let_("b", Expr::loadv(vb, q.clone() * width as i64 + (v * w) as i64, w as u32))).collect();
                for (r, row) in acc[..rows].iter().enumerate() {
                    let a = kb.let_("a", Expr::splat(Expr::load(xb, (m0.clone() + r as i64) * k + kk.clone()), w as u32));
                    for (v, &c) in row.iter().enumerate() {
                        kb.set(c, Expr::fma(a.clone(), b[v].clone(), Expr::var(c)));
                    }
                }
            });
            for (r, row) in acc[..rows].iter().enumerate() {
                let base = kb.let_("yb", (m0.clone() + r as i64) * n + col0.clone());
                for (v, &c) in row.iter().enumerate() {
                    let j0 = (v * w) as i64;
                    // A whole vector inside the row, else lane by lane up to N.
                    kb.if_else(
                        (col0.clone() + j0 + w as i64).le(Expr::i(n)),
                        |kb| kb.store(y, base.clone() + j0, Expr::var(c)),
                        |kb| {
                            for lane in 0..w {
                                kb.if_((col0.clone() + j0 + lane as i64).lt(Expr::i(n)), |kb| {
                                    kb.store(y, base.clone() + (j0 + lane as i64), Expr::lane(Expr::var(c), lane as u32));
                                });
                            }
                        },
                    );
                }
            }
        };
        let full = (m / mr * mr) as i64;
        kb.for_step("m0", Expr::i(0), Expr::i(full), mr as u64, LoopKind::Serial, |kb, m0| tile(kb, m0, mr));
        kb.for_("m1", Expr::i(full), Expr::i(m as i64), LoopKind::Serial, |kb, m1| tile(kb, m1, 1));
    });
    l.step(node, kb.finish(), vec![x.buf, vb_i, kb_i, pb_i, out.buf]);
}

#[allow(clippy::too_many_arguments)]
fn columns(l: &mut Lowerer, node: &str, entries: &[Entry], k: usize, n: usize, m: usize, x: &Operand, out: &Operand) {
    let w = l.target.vector_width as usize;
    let mp = m.div_ceil(w) * w;
    // Packed by output column: its stored rows and weights.
    let mut by_col: Vec<Vec<(usize, f32)>> = vec![vec![]; n];
    for e in entries {
        by_col[e.n].push((e.k, e.v));
    }
    let mut ptr = vec![0usize];
    let (mut ks, mut vs) = (vec![], vec![]);
    for c in &mut by_col {
        c.sort_by_key(|&(k, _)| k);
        for &(k, v) in c.iter() {
            ks.push(k * mp);
            vs.push(v);
        }
        ptr.push(ks.len());
    }
    let nnz = ks.len();
    vs.resize(nnz.max(1), 0.0);
    let vb_i = l.constant_f32(&format!("{node}.values"), &vs);
    let kb_i = l.constant(&format!("{node}.rows"), Scalar::I32, i32s(ks.iter().copied().chain((nnz == 0).then_some(0))));
    let pb_i = l.constant(&format!("{node}.ptr"), Scalar::I32, i32s(ptr.iter().copied()));
    let xt_i = l.temp(&format!("{node}.xt"), Scalar::F32, (k * mp).max(1) as u64);
    let (k, n) = (k as i64, n as i64);
    // xᵀ, padded with zeros to M' rows.
    {
        let mut kb = KernelBuilder::new(l.kernel_name(node, "transpose"));
        let xb = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
        let xt = kb.buffer("xt", Scalar::F32, (k as usize * mp).max(1) as u64, Access::Write);
        let par = if (k as u64) * (mp as u64) >= l.target.parallel_min_elems && k > 1 { LoopKind::Parallel } else { LoopKind::Serial };
        kb.for_("kk", Expr::i(0), Expr::i(k), par, |kb, kk| {
            kb.for_("mm", Expr::i(0), Expr::i(m as i64), LoopKind::Serial, |kb, mm| {
                kb.store(xt, kk.clone() * mp as i64 + mm.clone(), Expr::load(xb, mm * k + kk.clone()));
            });
            kb.for_("mm", Expr::i(m as i64), Expr::i(mp as i64), LoopKind::Serial, |kb, mm| {
                kb.store(xt, kk.clone() * mp as i64 + mm, Expr::f(0.0));
            });
        });
        l.step(node, kb.finish(), vec![x.buf, xt_i]);
    }
    let mut kb = KernelBuilder::new(l.kernel_name(node, "columns"));
    let xt = kb.buffer("xt", Scalar::F32, (k as usize * mp).max(1) as u64, Access::Read);
    let vb = kb.buffer("values", Scalar::F32, vs.len() as u64, Access::Read);
    let rb = kb.buffer("rows", Scalar::I32, nnz.max(1) as u64, Access::Read);
    let pb = kb.buffer("ptr", Scalar::I32, ptr.len() as u64, Access::Read);
    let y = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    // Row vectors per tile: four, as registers allow (16 on AVX2 with the
    // loads), fewer at the end.
    let tv = 4usize;
    let acc: Vec<_> = (0..tv).map(|i| kb.var(&format!("c{i}"), Ty::vec(Scalar::F32, w as u32))).collect();
    let vecs = mp / w;
    let work = (nnz * vecs) as u64 * w as u64;
    let par = if n > 1 && work >= l.target.parallel_min_elems { LoopKind::Parallel } else { LoopKind::Serial };
    kb.for_("col", Expr::i(0), Expr::i(n), par, |kb, col| {
        let lo = kb.let_("lo", Expr::cast(Scalar::I64, Expr::load(pb, col.clone())));
        let hi = kb.let_("hi", Expr::cast(Scalar::I64, Expr::load(pb, col.clone() + 1)));
        // `cnt` row vectors from row `m0`.
        let tile = |kb: &mut KernelBuilder, m0: Expr, cnt: usize| {
            for &c in &acc[..cnt] {
                kb.set(c, Expr::splat(Expr::f(0.0), w as u32));
            }
            kb.for_("q", lo.clone(), hi.clone(), LoopKind::Serial, |kb, q| {
                let at = kb.let_("at", Expr::cast(Scalar::I64, Expr::load(rb, q.clone())) + m0.clone());
                let v = kb.let_("v", Expr::splat(Expr::load(vb, q.clone()), w as u32));
                for (i, &c) in acc[..cnt].iter().enumerate() {
                    let xv = Expr::loadv(xt, at.clone() + (i * w) as i64, w as u32);
                    kb.set(c, Expr::fma(v.clone(), xv, Expr::var(c)));
                }
            });
            for (i, &c) in acc[..cnt].iter().enumerate() {
                for lane in 0..w {
                    let row = m0.clone() + (i * w + lane) as i64;
                    let store = |kb: &mut KernelBuilder| {
                        kb.store(y, row.clone() * n + col.clone(), Expr::lane(Expr::var(c), lane as u32));
                    };
                    if m.is_multiple_of(w) {
                        store(kb);
                    } else {
                        kb.if_(row.clone().lt(Expr::i(m as i64)), store);
                    }
                }
            }
        };
        let full = (vecs / tv * tv * w) as i64;
        kb.for_step("m0", Expr::i(0), Expr::i(full), (tv * w) as u64, LoopKind::Serial, |kb, m0| tile(kb, m0, tv));
        kb.for_step("m1", Expr::i(full), Expr::i(mp as i64), w as u64, LoopKind::Serial, |kb, m1| tile(kb, m1, 1));
    });
    l.step(node, kb.finish(), vec![xt_i, vb_i, kb_i, pb_i, out.buf]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight `[k, n]` whose stored entries are `keep(k, n)`.
    fn pattern(k: usize, n: usize, keep: impl Fn(usize, usize) -> bool) -> Vec<Entry> {
        (0..k).flat_map(|i| (0..n).map(move |j| (i, j))).filter(|&(i, j)| keep(i, j)).map(|(k, n)| Entry { k, n, v: 1.0 }).collect()
    }

    #[test]
    fn blocks_take_panels_and_scattered_weights_take_columns() {
        // 1×16 blocks, one row in ten kept: panels 16 wide.
        let blocks = pattern(768, 768, |i, j| (i * 7 + j / 16 * 3) % 10 == 0);
        assert!(matches!(choose(&blocks, 128, 768, 768, 8, 16), Layout::Panels { width: 16, .. }));
        // One weight in ten, scattered: every 16-wide slice holds one, so
        // panels would multiply nine zeros per weight.
        let scattered = pattern(768, 768, |i, j| (i * 31 + j * 17) % 10 == 0);
        assert_eq!(choose(&scattered, 128, 768, 768, 8, 16), Layout::Columns);
        // A single row cannot fill the column kernel's vectors.
        assert!(matches!(choose(&scattered, 1, 768, 768, 8, 16), Layout::Panels { .. }));
    }
}
