//! 3×3 convolutions with unit stride by Winograd's minimal filtering
//! F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016), as TVM, oneDNN and NNPACK have it — or F(4×4, 3×3)
//! (`Target::winograd_tile` 4: 6×6 patches, 36 GEMMs over 4× fewer tiles, 4× fewer
//! multiply-adds than direct, more rounding; chosen where a tuning measured and
//! checked it). Below for F(2×2): each 2×2 block of output
//! positions (a *tile*) comes from the 4×4 input patch under it as
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, so the 36 multiplications per channel pair
//! and tile of the direct conv become 16 element-wise products; summed over
//! input channels, those are 16 independent GEMMs, `M[ξ] = V[ξ]·U[ξ]` with
//! `V[ξ]` tiles × input channels and `U[ξ]` input × output channels. 2.25× fewer
//! multiply-adds, for three passes over memory:
//!
//! 1. the input is copied zero-bordered and channels last (`xh[n][y][x][c]`,
//!    over the extent every tile's patch reaches), so that
//! 2. `Bᵀ d B` of each patch is vectorized over channels (a patch's elements
//!    are two apart along a channels-first row; the kernel IR's vectors are
//!    unit-stride) into `V[ξ][tile][c]`, tiles padded to whole MR panels;
//! 3. the weights are transformed at compile time (`G g Gᵀ`, in f64) and packed
//!    as B panels; the 16 GEMMs are one batched [`gemm`] call that reads V in
//!    place (`DirectA`: no packing pass);
//! 4. `Aᵀ m A` is vectorized over output channels; the conv's epilogue (bias,
//!    residual, activation or a fused expression) and the stores of the 2×2
//!    outputs that lie inside the channels-first output go lane by lane.
//!
//! Not with Cranelift's own 4×8 tile (`Target::winograd` off), whose in-place A
//! is slow; what it gains where it runs is in `docs/performance.md`.
//!
//! Numerics: the transforms add and subtract up to 9 terms with coefficients
//! ±1 and ±½, so each output carries a few more roundings than the direct sum;
//! on the numerics suite's random inputs the difference stays far inside its f32
//! tolerance (1e-4 + 1e-4·|want|). F(4×4)'s coefficients reach 8 and 1/24: its
//! error is larger, within the same tolerance on the suite's cases and 5.6e-7 of
//! the largest output on ResNet-18 (random weights), and `smelt tune` checks
//! every model it chooses it for.

use super::Geo;
use crate::lower::expr::region;
use crate::lower::gemm::{DirectA, GemmSpec, OperandA, OperandB, PackSrc, gemm, pack_host};
use crate::lower::util::Operand;
use crate::lower::{BufKind, Lowerer};
use crate::kernel::{Access, Expr, KernelBuilder, LoopKind, Scalar};
use crate::Error;
use smelt_ir::Expr as IrExpr;

/// Whether the conv runs here: the target asks for it (`Target::winograd`), a
/// 2-d 3×3 conv with unit strides and dilations, one group, weights known at
/// compile time, and at least 16 input and output channels (with fewer, the
/// transforms cost more than the products they save).
pub fn applies(l: &Lowerer, g: &Geo, weights: &Operand) -> bool {
    l.target.winograd
        && !g.deep
        && (g.kd, g.kh, g.kw) == (1, 3, 3)
        && (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1)
        && g.groups == 1
        && g.c >= 16
        && g.m >= 16
        && g.oh * g.ow > 0
        && matches!(l.prog.buffer(weights.buf).kind, BufKind::Const(_))
}

/// The matrices of F(r×r, 3×3): `Bᵀ` (a×a), `G` (a×3), `Aᵀ` (r×a), `a = r + 2`
/// (Lavin & Gray's; F(4×4) with the points 0, ±1, ±2).
struct Matrices {
    bt: &'static [&'static [f64]],
    g: &'static [[f64; 3]],
    at: &'static [&'static [f64]],
}

const F2: Matrices = Matrices {
    bt: &[&[1.0, 0.0, -1.0, 0.0], &[0.0, 1.0, 1.0, 0.0], &[0.0, -1.0, 1.0, 0.0], &[0.0, 1.0, 0.0, -1.0]],
    g: &[[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]],
    at: &[&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, -1.0, -1.0]],
};

const F4: Matrices = Matrices {
    bt: &[
        &[4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        &[0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        &[0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        &[0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        &[0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        &[0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ],
    g: &[
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ],
    at: &[
        &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        &[0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        &[0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        &[0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ],
};

fn matrices(r: usize) -> &'static Matrices {
    if r == 4 { &F4 } else { &F2 }
}

/// `G g Gᵀ` of every (output, input) channel pair of `w` (`[m, c, 3, 3]`), as
/// `u[ξ][c][m]` (`ξ = a·row + col` of the a×a result), for F(r×r, 3×3).
fn transform_weights(w: &[f32], m: usize, c: usize, r: usize) -> Vec<f32> {
    let gm = matrices(r).g;
    let a = r + 2;
    let mut u = vec![0f32; a * a * c * m];
    for mo in 0..m {
        for ci in 0..c {
            let g = |i: usize, j: usize| w[((mo * c + ci) * 3 + i) * 3 + j] as f64;
            // G·g (a×3), then (G·g)·Gᵀ (a×a), in f64.
            let gg: Vec<[f64; 3]> = gm.iter().map(|row| std::array::from_fn(|j| (0..3).map(|k| row[k] * g(k, j)).sum())).collect();
            for (p, row) in gg.iter().enumerate() {
                for (q, gq) in gm.iter().enumerate() {
                    let v: f64 = (0..3).map(|k| row[k] * gq[k]).sum();
                    u[((p * a + q) * c + ci) * m + mo] = v as f32;
                }
            }
        }
    }
    u
}

/// What the transforms compute on: kernel expressions, and numbers in the tests.
trait Term: Clone + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> {
    /// `self · k` for a coefficient other than ±1.
    fn scale(self, k: f64) -> Self;
}

impl Term for f64 {
    fn scale(self, k: f64) -> f64 {
        self * k
    }
}

/// A kernel expression of `1` lane (scalar, vectorized by its loop) or of an
/// explicit vector of `.1` lanes, whose coefficients are splat to its width.
#[derive(Clone)]
struct Lanes(Expr, u32);

impl std::ops::Add for Lanes {
    type Output = Lanes;
    fn add(self, o: Lanes) -> Lanes {
        Lanes(self.0 + o.0, self.1)
    }
}

impl std::ops::Sub for Lanes {
    type Output = Lanes;
    fn sub(self, o: Lanes) -> Lanes {
        Lanes(self.0 - o.0, self.1)
    }
}

impl Term for Lanes {
    fn scale(self, k: f64) -> Lanes {
        let c = if self.1 == 1 { Expr::f(k as f32) } else { Expr::splat(Expr::f(k as f32), self.1) };
        Lanes(self.0 * c, self.1)
    }
}

/// `Σ coef[k]·x[k]` over the nonzero coefficients (±1 as additions and
/// subtractions), starting from a positive term where there is one (F(2×2)'s
/// `c − b` stays a subtraction, not `−1·b + c`).
fn combine<T: Term>(coef: &[f64], x: &[T]) -> T {
    let first = coef.iter().position(|&k| k > 0.0).or_else(|| coef.iter().position(|&k| k != 0.0)).unwrap_or(0);
    let order = std::iter::once(first).chain((0..coef.len()).filter(|&i| i != first));
    let mut acc: Option<T> = None;
    for i in order {
        let (k, t) = (coef[i], &x[i]);
        if k == 0.0 {
            continue;
        }
        acc = Some(match (acc, k) {
            (None, 1.0) => t.clone(),
            (None, k) => t.clone().scale(k),
            (Some(a), 1.0) => a + t.clone(),
            (Some(a), -1.0) => a - t.clone(),
            (Some(a), k) if k < 0.0 => a - t.clone().scale(-k),
            (Some(a), k) => a + t.clone().scale(k),
        });
    }
    acc.expect("every row of the transforms has a nonzero coefficient")
}

/// `M d Mᵀ` of a square patch `d` for the rows `m` of `M` (on the patch's
/// columns, then on its rows).
fn sandwich<T: Term>(m: &[&[f64]], d: &[Vec<T>]) -> Vec<Vec<T>> {
    let n = d.len();
    // cols[j][p] = Σ_k m[p][k]·d[k][j]
    let cols: Vec<Vec<T>> = (0..n).map(|j| m.iter().map(|row| combine(row, &d.iter().map(|r| r[j].clone()).collect::<Vec<_>>())).collect()).collect();
    (0..m.len()).map(|p| m.iter().map(|row| combine(row, &cols.iter().map(|c| c[p].clone()).collect::<Vec<_>>())).collect()).collect()
}

/// `Bᵀ d B` of an a×a patch (`d[row][col]`).
fn input_transform<T: Term>(d: &[Vec<T>], r: usize) -> Vec<Vec<T>> {
    sandwich(matrices(r).bt, d)
}

/// `Aᵀ m A` of the a×a element-wise products (`m[row][col]`): the r×r outputs.
fn output_transform<T: Term>(m: &[Vec<T>], r: usize) -> Vec<Vec<T>> {
    sandwich(matrices(r).at, m)
}

pub fn lower(l: &mut Lowerer, node: &str, g: &Geo, e: &IrExpr, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, wt) = (&ins[0], &ins[1]);
    let (c, m, oh, ow) = (g.c, g.m, g.oh, g.ow);
    // F(r×r, 3×3): r×r outputs per tile from an a×a patch, a² GEMMs.
    let r = l.target.winograd_tile;
    let (a, xis) = (r + 2, (r + 2) * (r + 2));
    let tag = if r == 4 { "winograd4" } else { "winograd" };
    let (th, tw) = (oh.div_ceil(r), ow.div_ceil(r));
    let tiles = g.n * th * tw;
    // A's rows padded to whole MR panels: the GEMM reads V in place (`DirectA`).
    let tp = tiles.div_ceil(l.target.mr) * l.target.mr;
    let (hp, wp) = (r * th + 2, r * tw + 2);
    let vw = LoopKind::Vectorized(l.target.vector_width);
    let par = |l: &Lowerer, len: usize, rows: usize| {
        if len as u64 >= l.target.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial }
    };
    // 1. The input, zero-bordered, channels last: `xh[n][y][x][c]` over the
    //    extent every tile's patch reaches.
    let xh_len = g.n * hp * wp * c;
    let xh = l.temp(&format!("{node}.{tag}_x"), Scalar::F32, xh_len as u64);
    {
        let name = l.kernel_name(node, &format!("{tag}_pad"));
        let mut kb = KernelBuilder::new(name);
        let src = kb.buffer("x", Scalar::F32, x.len(), Access::Read);
        let dst = kb.buffer("xh", Scalar::F32, xh_len as u64, Access::Write);
        let rows = g.n * hp;
        let (h, w, ph, pw) = (g.h as i64, g.w as i64, g.ph as i64, g.pw as i64);
        kb.for_("r", Expr::i(0), Expr::i(rows as i64), par(l, xh_len, rows), |kb, r| {
            let ni = kb.let_("ni", r.clone() / Expr::i(hp as i64));
            let y = kb.let_("y", r.clone() % Expr::i(hp as i64) - Expr::i(ph));
            let row = kb.let_("row", r.clone() * (wp * c) as i64);
            kb.if_else(
                y.clone().ge(Expr::i(0)).and(y.clone().lt(Expr::i(h))),
                |kb| {
                    kb.for_n("xp", wp as u64, |kb, xp| {
                        let xi = kb.let_("xi", xp.clone() - Expr::i(pw));
                        let o = kb.let_("o", row.clone() + xp * c as i64);
                        kb.if_else(
                            xi.clone().ge(Expr::i(0)).and(xi.clone().lt(Expr::i(w))),
                            |kb| {
                                let at = kb.let_("at", (ni.clone() * (c as i64 * h) + y.clone()) * w + xi.clone());
                                kb.for_n("ci", c as u64, |kb, ci| {
                                    kb.store(dst, o.clone() + ci.clone(), Expr::load(src, at.clone() + ci * (h * w)));
                                });
                            },
                            |kb| kb.for_("ci", Expr::i(0), Expr::i(c as i64), vw, |kb, ci| kb.store(dst, o.clone() + ci, Expr::f(0.0))),
                        );
                    });
                },
                |kb| kb.for_("i", Expr::i(0), Expr::i((wp * c) as i64), vw, |kb, i| kb.store(dst, row.clone() + i, Expr::f(0.0))),
            );
        });
        l.step(node, kb.finish(), vec![x.buf, xh]);
    }
    // 2. `Bᵀ d B` of every patch, vectorized over channels, into `v[ξ][tile][c]`.
    let per_v = tp * c;
    let v = l.temp(&format!("{node}.{tag}_v"), Scalar::F32, (xis * per_v) as u64);
    {
        let name = l.kernel_name(node, &format!("{tag}_in"));
        let mut kb = KernelBuilder::new(name);
        let src = kb.buffer("xh", Scalar::F32, xh_len as u64, Access::Read);
        let dst = kb.buffer("v", Scalar::F32, (xis * per_v) as u64, Access::Write);
        let rows = g.n * th;
        // Iteration `rows` zeroes the padding rows.
        kb.for_("r", Expr::i(0), Expr::i(rows as i64 + 1), par(l, xis * per_v, rows), |kb, rr| {
            kb.if_else(
                rr.clone().lt(Expr::i(rows as i64)),
                |kb| {
                    let ni = kb.let_("ni", rr.clone() / Expr::i(th as i64));
                    let ty = kb.let_("ty", rr.clone() % Expr::i(th as i64));
                    kb.for_n("tx", tw as u64, |kb, tx| {
                        let t = kb.let_("t", rr.clone() * tw as i64 + tx.clone());
                        let o = kb.let_("o", t * c as i64);
                        let base = kb.let_("base", ((ni.clone() * hp as i64 + ty.clone() * r as i64) * wp as i64 + tx * r as i64) * c as i64);
                        kb.for_("ci", Expr::i(0), Expr::i(c as i64), vw, |kb, ci| {
                            let p: Vec<Vec<Lanes>> = (0..a)
                                .map(|y| {
                                    (0..a).map(|x| Lanes(kb.let_("d", Expr::load(src, base.clone() + ((y * wp + x) * c) as i64 + ci.clone())), 1)).collect()
                                })
                                .collect();
                            for (k, row) in input_transform(&p, r).into_iter().enumerate() {
                                for (j, val) in row.into_iter().enumerate() {
                                    kb.store(dst, o.clone() + ((k * a + j) * per_v) as i64 + ci.clone(), val.0);
                                }
                            }
                        });
                    });
                },
                |kb| {
                    let pad = ((tp - tiles) * c) as i64;
                    kb.for_n("xi", xis as u64, |kb, xi| {
                        let at = kb.let_("at", xi * per_v as i64 + (tiles * c) as i64);
                        kb.for_("i", Expr::i(0), Expr::i(pad), vw, |kb, i| kb.store(dst, at.clone() + i, Expr::f(0.0)));
                    });
                },
            );
        });
        l.step(node, kb.finish(), vec![xh, v]);
    }
    // 3. The 16 products `M[ξ] = V[ξ]·U[ξ]`, V read in place.
    let Some(w) = l.const_f32(wt.buf) else {
        return Err(crate::lower::internal(node, "winograd needs constant weights"));
    };
    // U transformed and packed on the host, one copy kept (the transform alone
    // is 16/9 of the weights: ResNet-18 held 67 MB of it beside the packing).
    let u = transform_weights(&w, m, c, r);
    drop(w);
    let nr = l.target.nr;
    let su = PackSrc { buf: wt.buf, batches: xis, bstride: (c * m) as i64, count: m, depth: c, s_lane: 1, s_depth: m as i64 };
    let packed = pack_host(&u, &su, nr);
    drop(u);
    let pu = l.constant_f32(&format!("{node}.u_packed"), &packed);
    drop(packed);
    let per_m = tp * m;
    let mbuf = l.temp(&format!("{node}.{tag}_m"), Scalar::F32, (xis * per_m) as u64);
    let spec = GemmSpec {
        batch: vec![xis],
        m: tp,
        n: m,
        k: c,
        a: OperandA::InPlace(DirectA { a: v, batch: vec![per_v as i64], rs: c as i64 }),
        b: OperandB::Packed { pb: pu, batch: vec![(m.div_ceil(nr) * c * nr) as i64] },
        c: mbuf,
        extras: vec![],
        epilogue: IrExpr::Input(0),
    };
    gemm(l, node, &spec)?;
    // 4. `Aᵀ m A` vectorized over output channels, then the epilogue and the
    //    stores lane by lane (the output is channels-first).
    let name = l.kernel_name(node, &format!("{tag}_out"));
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer("m", Scalar::F32, (xis * per_m) as u64, Access::Read);
    let bias = ins.get(2).map(|b| kb.buffer("bias", Scalar::F32, b.len(), Access::Read));
    let res: Vec<_> = ins.iter().skip(3).map(|r| kb.buffer("residual", Scalar::F32, r.len(), Access::Read)).collect();
    let dst = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let rows = g.n * th;
    let lanes = l.target.vector_width;
    let e = e.clone();
    // Rows (columns) of the last tile inside the output: the rest are kept only
    // in the other tiles.
    let (rem_h, rem_w) = (oh - r * (th - 1), ow - r * (tw - 1));
    kb.for_("r", Expr::i(0), Expr::i(rows as i64), par(l, out.len() as usize, rows), |kb, rr| {
        let ni = kb.let_("ni", rr.clone() / Expr::i(th as i64));
        let ty = kb.let_("ty", rr.clone() % Expr::i(th as i64));
        kb.for_n("tx", tw as u64, |kb, tx| {
            let t = kb.let_("t", rr.clone() * tw as i64 + tx.clone());
            let mrow = kb.let_("mrow", t * m as i64);
            let orow = kb.let_("orow", ni.clone() * (m * oh * ow) as i64 + ty.clone() * (r * ow) as i64 + tx.clone() * r as i64);
            let keep = |i: usize, j: usize| -> Option<Expr> {
                let ci = (i >= rem_h).then(|| ty.clone().lt(Expr::i(th as i64 - 1)));
                let cj = (j >= rem_w).then(|| tx.clone().lt(Expr::i(tw as i64 - 1)));
                match (ci, cj) {
                    (Some(a), Some(b)) => Some(a.and(b)),
                    (a, b) => a.or(b),
                }
            };
            // Output channels `co..co + n` (`n` lanes, or 1).
            let body = |kb: &mut KernelBuilder, co: Expr, n: u32| {
                let ld = |buf, at: Expr| if n == 1 { Expr::load(buf, at) } else { Expr::loadv(buf, at, n) };
                let mv: Vec<Vec<Lanes>> = (0..a)
                    .map(|y| (0..a).map(|x| Lanes(kb.let_("m", ld(src, mrow.clone() + co.clone() + ((y * a + x) * per_m) as i64)), n)).collect())
                    .collect();
                let ys: Vec<Vec<Expr>> =
                    output_transform(&mv, r).into_iter().map(|row| row.into_iter().map(|y| kb.let_("y", y.0)).collect()).collect();
                let bv = bias.map(|b| kb.let_("bias", ld(b, co.clone())));
                for q in 0..n {
                    let pick = |v: &Expr| if n == 1 { v.clone() } else { Expr::lane(v.clone(), q) };
                    let plane = kb.let_("plane", orow.clone() + (co.clone() + q as i64) * (oh * ow) as i64);
                    for (i, yi) in ys.iter().enumerate() {
                        for (j, y) in yi.iter().enumerate() {
                            let at = plane.clone() + (i * ow + j) as i64;
                            let store = |kb: &mut KernelBuilder| {
                                let mut vals = vec![pick(y)];
                                if let Some(b) = &bv {
                                    vals.push(pick(b));
                                }
                                for &rb in &res {
                                    vals.push(Expr::load(rb, at.clone()));
                                }
                                let z = region(kb, &e, &vals, 1);
                                kb.store(dst, at.clone(), z);
                            };
                            match keep(i, j) {
                                Some(cond) => kb.if_(cond, store),
                                None => store(kb),
                            }
                        }
                    }
                }
            };
            let full = (m / lanes as usize * lanes as usize) as i64;
            if lanes > 1 && full > 0 {
                kb.for_step("co", Expr::i(0), Expr::i(full), lanes as u64, LoopKind::Serial, |kb, co| body(kb, co, lanes));
            }
            let from = if lanes > 1 { full } else { 0 };
            if from < m as i64 {
                kb.for_("co", Expr::i(from), Expr::i(m as i64), LoopKind::Serial, |kb, co| body(kb, co, 1));
            }
        });
    });
    let mut args = vec![mbuf];
    args.extend(ins.iter().skip(2).map(|b| b.buf));
    args.push(out.buf);
    l.step(node, kb.finish(), args);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, with the kernel's own transforms, equals the
    /// 3×3 correlation of a patch `d` with `g` at its r×r positions, for F(2×2)
    /// and F(4×4) (in f64 on small integers: F(2×2) exactly, F(4×4) to 1e-9, its
    /// G holding sixths).
    #[test]
    fn transforms_compose_to_the_correlation() {
        for r in [2, 4] {
            let a = r + 2;
            let g: Vec<f32> = (0..9).map(|i| (i as f32 * 7.0) % 5.0 - 2.0).collect();
            let d: Vec<Vec<f64>> = (0..a).map(|y| (0..a).map(|x| ((y * a + x) * 3 % 11) as f64 - 5.0).collect()).collect();
            let u = transform_weights(&g, 1, 1, r);
            let v = input_transform(&d, r);
            let prod: Vec<Vec<f64>> = (0..a).map(|p| (0..a).map(|q| u[p * a + q] as f64 * v[p][q]).collect()).collect();
            let y = output_transform(&prod, r);
            assert_eq!((y.len(), y[0].len()), (r, r));
            for (i, row) in y.iter().enumerate() {
                for (j, &got) in row.iter().enumerate() {
                    let want: f64 = (0..3).flat_map(|p| (0..3).map(move |q| (p, q))).map(|(p, q)| g[p * 3 + q] as f64 * d[i + p][j + q]).sum();
                    let tol = if r == 2 { 0.0 } else { 1e-5 * want.abs().max(1.0) };
                    assert!((got - want).abs() <= tol, "F({r}): ({i}, {j}) {got} against {want}");
                }
            }
        }
    }
}
