//! Compiles the vendored ONNX protobuf schema (`proto/onnx.proto`) into Rust types
//! at build time: protox parses it (no system `protoc` needed) and prost-build
//! generates the code into `OUT_DIR/onnx.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["onnx.proto"], ["proto"])?;
    // Tensors' raw bytes as `Bytes`: decoded from a `Bytes` buffer they are
    // slices of the file, not copies (a model's weights were held three times
    // while importing).
    prost_build::Config::new().bytes([".onnx.TensorProto.raw_data"]).compile_fds(fds)?;
    Ok(())
}
