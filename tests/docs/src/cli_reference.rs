//! The command paths of a clap tree and the `cli.md` reference built from it.

use std::fmt::Write as _;

use clap::{Arg, Command};

/// Every subcommand path under `command`, parents before children
/// (`["broker"]`, `["broker", "add"]`, …), without clap's `help`.
pub fn command_paths(command: &Command) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    walk(command, &mut Vec::new(), &mut |path, _| {
        paths.push(path.to_vec())
    });
    paths
}

fn walk(command: &Command, prefix: &mut Vec<String>, visit: &mut dyn FnMut(&[String], &Command)) {
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        prefix.push(sub.get_name().to_owned());
        visit(prefix, sub);
        walk(sub, prefix, visit);
        prefix.pop();
    }
}

/// One line of a markdown table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn arg_form(arg: &Arg) -> String {
    let values = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
    let takes_value = arg.get_action().takes_values();
    match (arg.get_long(), arg.get_short()) {
        (None, None) => values,
        (long, short) => {
            let mut names = Vec::new();
            if let Some(short) = short {
                names.push(format!("-{short}"));
            }
            if let Some(long) = long {
                names.push(format!("--{long}"));
            }
            if takes_value {
                format!("{} {values}", names.join(", "))
            } else {
                names.join(", ")
            }
        }
    }
}

fn arg_row(arg: &Arg) -> String {
    let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if !choices.is_empty() && arg.get_action().takes_values() {
        let _ = write!(help, " (one of {})", choices.join(", "));
    }
    if arg.is_required_set() {
        help.push_str(" (required)");
    }
    let default = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(", ");
    let env = arg
        .get_env()
        .map(|e| format!("`{}`", e.to_string_lossy()))
        .unwrap_or_default();
    format!(
        "| `{}` | {} | {} | {} |",
        cell(&arg_form(arg)),
        cell(&help),
        default,
        env
    )
}

fn is_builtin(arg: &Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

fn args_table(out: &mut String, args: &[&Arg]) {
    if args.is_empty() {
        return;
    }
    out.push_str("| argument | meaning | default | environment |\n| --- | --- | --- | --- |\n");
    for arg in args {
        out.push_str(&arg_row(arg));
        out.push('\n');
    }
    out.push('\n');
}

/// `cli.md` for the binary `bin` whose clap tree is `command`.
pub fn render(bin: &str, command: Command, regenerate: &str) -> String {
    let mut root = command.bin_name(bin);
    root.build();
    let mut out = format!(
        "# `{bin}` command reference\n\n\
         <!-- Generated from the clap definition by `{regenerate}`; do not edit. -->\n\n"
    );
    if let Some(about) = root.get_about() {
        let _ = writeln!(out, "{about}\n");
    }
    out.push_str("## Commands\n\n");
    for path in command_paths(&root) {
        let depth = path.len() - 1;
        let _ = writeln!(
            out,
            "{}- [`{bin} {}`](#{})",
            "  ".repeat(depth),
            path.join(" "),
            anchor(bin, &path)
        );
    }
    out.push_str("\n## Options every command takes\n\n");
    let globals: Vec<&Arg> = root
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !is_builtin(a))
        .collect();
    args_table(&mut out, &globals);
    let mut sections = Vec::new();
    walk(&root, &mut Vec::new(), &mut |path, sub| {
        let mut section = format!("## `{bin} {}`\n\n", path.join(" "));
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            let _ = writeln!(section, "{about}\n");
        }
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ").trim();
        let _ = writeln!(section, "```text\n{usage}\n```\n");
        let own: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set() && !is_builtin(a))
            .collect();
        args_table(&mut section, &own);
        sections.push(section);
    });
    for section in sections {
        out.push_str(&section);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The anchor GitHub gives the heading of a command's section.
fn anchor(bin: &str, path: &[String]) -> String {
    format!("{bin} {}", path.join(" "))
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Command {
        Command::new("demo")
            .arg(Arg::new("api").long("api").global(true).default_value("x"))
            .subcommand(
                Command::new("node")
                    .about("Manage nodes")
                    .subcommand(
                        Command::new("add")
                            .about("Add")
                            .arg(Arg::new("ids").required(true)),
                    )
                    .subcommand(Command::new("secret").hide(true)),
            )
            .subcommand(Command::new("endpoints"))
    }

    #[test]
    fn paths_list_parents_and_leaves_without_hidden_ones() {
        let mut command = tree();
        command.build();
        let paths: Vec<String> = command_paths(&command)
            .iter()
            .map(|p| p.join(" "))
            .collect();
        assert_eq!(paths, ["node", "node add", "endpoints"]);
    }

    #[test]
    fn reference_has_a_section_per_command_and_globals_once() {
        let text = render("demo", tree(), "regen");
        assert!(text.contains("## `demo node add`"), "{text}");
        assert!(text.contains("demo node add [OPTIONS] <ids>"), "{text}");
        assert!(text.contains("[`demo node add`](#demo-node-add)"), "{text}");
        assert_eq!(text.matches("`--api <API>`").count(), 1, "{text}");
        assert!(text.contains("regen"));
    }
}
