//! The operator guides stay in step with the code: the generated references
//! are current, and the hand-written pages mention every CLI command and
//! every REST route.

use operator_docs::{
    FRAMEWORKS, REGENERATE, cli_reference, coverage, openapi, repo_root, rest_reference,
};

#[test]
fn generated_references_are_up_to_date() -> anyhow::Result<()> {
    let root = repo_root();
    let mut stale = Vec::new();
    for framework in FRAMEWORKS {
        if !framework.guide_dir(&root).is_dir() {
            eprintln!(
                "NOT CHECKED: {}: no guide in docs/{}/ yet",
                framework.name, framework.name
            );
            continue;
        }
        let Some(files) = operator_docs::references(framework, &root)? else {
            stale.push(format!(
                "{}: its crate is not wired into operator_docs::FRAMEWORKS",
                framework.name
            ));
            continue;
        };
        for (path, wanted) in files {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != wanted {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (regenerate with `{REGENERATE}`):\n  {}",
        stale.join("\n  ")
    );
    Ok(())
}

#[test]
fn every_command_and_route_is_in_the_guide() -> anyhow::Result<()> {
    let root = repo_root();
    let mut problems = Vec::new();
    for framework in FRAMEWORKS {
        let dir = framework.guide_dir(&root);
        if !dir.is_dir() {
            eprintln!(
                "NOT CHECKED: {}: no guide in docs/{}/ yet",
                framework.name, framework.name
            );
            continue;
        }
        let Some(cli) = framework.cli else {
            problems.push(format!(
                "{}: its crate is not wired into operator_docs::FRAMEWORKS",
                framework.name
            ));
            continue;
        };
        let text = coverage::handwritten_text(&dir)?;
        let mut command = cli();
        command.build();
        let commands: Vec<String> = cli_reference::command_paths(&command)
            .iter()
            .map(|path| format!("{} {}", framework.bin, path.join(" ")))
            .collect();
        let routes = rest_reference::routes(&openapi::document(framework.name, framework.noun)?);
        assert!(
            !commands.is_empty() && !routes.is_empty(),
            "{}: nothing to check",
            framework.name
        );
        let missing: Vec<String> = coverage::missing(&text, &commands)
            .into_iter()
            .chain(coverage::missing(&text, &routes))
            .collect();
        if missing.is_empty() {
            eprintln!(
                "{}: {} commands and {} routes mentioned",
                framework.name,
                commands.len(),
                routes.len()
            );
        } else {
            problems.push(format!(
                "docs/{}/ (pages other than cli.md and rest.md) does not mention:\n    {}",
                framework.name,
                missing.join("\n    ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
