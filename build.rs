//! With the `ingest` feature, compiles `proto/ingest.proto` with `tonic-prost-build`, using the
//! `protoc` binary vendored by `protoc-bin-vendored`, so that no system `protoc` is needed.
//! Without it (the core library alone) there is nothing to build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ingest")]
    compile_ingest_proto()?;
    Ok(())
}

#[cfg(feature = "ingest")]
fn compile_ingest_proto() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    // Payloads are cloned when a batch fans out; `Bytes` makes that a reference count.
    config.bytes(["."]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("ingest_descriptor.bin"))
        .compile_with_config(config, &["proto/ingest.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/ingest.proto");
    Ok(())
}
