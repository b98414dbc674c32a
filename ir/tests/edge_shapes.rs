//! Inference on empty and huge dims answers with a type or an error, never a panic.

use smelt_ir::text;

fn answers(src: &str) -> Result<String, String> {
    text::parse(src).map(|g| text::print(&g)).map_err(|e| e.to_string())
}

#[test]
fn empty_kernels_and_huge_dims() {
    let cases = [
        "graph g(x: f32[1, 3, 5, 5], w: f32[4, 3, 0, 3]) -> (y) { y = conv2d(x, w) }",
        "graph g(x: f32[281474976710656, 281474976710656]) -> (y) { y = reshape(x) {shape = [-1]} }",
        "graph g(x: f32[1, 3, 5, 5]) -> (y) { y = max_pool2d(x) {kernel = [2, 2], stride = [0, 0]} }",
        "graph g(x: f32[1, 3, 0]) -> (y) { y = max_pool1d(x) {kernel = [2]} }",
        "graph g(x: f32[3, 0]) -> (y, i) { y, i = topk(x) {k = 1} }",
        "graph g(x: f32[3, 0]) -> (y) { y = argmax(x) {axis = 1} }",
        "graph g(x: f32[2, 3]) -> (y) { y = pad(x) {pads = [18446744073709551615, 0, 0, 0]} }",
        "graph g(x: f32[2, 3]) -> (y) { y = split(x) {sizes = [18446744073709551615, 3]} }",
        "graph g(x: f32[4, 3]) -> (y) { y = moe_dispatch(x, x) {experts = 0, capacity = 0} }",
        "graph g(x: f32[1, 8, 5]) -> (y) { w = param f32[8, 8, 2]\n y = conv1d(x, w) {dilation = [18446744073709551615]} }",
        "graph g(x: f32[1, 2, 3]) -> (y) { y = sparse_matmul(x, x, x, x) {cols = 0, block = [0, 0]} }",
        "graph g(x: f32[1, 6, 3]) -> (y) { y = attention(x, x, x) {heads = 0} }",
        "graph g(x: f32[4, 3]) -> (y) { y = moe(x, x, x, x) {k = 0} }",
        "graph g(x: f32[1, 2]) -> (y) { c = const f32[18446744073709551615, 2] [1]\n y = add(x, c) }",
        "graph g(x: f32[1, 2]) -> (y) { y = expand(x) {shape = [18446744073709551615, 2]} }",
        // Each dim within the text format's limit, the element count past 2^56.
        "graph g(x: f32[64, 8]) -> (y) { y = expand(x) {shape = [281474976710656, 64, 8]} }",
        "graph g(x: f32[281474976710656, 2], y: f32[2, 281474976710656]) -> (z) { z = matmul(x, y) }",
        "graph g(x: f32[1, 2]) -> (y) { y = quantize(x) {scale = [0.1, 0.2], axis = 5} }",
    ];
    let big = "graph g(x: f32[1, 3, 281474976710656, 5], w: f32[4, 3, 3, 3]) -> (y) { y = conv2d(x, w) {pad = [9, 9, 9, 9]} }";
    assert!(answers(big).unwrap().contains("f32[1, 4, 281474976710672, 21]"));
    let fine = [
            "graph g(x: f32[2, 3]) -> (y) { y = slice(x) {starts = [-9223372036854775808], ends = [9223372036854775807], steps = [-9223372036854775808]} }",
            "graph g(x: f32[2, 3]) -> (y) { y = concat(x, x) {axis = 0} }",
            "graph g(x: f32[281474976710656, 3]) -> (y) { y = concat(x, x) {axis = 0} }",
    ];
    for c in fine {
        assert!(answers(c).is_ok(), "{c}");
    }
    for c in cases {
        let r = answers(c);
        assert!(r.is_err(), "expected an error for {c}, got {r:?}");
    }
}
