//! 3×3 convolutions with unit stride by Winograd's minimal filtering
//! F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016), as TVM, oneDNN and NNPACK have it: each 2×2 block of output
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
//! tolerance (1e-4 + 1e-4·|want|).

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

/// `G g Gᵀ` of every (output, input) channel pair of `w` (`[m, c, 3, 3]`), as
/// `u[ξ][c][m]` (`ξ = 4·row + col` of the 4×4 result).
fn transform_weights(w: &[f32], m: usize, c: usize) -> Vec<f32> {
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
    let mut u = vec![0f32; 16 * c * m];
    for mo in 0..m {
        for ci in 0..c {
            let g = |i: usize, j: usize| w[((mo * c + ci) * 3 + i) * 3 + j] as f64;
            // G·g (4×3), then (G·g)·Gᵀ (4×4).
            let mut gg = [[0f64; 3]; 4];
            for (r, row) in gg.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (0..3).map(|k| G[r][k] * g(k, j)).sum();
                }
            }
            for (r, row) in gg.iter().enumerate() {
                for (s, gs) in G.iter().enumerate() {
                    let v: f64 = (0..3).map(|k| row[k] * gs[k]).sum();
                    u[((r * 4 + s) * c + ci) * m + mo] = v as f32;
                }
            }
        }
    }
    u
}

/// What the transforms compute on: kernel expressions, and numbers in the tests.
trait Term: Clone + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> {}
impl<T: Clone + std::ops::Add<Output = T> + std::ops::Sub<Output = T>> Term for T {}

/// `Bᵀ d B` of a 4×4 patch (`d[row][col]`).
fn input_transform<T: Term>(d: [[T; 4]; 4]) -> [[T; 4]; 4] {
    // Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], on rows then on columns.
    let t = |a: &T, b: &T, c: &T, e: &T| -> [T; 4] {
        [a.clone() - c.clone(), b.clone() + c.clone(), c.clone() - b.clone(), b.clone() - e.clone()]
    };
    let cols: Vec<[T; 4]> = (0..4).map(|j| t(&d[0][j], &d[1][j], &d[2][j], &d[3][j])).collect();
    std::array::from_fn(|r| t(&cols[0][r], &cols[1][r], &cols[2][r], &cols[3][r]))
}

/// `Aᵀ m A` of the 4×4 element-wise products (`m[row][col]`): the 2×2 outputs.
fn output_transform<T: Term>(m: [[T; 4]; 4]) -> [[T; 2]; 2] {
    // Aᵀ = [1 1 1 0; 0 1 −1 −1], on rows then on columns.
    let t = |a: &T, b: &T, c: &T, d: &T| [a.clone() + b.clone() + c.clone(), b.clone() - c.clone() - d.clone()];
    let cols: Vec<[T; 2]> = (0..4).map(|j| t(&m[0][j], &m[1][j], &m[2][j], &m[3][j])).collect();
    std::array::from_fn(|i| t(&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i]))
}

pub fn lower(l: &mut Lowerer, node: &str, g: &Geo, e: &IrExpr, ins: &[Operand], out: &Operand) -> Result<bool, Error> {
    let (x, wt) = (&ins[0], &ins[1]);
    let (c, m, oh, ow) = (g.c, g.m, g.oh, g.ow);
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let tiles = g.n * th * tw;
    // A's rows padded to whole MR panels: the GEMM reads V in place (`DirectA`).
    let tp = tiles.div_ceil(l.target.mr) * l.target.mr;
    let (hp, wp) = (2 * th + 2, 2 * tw + 2);
    let vw = LoopKind::Vectorized(l.target.vector_width);
    let par = |l: &Lowerer, len: usize, rows: usize| {
        if len as u64 >= l.target.parallel_min_elems && rows > 1 { LoopKind::Parallel } else { LoopKind::Serial }
    };
    // 1. The input, zero-bordered, channels last: `xh[n][y][x][c]` over the
    //    extent every tile's patch reaches.
    let xh_len = g.n * hp * wp * c;
    let xh = l.temp(&format!("{node}.winograd_x"), Scalar::F32, xh_len as u64);
    {
        let name = l.kernel_name(node, "winograd_pad");
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
    let v = l.temp(&format!("{node}.winograd_v"), Scalar::F32, (16 * per_v) as u64);
    {
        let name = l.kernel_name(node, "winograd_in");
        let mut kb = KernelBuilder::new(name);
        let src = kb.buffer("xh", Scalar::F32, xh_len as u64, Access::Read);
        let dst = kb.buffer("v", Scalar::F32, (16 * per_v) as u64, Access::Write);
        let rows = g.n * th;
        // Iteration `rows` zeroes the padding rows.
        kb.for_("r", Expr::i(0), Expr::i(rows as i64 + 1), par(l, 16 * per_v, rows), |kb, r| {
            kb.if_else(
                r.clone().lt(Expr::i(rows as i64)),
                |kb| {
                    let ni = kb.let_("ni", r.clone() / Expr::i(th as i64));
                    let ty = kb.let_("ty", r.clone() % Expr::i(th as i64));
                    kb.for_n("tx", tw as u64, |kb, tx| {
                        let t = kb.let_("t", r.clone() * tw as i64 + tx.clone());
                        let o = kb.let_("o", t * c as i64);
                        let base = kb.let_("base", ((ni.clone() * hp as i64 + ty.clone() * 2) * wp as i64 + tx * 2) * c as i64);
                        kb.for_("ci", Expr::i(0), Expr::i(c as i64), vw, |kb, ci| {
                            let p: [[Expr; 4]; 4] = std::array::from_fn(|a| {
                                std::array::from_fn(|b| kb.let_("d", Expr::load(src, base.clone() + ((a * wp + b) * c) as i64 + ci.clone())))
                            });
                            for (k, row) in input_transform(p).into_iter().enumerate() {
                                for (j, val) in row.into_iter().enumerate() {
                                    kb.store(dst, o.clone() + ((k * 4 + j) * per_v) as i64 + ci.clone(), val);
                                }
                            }
                        });
                    });
                },
                |kb| {
                    let pad = ((tp - tiles) * c) as i64;
                    kb.for_n("xi", 16, |kb, xi| {
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
    let u = transform_weights(&w, m, c);
    drop(w);
    let nr = l.target.nr;
    let su = PackSrc { buf: wt.buf, batches: 16, bstride: (c * m) as i64, count: m, depth: c, s_lane: 1, s_depth: m as i64 };
    let packed = pack_host(&u, &su, nr);
    drop(u);
    let pu = l.constant_f32(&format!("{node}.u_packed"), &packed);
    drop(packed);
    let per_m = tp * m;
    let mbuf = l.temp(&format!("{node}.winograd_m"), Scalar::F32, (16 * per_m) as u64);
    let spec = GemmSpec {
        batch: vec![16],
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
    let name = l.kernel_name(node, "winograd_out");
    let mut kb = KernelBuilder::new(name);
    let src = kb.buffer("m", Scalar::F32, (16 * per_m) as u64, Access::Read);
    let bias = ins.get(2).map(|b| kb.buffer("bias", Scalar::F32, b.len(), Access::Read));
    let res: Vec<_> = ins.iter().skip(3).map(|r| kb.buffer("residual", Scalar::F32, r.len(), Access::Read)).collect();
    let dst = kb.buffer("out", Scalar::F32, out.len(), Access::Write);
    let rows = g.n * th;
    let lanes = l.target.vector_width;
    let e = e.clone();
    kb.for_("r", Expr::i(0), Expr::i(rows as i64), par(l, out.len() as usize, rows), |kb, r| {
        let ni = kb.let_("ni", r.clone() / Expr::i(th as i64));
        let ty = kb.let_("ty", r.clone() % Expr::i(th as i64));
        kb.for_n("tx", tw as u64, |kb, tx| {
            let t = kb.let_("t", r.clone() * tw as i64 + tx.clone());
            let mrow = kb.let_("mrow", t * m as i64);
            let orow = kb.let_("orow", ni.clone() * (m * oh * ow) as i64 + ty.clone() * (2 * ow) as i64 + tx.clone() * 2);
            // The second row or column of the last tile lies outside an odd-sized
            // output.
            let keep = |i: usize, j: usize| -> Option<Expr> {
                let ci = (i == 1 && oh % 2 == 1).then(|| ty.clone().lt(Expr::i(th as i64 - 1)));
                let cj = (j == 1 && ow % 2 == 1).then(|| tx.clone().lt(Expr::i(tw as i64 - 1)));
                match (ci, cj) {
                    (Some(a), Some(b)) => Some(a.and(b)),
                    (a, b) => a.or(b),
                }
            };
            // Output channels `co..co + n` (`n` lanes, or 1).
            let body = |kb: &mut KernelBuilder, co: Expr, n: u32| {
                let ld = |buf, at: Expr| if n == 1 { Expr::load(buf, at) } else { Expr::loadv(buf, at, n) };
                let mv: [[Expr; 4]; 4] = std::array::from_fn(|a| {
                    std::array::from_fn(|b| kb.let_("m", ld(src, mrow.clone() + co.clone() + ((a * 4 + b) * per_m) as i64)))
                });
                let ys = output_transform(mv).map(|row| row.map(|y| kb.let_("y", y)));
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
    /// 3×3 correlation of a patch `d` with `g` at its four positions (in f64 on
    /// small integers: exact).
    #[test]
    fn transforms_compose_to_the_correlation() {
        let g: Vec<f32> = (0..9).map(|i| (i as f32 * 7.0) % 5.0 - 2.0).collect();
        let d: [[f64; 4]; 4] = std::array::from_fn(|a| std::array::from_fn(|b| ((a * 4 + b) * 3 % 11) as f64 - 5.0));
        let u = transform_weights(&g, 1, 1);
        let v = input_transform(d);
        let y = output_transform::<f64>(std::array::from_fn(|r| std::array::from_fn(|s| u[r * 4 + s] as f64 * v[r][s])));
        for (i, row) in y.iter().enumerate() {
            for (j, &got) in row.iter().enumerate() {
                let want: f64 = (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).map(|(a, b)| g[a * 3 + b] as f64 * d[i + a][j + b]).sum();
                assert_eq!(got, want, "({i}, {j})");
            }
        }
    }
}
