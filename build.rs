//! Generates the ONNX protobuf types (`skiplab::onnx::proto`) from the vendored
//! `proto/onnx.proto3` (ONNX's own schema, Apache-2.0): protox compiles it in pure Rust, so
//! no `protoc` is needed, and prost-build writes the Rust types to `$OUT_DIR/onnx.rs`.

fn main() {
    let proto = "proto/onnx.proto3";
    println!("cargo:rerun-if-changed={proto}");
    println!("cargo:rerun-if-changed=build.rs");
    let descriptors = protox::compile([proto], ["proto"]).expect("proto/onnx.proto3 compiles");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("prost-build writes the ONNX types");
}
