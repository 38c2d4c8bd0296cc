//! Tarballs from the scripts under `packaging/`, which build them into the
//! shared cache (or find them there) and print their path.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{Error, Result, tail_str};

/// A service's distribution tarball: `packaging/service-tarball.sh <service>`.
pub fn service_tarball(service: &str) -> Result<PathBuf> {
    run("packaging/service-tarball.sh", &[service])
}

/// A Java runtime built from the local JDK: `packaging/jre-tarball.sh`.
pub fn jre_tarball() -> Result<PathBuf> {
    run("packaging/jre-tarball.sh", &[])
}

/// Runs a packaging script (relative to the workspace root) and returns the
/// path it prints. The scripts serialise builds of one tarball themselves.
fn run(script: &str, args: &[&str]) -> Result<PathBuf> {
    let root = crate::workspace_root()?;
    let script = root.join(script);
    let program = format!("bash {} {}", script.display(), args.join(" "));
    if !script.is_file() {
        return Err(Error::Spawn {
            program,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "script not found"),
        });
    }
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .map_err(Error::spawn(program.clone()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(Error::CommandFailed {
            program,
            status: out.status,
            output: format!(
                "{}\n{}",
                tail_str(&stdout, 10),
                tail_str(&String::from_utf8_lossy(&out.stderr), 30)
            ),
        });
    }
    // The path is the only stdout line by contract; take the last one to be lenient.
    stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_file())
        .ok_or_else(|| Error::BadOutput {
            program,
            detail: "expected the absolute path of an existing .tar.gz".into(),
            output: stdout.clone(),
        })
}
