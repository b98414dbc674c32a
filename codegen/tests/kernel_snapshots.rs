//! Snapshots of the kernel IR that representative graphs lower to (one per op
//! family), and of one kernel after vectorization. A change here is a change of
//! schedule: review it like code.

use smelt_codegen::lower::lower;
use smelt_codegen::schedule::{Target, vectorize};
use smelt_ir::text::parse;

fn kernels(src: &str) -> String {
    let mut g = parse(src).unwrap_or_else(|e| panic!("{e:?}"));
    for id in g.params() {
        let t = g.node(id).types[0].clone();
        let dims = t.shape.fixed().expect("fixed param shapes");
        let n: usize = dims.iter().product();
        let name = g.node(id).name().to_string();
        g.set_weight(name, smelt_ir::Tensor::f32(dims, (0..n).map(|i| i as f32).collect()).expect("sized"));
    }
    lower(&g, &Target::cranelift_x64()).unwrap_or_else(|e| panic!("{e}")).print_kernels()
}

#[test]
fn relu() {
    insta::assert_snapshot!(kernels("graph g(x: f32[13]) -> (y) {\n  y = relu(x)\n}\n"));
}

#[test]
fn relu_vectorized() {
    let g = parse("graph g(x: f32[13]) -> (y) {\n  y = relu(x)\n}\n").unwrap();
    let p = lower(&g, &Target::cranelift_x64()).unwrap();
    insta::assert_snapshot!(vectorize(&p.steps[0].kernel).to_string());
}

#[test]
fn add_broadcast() {
    insta::assert_snapshot!(kernels("graph g(a: f32[3, 1, 5], b: f32[4, 5]) -> (y) {\n  y = add(a, b)\n}\n"));
}

#[test]
fn large_elementwise_is_parallel() {
    insta::assert_snapshot!(kernels("graph g(a: f32[100000]) -> (y) {\n  y = sigmoid(a)\n}\n"));
}

#[test]
fn elementwise_region() {
    insta::assert_snapshot!(kernels("graph g(a: f32[2, 8], b: f32[8]) -> (y) {\n  y = elementwise(a, b) {expr = where(greater($0, 0), $0, mul($1, 0.1))}\n}\n"));
}

#[test]
fn int_add_saturates() {
    insta::assert_snapshot!(kernels("graph g(a: i8[6], b: i8[6]) -> (y) {\n  y = add(a, b)\n}\n"));
}

#[test]
fn matmul_with_packed_weights_and_bias_relu_epilogue() {
    insta::assert_snapshot!(kernels(
        "graph g(x: f32[5, 12]) -> (y) {\n  w = param f32[12, 8]\n  b = param f32[8]\n  y = fused_matmul(x, w, b) {epilogue = relu(add($0, $1))}\n}\n"
    ));
}

#[test]
fn conv2d() {
    insta::assert_snapshot!(kernels(
        "graph g(x: f32[1, 2, 5, 5]) -> (y) {\n  w = param f32[4, 2, 3, 3]\n  y = conv2d(x, w) {pad = [1, 1, 1, 1]}\n}\n"
    ));
}

/// A strided, dilated conv packs an im2col (unit-stride ones, above, read their
/// padded input in place).
#[test]
fn conv2d_strided() {
    insta::assert_snapshot!(kernels(
        "graph g(x: f32[1, 2, 7, 7]) -> (y) {\n  w = param f32[4, 2, 3, 3]\n  y = conv2d(x, w) {stride = [2, 2], pad = [1, 1, 1, 1], dilation = [2, 2]}\n}\n"
    ));
}

#[test]
fn max_pool2d() {
    insta::assert_snapshot!(kernels("graph g(x: f32[1, 2, 6, 6]) -> (y) {\n  y = max_pool2d(x) {kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]}\n}\n"));
}

#[test]
fn layer_norm_and_softmax() {
    insta::assert_snapshot!(kernels(
        "graph g(x: f32[3, 10]) -> (y) {\n  s = param f32[10]\n  n = layer_norm(x, s)\n  y = softmax(n)\n}\n"
    ));
}

#[test]
fn reduce_and_argmax() {
    insta::assert_snapshot!(kernels("graph g(x: f32[6, 5]) -> (s, a) {\n  s = reduce_sum(x) {axes = [0]}\n  a = argmax(x) {axis = 1}\n}\n"));
}

#[test]
fn shape_ops() {
    insta::assert_snapshot!(kernels(
        "graph g(x: f32[4, 6], i: i64[3]) -> (t, c, p, y) {\n  t = transpose(x)\n  c = concat(x, x) {axis = 1}\n  p = pad(x) {pads = [1, 0, 0, 2], mode = reflect}\n  y = gather(x, i)\n}\n"
    ));
}

/// A qmatmul with constant weights and a requantized output, as the packed GEMM
/// of i16 pairs: the run-time A packed into pair words, the weights packed at
/// compile time, the micro-kernel of `dot_pairs_i16`, then the f64 requantization.
/// K = 5 is odd (the last pair's high half is 0) and 3 rows fill no full tile.
fn qmatmul_program(target: &Target) -> smelt_codegen::lower::Program {
    let src = "graph g(a: u8[3, 5] quant(scale = 0.1, zero_point = 7)) -> (y) {\n  w = param i8[5, 6] quant(scale = 0.2, zero_point = 1)\n  bias = param i32[6]\n  y = qmatmul(a, w, bias) {dtype = i8, scale = 0.5}\n}\n";
    let mut g = parse(src).unwrap_or_else(|e| panic!("{e:?}"));
    let w = smelt_ir::Tensor::new(vec![5, 6], smelt_ir::Data::from_i64(smelt_ir::DType::I8, &(0..30).map(|i| i - 15).collect::<Vec<_>>())).expect("sized");
    g.set_weight("w", w);
    let bias = smelt_ir::Tensor::new(vec![6], smelt_ir::Data::from_i64(smelt_ir::DType::I32, &[1, -2, 3, -4, 5, -6])).expect("sized");
    g.set_weight("bias", bias);
    lower(&g, target).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn qmatmul_pairs() {
    insta::assert_snapshot!(qmatmul_program(&Target::cranelift_x64()).print_kernels());
}

/// The pair micro-kernel compiles to `pmaddwd` on Cranelift (i32x4) and to
/// `vpmaddwd` on ymm registers on LLVM with AVX2 — or, where the host has
/// AVX-VNNI / AVX-512 VNNI, to `vpdpwssd` (LLVM fuses the multiply-add and the
/// accumulation; it does not saturate, as `dot_pairs_i16` + add).
#[test]
fn qgemm_uses_pmaddwd() {
    let p = qmatmul_program(&Target::cranelift_x64());
    let ks: Vec<_> = p.steps.iter().map(|s| vectorize(&s.kernel)).collect();
    let asm = smelt_codegen::cranelift::asm(&ks).expect("cranelift asm");
    assert!(asm.contains("pmaddwd"), "no pmaddwd in Cranelift's code:\n{asm}");
    let t = Target::llvm_host();
    let reg = match t.vector_width {
        16 if smelt_codegen::llvm::host_has_feature("+avx512bw") => Some("zmm"),
        8 => Some("ymm"),
        _ => None,
    };
    if let Some(reg) = reg {
        let p = qmatmul_program(&t);
        let ks: Vec<_> = p.steps.iter().map(|s| vectorize(&s.kernel)).collect();
        let asm = smelt_codegen::llvm::asm(&ks, &Default::default()).expect("llvm asm");
        let pairs = |l: &str| (l.contains("vpmaddwd") || l.contains("vpdpwssd")) && l.contains(reg);
        assert!(asm.lines().any(pairs), "no vpmaddwd/vpdpwssd on {reg} in LLVM's code:\n{asm}");
    }
}

/// The GEMM with the micro-kernel tile (an explicit AVX-512 schedule, so the
/// snapshot does not depend on the host): each tile one `tile_gemm` call into the
/// block's scratch tile, then the epilogue from there; 5 rows and 40 columns make
/// edge tiles.
#[test]
fn matmul_with_micro_kernel_tiles() {
    let mut g = parse("graph g(x: f32[5, 12]) -> (y) {\n  w = param f32[12, 40]\n  b = param f32[40]\n  y = fused_matmul(x, w, b) {epilogue = relu(add($0, $1))}\n}\n").unwrap();
    for (name, dims) in [("w", vec![12, 40]), ("b", vec![40])] {
        let n: usize = dims.iter().product();
        g.set_weight(name.to_string(), smelt_ir::Tensor::f32(dims, vec![0.5; n]).unwrap());
    }
    let t = Target { name: "ukernel-avx512", mr: 8, nr: 32, kc: 512, mc: 96, ukernels: true, ..Target::cranelift_x64() };
    insta::assert_snapshot!(lower(&g, &t).unwrap_or_else(|e| panic!("{e}")).print_kernels());
}
