//! Compiles our .proto subset with protox (pure Rust, no system protoc) and
//! derives `prost_reflect::ReflectMessage` for every message, which is what
//! drives the Mesos JSON form.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/mesos/v1/mesos.proto",
    "proto/mesos/v1/scheduler/scheduler.proto",
    "proto/mesos/v1/executor/executor.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("mesos_v1_descriptor.bin");

    let descriptor_set = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .include_source_info(false)
        .open_files(PROTOS)?
        .encode_file_descriptor_set();
    fs::write(&descriptor_path, descriptor_set)?;

    let mut config = prost_build::Config::new();
    config.skip_protoc_run();
    prost_reflect_build::Builder::new()
        .file_descriptor_set_path(&descriptor_path)
        .descriptor_pool("crate::DESCRIPTOR_POOL")
        .compile_protos_with_config(config, PROTOS, &["proto"])?;
    Ok(())
}
