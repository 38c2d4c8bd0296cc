//! Keeps what operators read in step with what the frameworks do.
//!
//! The operator guides under `docs/<framework>/` and the Marathon app
//! definitions under `packaging/marathon/` are written by hand; this crate
//! checks them against the frameworks' real clap trees and the REST API's
//! real OpenAPI document, and generates the two references that are better
//! generated than written (`cli.md` and `rest.md`, with the `gen-docs`
//! binary). It launches no scheduler and talks to no Mesos.
//!
//! Modules: [`frameworks`] (the one table of frameworks), [`cli_reference`]
//! (command paths and `cli.md`), [`rest_reference`] (routes and `rest.md`),
//! [`openapi`] (the document as the API serves it), [`marathon`] (the
//! command an app definition runs), [`coverage`] (what the guides fail to
//! mention), [`error`].

pub mod cli_reference;
pub mod coverage;
pub mod error;
pub mod frameworks;
pub mod marathon;
pub mod openapi;
pub mod rest_reference;

use std::path::PathBuf;

pub use error::Error;
pub use frameworks::{FRAMEWORKS, Framework};

/// The repository's root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|tests| tests.parent())
        .map_or(manifest.clone(), PathBuf::from)
}

/// The command that rewrites the generated references.
pub const REGENERATE: &str = "cargo run -p operator-docs --bin gen-docs";

/// The generated references of `framework` (`cli.md`, `rest.md` in its guide
/// directory) with their up-to-date contents; `None` when its crate is not wired in.
pub fn references(
    framework: &Framework,
    root: &std::path::Path,
) -> Result<Option<Vec<(PathBuf, String)>>, Error> {
    let Some(cli) = framework.cli else {
        return Ok(None);
    };
    let dir = framework.guide_dir(root);
    let doc = openapi::document(framework.name, framework.noun)?;
    Ok(Some(vec![
        (
            dir.join("cli.md"),
            cli_reference::render(framework.bin, cli(), REGENERATE) + "\n",
        ),
        (
            dir.join("rest.md"),
            rest_reference::render(framework.name, &doc, REGENERATE) + "\n",
        ),
    ]))
}
