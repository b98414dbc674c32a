//! Cases for `sparse_matmul` with constant weights (`lower/sparse_cpu.rs` on
//! the CPU: the panel and the column kernels, chosen by the pattern): CSR and
//! BSR weights at awkward sizes — one row (panels), rows past a tile and
//! not a multiple of the vector, columns not a multiple of the panel, empty
//! columns, no stored weight at all (small, and a zero fill large enough for
//! the parallel nest), every weight stored, leading batch dims, and one large
//! enough for the parallel loops.

use super::cases::{Case, Dist, explicit, tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smelt_ir::{DType, Data, Tensor};

fn dims(s: &[usize]) -> String {
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// (rows, K, N, block [rows of W, cols of W], density of stored blocks).
type Shape<'a> = (&'a [usize], usize, usize, [usize; 2], f64);

pub fn sparse() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(7100);
    let shapes: &[Shape] = &[
        (&[1], 37, 20, [1, 1], 0.1),
        (&[5], 64, 40, [1, 8], 0.3),
        (&[2, 13], 48, 35, [1, 1], 0.3),
        (&[29], 32, 16, [4, 4], 0.5),
        (&[3], 16, 24, [1, 1], 0.0),
        (&[130], 96, 100, [1, 1], 0.05),
        (&[64], 128, 64, [1, 16], 0.2),
        (&[9], 24, 12, [1, 1], 1.0),
        (&[7], 30, 48, [1, 16], 0.6),
        (&[128], 256, 512, [1, 1], 0.1),
        (&[40], 64, 96, [16, 1], 0.25),
        // Nothing stored, an output past one GPU invocation's 65,535-step loop.
        (&[300], 16, 256, [1, 1], 0.0),
    ];
    let mut v = vec![];
    for (i, &(rows, k, n, [br, bc], density)) in shapes.iter().enumerate() {
        let (block_rows, block_cols) = (k / br, n / bc);
        let mut indices = vec![];
        let mut offsets = vec![0i32];
        for _ in 0..block_rows {
            for c in 0..block_cols {
                if density >= 1.0 || rng.random_bool(density) {
                    indices.push(c as i32);
                }
            }
            offsets.push(indices.len() as i32);
        }
        let nnz = indices.len();
        let csr = [br, bc] == [1, 1];
        let vshape: Vec<usize> = if csr { vec![nnz] } else { vec![nnz, br, bc] };
        let xs: Vec<usize> = rows.iter().copied().chain([k]).collect();
        let attrs = if csr { format!("{{cols = {n}}}") } else { format!("{{format = bsr, cols = {n}, block = [{br}, {bc}]}}") };
        let name = format!("sparse_const_{i}_{}x{k}x{n}_{br}x{bc}", dims(rows).replace(", ", "_"));
        let src = format!(
            "graph {name}(x: f32[{}]) -> (y) {{\n  values = param f32[{}]\n  indices = param i32[{nnz}]\n  offsets = param i32[{}]\n  y = sparse_matmul(x, values, indices, offsets) {attrs}\n}}\n",
            dims(&xs),
            dims(&vshape),
            offsets.len()
        );
        let mut c = explicit(&name, src, vec![("x", tensor(&mut rng, DType::F32, &xs, Dist::Any))]);
        c.weights.insert("values".into(), tensor(&mut rng, DType::F32, &vshape, Dist::Any));
        c.weights.insert("indices".into(), Tensor::new(vec![nnz], Data::I32(indices)).expect("sized"));
        c.weights.insert("offsets".into(), Tensor::new(vec![offsets.len()], Data::I32(offsets)).expect("sized"));
        v.push(c);
    }
    v
}
