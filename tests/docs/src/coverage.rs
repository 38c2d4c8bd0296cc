//! What a guide fails to mention: CLI commands and REST routes.

use std::path::Path;

use crate::Error;

/// The generated references in a guide's directory; not counted as mentions.
pub const GENERATED: [&str; 2] = ["cli.md", "rest.md"];

/// The hand-written markdown of a guide directory, concatenated (sorted by file name).
pub fn handwritten_text(dir: &Path) -> Result<String, Error> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension().is_some_and(|e| e == "md")
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !GENERATED.contains(&n))
        })
        .collect();
    files.sort();
    let mut text = String::new();
    for file in files {
        text.push_str(&std::fs::read_to_string(&file).map_err(Error::io(&file))?);
        text.push('\n');
    }
    Ok(text)
}

/// Whether `needle` occurs in `text` as a whole phrase: not followed by a
/// character that would make it a longer command or path.
pub fn mentions(text: &str, needle: &str) -> bool {
    let continues = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '{');
    text.match_indices(needle).any(|(at, _)| {
        let before_ok = text[..at].chars().next_back().is_none_or(|c| !continues(c));
        let after_ok = text[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !continues(c));
        before_ok && after_ok
    })
}

/// The phrases of `wanted` that `text` does not mention.
pub fn missing(text: &str, wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !mentions(text, w))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_command_or_path_is_not_a_mention() {
        assert!(mentions(
            "run `kafka-mesos broker add 0..2`",
            "kafka-mesos broker add"
        ));
        assert!(!mentions(
            "kafka-mesos broker address",
            "kafka-mesos broker add"
        ));
        assert!(mentions("`GET /api/v1/nodes` lists", "GET /api/v1/nodes"));
        assert!(!mentions("GET /api/v1/nodes/{ids}", "GET /api/v1/nodes"));
        assert!(!mentions("XGET /api/v1/nodes", "GET /api/v1/nodes"));
    }

    #[test]
    fn missing_lists_what_is_absent() {
        let wanted = vec!["a b".to_owned(), "c".to_owned()];
        assert_eq!(missing("see a b", &wanted), ["c"]);
    }
}
