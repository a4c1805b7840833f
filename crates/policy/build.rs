//! Compiles the vendored Envoy ext_authz protos (`proto/`, see its README) into prost
//! messages in `OUT_DIR`, with protox: pure Rust, so no `protoc` is needed on the machine.
//! Messages only; the gRPC call itself is framed by `src/ext_auth/grpc.rs`.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["envoy/service/auth/v3/external_auth.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(files)?;
    Ok(())
}
