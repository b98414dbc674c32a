//! The tiled GEMM shader of a step with a [`Tiled`] hint (matmul, gemm,
//! fused_matmul, conv): each workgroup of 16×16 invocations computes a 64×64 block
//! of C, 4×4 outputs per invocation held in registers; A and B go through
//! workgroup-shared tiles 16 deep (zero past the matrix edges), read by every
//! invocation of the workgroup. The element expressions and the epilogue are the
//! step kernel's own, so the tiled shader computes exactly what the plain kernel
//! does, in the same order of accumulation (each output sums `p = 0, 1, …` with
//! one `fma` per step).

use super::emit::Emitter;
use super::{Dispatch, Options, Shader, kernel_err};
use crate::kernel::{Kernel, Stmt, verify::verify};
use crate::lower::gpu::Tiled;
use crate::Error;

/// Rows and columns of C per workgroup.
pub const TILE: u64 = 64;
/// Depth of one shared tile.
pub const DEPTH: u64 = 16;
/// Outputs per invocation along rows and columns.
pub const REG: u64 = 4;

pub fn emit(k: &Kernel, t: &Tiled, opts: &Options) -> Result<Shader, Error> {
    verify(k).map_err(|e| kernel_err(k, e.join("; ")))?;
    let (gx, gy) = (t.n.div_ceil(TILE), t.m.div_ceil(TILE));
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
    let threads = (TILE / REG) * (TILE / REG);
    let per_thread = TILE * DEPTH / threads;
    let side = TILE / REG;
    let mut s = e.enables();
    s.push_str(&format!(
        "// kernel {} (tiled GEMM: batch {}, M {m}, N {n}, K {kk}; {TILE}x{TILE} tiles {DEPTH} deep, {REG}x{REG} per invocation)\n",
        k.name, t.batch
    ));
    s.push_str(&e.bindings());
    for h in e.helpers.values() {
        s.push('\n');
        s.push_str(h);
    }
    s.push_str(&format!("\nvar<workgroup> tile_a: array<f32, {}>;\nvar<workgroup> tile_b: array<f32, {}>;\n", TILE * DEPTH, TILE * DEPTH));
    s.push_str(&format!(
        "\n@compute @workgroup_size({side}, {side})\nfn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{\n"
    ));
    s.push_str(&e.var_decls("  "));
    s.push_str(&format!(
        "  let tid = lid.y * {side}u + lid.x;\n  let row0 = i32(wid.y) * {TILE}i;\n  let col0 = i32(wid.x) * {TILE}i;\n  {vb} = i32(wid.z);\n  var acc: array<f32, {}>;\n",
        REG * REG
    ));
    s.push_str(&format!("  for (var p0 = 0i; p0 < {kk}i; p0 += {DEPTH}i) {{\n"));
    s.push_str(&format!("    for (var e = 0u; e < {per_thread}u; e++) {{\n      let idx = tid + e * {threads}u;\n"));
    s.push_str(&format!(
        "      {{\n        let ii = idx / {DEPTH}u;\n        let pp = idx % {DEPTH}u;\n        {vi} = row0 + i32(ii);\n        {vp} = p0 + i32(pp);\n        var v = 0.0f;\n        if ({vi} < {m}i && {vp} < {kk}i) {{\n          v = {a};\n        }}\n        tile_a[pp * {TILE}u + ii] = v;\n      }}\n"
    ));
    s.push_str(&format!(
        "      {{\n        let pp = idx / {TILE}u;\n        let jj = idx % {TILE}u;\n        {vj} = col0 + i32(jj);\n        {vp} = p0 + i32(pp);\n        var v = 0.0f;\n        if ({vj} < {n}i && {vp} < {kk}i) {{\n          v = {b};\n        }}\n        tile_b[pp * {TILE}u + jj] = v;\n      }}\n"
    ));
    s.push_str("    }\n    workgroupBarrier();\n");
    s.push_str(&format!("    for (var pp = 0u; pp < {DEPTH}u; pp++) {{\n"));
    for r in 0..REG {
        s.push_str(&format!("      let a{r} = tile_a[pp * {TILE}u + lid.y * {REG}u + {r}u];\n"));
    }
    for c in 0..REG {
        s.push_str(&format!("      let b{c} = tile_b[pp * {TILE}u + lid.x * {REG}u + {c}u];\n"));
    }
    for r in 0..REG {
        for c in 0..REG {
            let i = r * REG + c;
            s.push_str(&format!("      acc[{i}] = fma(a{r}, b{c}, acc[{i}]);\n"));
        }
    }
    s.push_str("    }\n    workgroupBarrier();\n  }\n");
    // The epilogue unrolled, so that `acc` is indexed by constants and stays in
    // registers.
    for r in 0..REG {
        for c in 0..REG {
            s.push_str(&format!(
                "  {vi} = row0 + i32(lid.y * {REG}u + {r}u);\n  {vj} = col0 + i32(lid.x * {REG}u + {c}u);\n  if ({vi} < {m}i && {vj} < {n}i) {{\n    {vacc} = acc[{}];\n    {vt} = ({vb} * {m}i + {vi}) * {n}i + {vj};\n",
                r * REG + c
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
