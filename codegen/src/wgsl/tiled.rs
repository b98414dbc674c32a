//! The tiled GEMM shader of a step with a [`Tiled`] hint (matmul, gemm,
//! fused_matmul, conv): each workgroup of 16×16 invocations computes a block of C
//! — 64×64 with 4×4 outputs per invocation, or 128×128 with 8×8 when C is large
//! (sides ≥ 256, at least [`BIG_FROM_GROUPS`] such workgroups) — held in registers; A and B go through
//! workgroup-shared tiles (zero past the matrix edges), read by every invocation
//! of the workgroup. An invocation's outputs are interleaved (rows `ly + 16·r`,
//! columns `lx + 16·c`), so that neighbouring invocations read neighbouring words
//! of the shared tiles (no bank conflicts) and store neighbouring words of C. The
//! element expressions and the epilogue are the step kernel's own, so the tiled
//! shader computes exactly what the plain kernel does, in the same order of
//! accumulation (each output sums `p = 0, 1, …` with one `fma` per step).
//!
//! [`Options::tile`] (`--schedule wgsl-tile=64|128`) forces one tile size (for
//! timing them side by side).

use super::emit::Emitter;
use super::{Dispatch, Options, Shader, kernel_err};
use crate::kernel::{Kernel, Stmt, verify::verify};
use crate::lower::gpu::Tiled;
use crate::Error;

/// Invocations per workgroup along rows and columns.
pub const SIDE: u64 = 16;
/// Workgroups of the 128×128 tile from which it is used (and both sides of C
/// must be ≥ 256): on an H200 (132 SMs) the 64×64 tile was faster while the big
/// one left SMs idle — 10.1 against 6.6 TFLOP/s at 1024³ (64 big workgroups),
/// 12.7 against 17.9 at 2048³ (256). A batch of thin GEMMs (the transformer's
/// FFN at batch 8: 64 GEMMs of M = 32) must not take it: 3/4 of its rows idle.
pub const BIG_FROM_GROUPS: u64 = 256;

/// One tile shape: `tile`×`tile` outputs per workgroup, `reg`×`reg` per
/// invocation (`tile = SIDE·reg`), shared tiles `depth` deep.
#[derive(Debug, Clone, Copy)]
struct Shape {
    tile: u64,
    reg: u64,
    depth: u64,
}

fn shape(batch: u64, m: u64, n: u64, forced: Option<u32>) -> Shape {
    let small = Shape { tile: 64, reg: 4, depth: 16 };
    let big = Shape { tile: 128, reg: 8, depth: 8 };
    match forced {
        Some(64) => small,
        Some(128) => big,
        _ if m >= 2 * big.tile && n >= 2 * big.tile && batch * m.div_ceil(big.tile) * n.div_ceil(big.tile) >= BIG_FROM_GROUPS => big,
        _ => small,
    }
}

pub fn emit(k: &Kernel, t: &Tiled, opts: &Options) -> Result<Shader, Error> {
    verify(k).map_err(|e| kernel_err(k, e.join("; ")))?;
    let Shape { tile, reg, depth } = shape(t.batch, t.m, t.n, opts.tile);
    let (gx, gy) = (t.n.div_ceil(tile), t.m.div_ceil(tile));
    if t.batch > 65535 || gx > 65535 || gy > 65535 {
        // Too many workgroups for a 3-d grid: the plain kernel runs on a linear one.
        return super::emit_kernel(k, opts);
    }
    let tvar = match k.body.as_slice() {
        [Stmt::Loop(l)] => l.var,
        _ => return Err(kernel_err(k, "a tiled step's kernel must be one parallel loop")),
    };
    let mut e = Emitter::new(k, opts);
    let (vb, vi, vj, vp, vacc, vt) =
        (e.var_name(t.vb), e.var_name(t.vi), e.var_name(t.vj), e.var_name(t.vp), e.var_name(t.vacc), e.var_name(tvar));
    let a = e.expr(&t.a).map_err(|m| kernel_err(k, m))?;
    let b = e.expr(&t.b).map_err(|m| kernel_err(k, m))?;
    let epi = e.block(&t.epilogue, 2).map_err(|m| kernel_err(k, m))?;
    let (m, n, kk) = (t.m, t.n, t.k);
    let side = SIDE;
    let threads = side * side;
    let per_thread = tile * depth / threads;
    let mut s = e.enables();
    s.push_str(&format!(
        "// kernel {} (tiled GEMM: batch {}, M {m}, N {n}, K {kk}; {tile}x{tile} tiles {depth} deep, {reg}x{reg} per invocation)\n",
        k.name, t.batch
    ));
    s.push_str(&e.bindings());
    for h in e.helpers.values() {
        s.push('\n');
        s.push_str(h);
    }
    s.push_str(&format!("\nvar<workgroup> tile_a: array<f32, {}>;\nvar<workgroup> tile_b: array<f32, {}>;\n", tile * depth, tile * depth));
    s.push_str(&format!(
        "\n@compute @workgroup_size({side}, {side})\nfn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{\n"
    ));
    s.push_str(&e.var_decls("  "));
    s.push_str(&format!(
        "  let tid = lid.y * {side}u + lid.x;\n  let row0 = i32(wid.y) * {tile}i;\n  let col0 = i32(wid.x) * {tile}i;\n  {vb} = i32(wid.z);\n  var acc: array<f32, {}>;\n",
        reg * reg
    ));
    s.push_str(&format!("  for (var p0 = 0i; p0 < {kk}i; p0 += {depth}i) {{\n"));
    s.push_str(&format!("    for (var e = 0u; e < {per_thread}u; e++) {{\n      let idx = tid + e * {threads}u;\n"));
    s.push_str(&format!(
        "      {{\n        let ii = idx / {depth}u;\n        let pp = idx % {depth}u;\n        {vi} = row0 + i32(ii);\n        {vp} = p0 + i32(pp);\n        var v = 0.0f;\n        if ({vi} < {m}i && {vp} < {kk}i) {{\n          v = {a};\n        }}\n        tile_a[pp * {tile}u + ii] = v;\n      }}\n"
    ));
    s.push_str(&format!(
        "      {{\n        let pp = idx / {tile}u;\n        let jj = idx % {tile}u;\n        {vj} = col0 + i32(jj);\n        {vp} = p0 + i32(pp);\n        var v = 0.0f;\n        if ({vj} < {n}i && {vp} < {kk}i) {{\n          v = {b};\n        }}\n        tile_b[pp * {tile}u + jj] = v;\n      }}\n"
    ));
    s.push_str("    }\n    workgroupBarrier();\n");
    s.push_str(&format!("    for (var pp = 0u; pp < {depth}u; pp++) {{\n"));
    for r in 0..reg {
        s.push_str(&format!("      let a{r} = tile_a[pp * {tile}u + lid.y + {}u];\n", r * side));
    }
    for c in 0..reg {
        s.push_str(&format!("      let b{c} = tile_b[pp * {tile}u + lid.x + {}u];\n", c * side));
    }
    for r in 0..reg {
        for c in 0..reg {
            let i = r * reg + c;
            s.push_str(&format!("      acc[{i}] = fma(a{r}, b{c}, acc[{i}]);\n"));
        }
    }
    s.push_str("    }\n    workgroupBarrier();\n  }\n");
    // The epilogue unrolled, so that `acc` is indexed by constants and stays in
    // registers.
    for r in 0..reg {
        for c in 0..reg {
            s.push_str(&format!(
                "  {vi} = row0 + i32(lid.y + {}u);\n  {vj} = col0 + i32(lid.x + {}u);\n  if ({vi} < {m}i && {vj} < {n}i) {{\n    {vacc} = acc[{}];\n    {vt} = ({vb} * {m}i + {vi}) * {n}i + {vj};\n",
                r * side,
                c * side,
                r * reg + c
            ));
            s.push_str(&epi);
            s.push_str("  }\n");
        }
    }
    s.push_str("}\n");
    Ok(Shader {
        name: k.name.clone(),
        source: s,
        writes: k.buffers.iter().map(|b| b.access.writes()).collect(),
        dispatch: Dispatch::Grid([gx as u32, gy as u32, t.batch as u32]),
        needs: e.needs(),
    })
}
