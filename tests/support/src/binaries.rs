//! Finding the workspace's own binaries (the executor, the test service) from
//! an integration test of another package.
//!
//! Cargo only guarantees `CARGO_BIN_EXE_*` for binaries of the test's own
//! package. A full `cargo test --workspace` builds every binary into the same
//! target directory as the test executable; when a test runs alone, the
//! binary is built here with `cargo build`, once per process.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use crate::{Error, Result};

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The profile directory of the running test (`target/debug`).
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        what: "locating the test executable".into(),
        source,
    })?;
    // target/debug/deps/<test> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::InvalidOption(format!("unexpected test path {}", exe.display())))
}

/// The path of workspace binary `name` from package `package`, building it if needed.
pub fn binary(package: &str, name: &str) -> Result<PathBuf> {
    let path = profile_dir()?.join(name);
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Always ask cargo: it is a no-op when the binary is fresh, and it keeps a
    // stale binary from a previous edit from being tested by mistake.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .current_dir(crate::workspace_root()?);
    // Cargo describes the running test's package in these; build scripts
    // that watch them (ring's does) would see a change and rebuild, as would
    // the next build from a shell.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            )
        {
            command.env_remove(key.as_ref());
        }
    }
    if let Some(target) = path.parent().and_then(Path::parent) {
        command.env("CARGO_TARGET_DIR", target);
    }
    let output = command.output().map_err(|source| Error::Spawn {
        program: "cargo build".into(),
        source,
    })?;
    if !output.status.success() || !path.is_file() {
        return Err(Error::CommandFailed {
            program: format!("cargo build -p {package} --bin {name}"),
            status: output.status,
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(path)
}
