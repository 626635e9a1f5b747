//! `docs/cli.md`, generated from the clap definitions: every command's `--help`. The test
//! fails when the checked-in file is stale; `GOT_UPDATE_DOCS=1 cargo test -p goterra-cli docs`
//! rewrites it.

use clap::Command;

const PREAMBLE: &str = "# `goterra-cli` command reference\n\n\
Generated from the command definitions (`services/cli/src/workstation/commands.rs`) by\n\
`GOT_UPDATE_DOCS=1 cargo test -p goterra-cli docs`; do not edit by hand. A guide with examples\n\
is in the README (section *Command line*); the differences from the original CLI are in\n\
`docs/compat/cli.md`.\n\n\
## JSON output\n\n\
`--output json` (and `yaml`) prints the API's own objects, with the field names of the HTTP API\n\
(`docs/deploy.md`, `openapi/*.json`): a list command prints an array of objects, a `show` command\n\
one object. `run show` prints `{\"run\": <run>, \"recipes\": {<store key>: <status>}}`, `run start`\n\
prints `{\"run\": <id>, \"namespace\": <id>}`, `catalog import|lint` print an array of\n\
`{\"kind\", \"item\", \"result\", \"id\"?, \"reason\"?}`. These shapes only gain fields.\n\n\
## Exit codes\n\n\
| Code | Meaning |\n|---|---|\n\
| 0 | done |\n\
| 1 | refused by the server (its message is printed), a run that failed, a timeout |\n\
| 2 | usage error: bad arguments, unreadable or invalid files |\n\
| 3 | authentication: no API key, or a wrong or expired one |\n\
| 4 | the server cannot be reached |\n";

/// The whole reference: the preamble, then one section per command, depth first.
pub fn markdown(root: &Command) -> String {
    let mut text = String::from(PREAMBLE);
    let mut root = without_env_values(root.clone()).term_width(100);
    root.build();
    section(&mut text, &root, &[]);
    text
}

/// Help shows `[env: GOT_URL=<value>]` when a variable is set: the reference must not depend on
/// the environment it was generated in.
fn without_env_values(command: Command) -> Command {
    command
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(without_env_values)
}

fn section(text: &mut String, command: &Command, parents: &[&str]) {
    let mut path: Vec<&str> = parents.to_vec();
    path.push(command.get_name());
    let title = path.join(" ");
    text.push_str(&format!("\n## `{title}`\n\n```text\n"));
    let help = command.clone().render_long_help().to_string();
    for line in help.lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.push_str("```\n");
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        section(text, sub, &path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docs_cli_md_is_current() {
        let generated = markdown(&<crate::Cli as clap::CommandFactory>::command());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
        if std::env::var("GOT_UPDATE_DOCS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            stored == generated,
            "docs/cli.md is stale: run `GOT_UPDATE_DOCS=1 cargo test -p goterra-cli docs` and commit it"
        );
    }
}
