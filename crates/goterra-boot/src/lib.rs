//! Boot scripts for Goterra VMs.
//!
//! For each recipe variable of a template, deploy renders one bash script that a VM runs at boot:
//! it installs the curl-based `goterra-cli` ([`SHELL_CLI`]), exports the run inputs with safe
//! quoting, installs the SSH key, reports `status_app_<name>_<host>` (`start`, `over`, `failed`),
//! `ts_start_*`, `ts_end_*` and the log tail (`_log_app_*`) to the store, and runs each recipe once,
//! ancestors first. The deployment-scoped store token is the only credential it holds.

use goterra_core::Sensitive;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// The in-VM store client as a bash script (bash, curl and coreutils only).
pub const SHELL_CLI: &str = include_str!("goterra-cli.sh");

/// Where scripts keep the client, recipes and logs unless `GOT_HOME` is set when they run.
pub const DEFAULT_GOT_HOME: &str = "/opt/got";

/// One recipe to run, with its script as stored.
#[derive(Clone, Debug)]
pub struct Recipe {
    pub id: String,
    pub name: String,
    pub script: String,
}

/// Everything a boot script needs.
pub struct BootScript<'a> {
    /// Application id (`GOT_ID`).
    pub app_id: &'a str,
    /// Name of this group of VMs (`GOT_NAME`), e.g. `cluster-master`.
    pub name: &'a str,
    /// Base URL of the platform, as the VMs reach it (`GOT_URL`).
    pub store_url: &'a str,
    /// Store deployment id (`GOT_DEP`).
    pub deployment: &'a str,
    /// Deployment-scoped store token (`GOT_TOKEN`).
    pub token: &'a Sensitive<String>,
    /// Recipes in execution order (see [`order_with_ancestors`]).
    pub recipes: &'a [Recipe],
    /// Run inputs, exported as environment variables.
    pub inputs: &'a BTreeMap<String, String>,
    pub ssh_pub_key: Option<&'a str>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BootError {
    #[error("input name {0:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")]
    InputName(String),
    #[error("recipe {0:?} is its own ancestor")]
    Cycle(String),
    #[error("recipe {0:?} does not exist")]
    UnknownRecipe(String),
}

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Quotes a value for bash so that nothing in it is expanded or executed.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Orders `ids` so that every recipe comes after its ancestors (root first), each recipe once.
/// `parent_of` answers `Ok(None)` for a root, `Err` for an unknown id.
pub fn order_with_ancestors(
    ids: &[String],
    parent_of: impl Fn(&str) -> Result<Option<String>, BootError>,
) -> Result<Vec<String>, BootError> {
    let mut ordered = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        let mut chain = vec![id.clone()];
        let mut current = id.clone();
        while let Some(parent) = parent_of(&current)? {
            if chain.contains(&parent) {
                return Err(BootError::Cycle(parent));
            }
            chain.push(parent.clone());
            current = parent;
        }
        for recipe in chain.into_iter().rev() {
            if seen.insert(recipe.clone()) {
                ordered.push(recipe);
            }
        }
    }
    Ok(ordered)
}

/// Replaces the original placeholders in a recipe, as the original provider did.
fn substitute(script: &str, spec: &BootScript<'_>) -> String {
    script
        .replace("${GOT_ID}", spec.app_id)
        .replace("${GOT_URL}", spec.store_url)
        .replace("${GOT_TOKEN}", spec.token.expose())
        .replace("${GOT_DEP}", spec.deployment)
        .replace("${GOT_NAME}", spec.name)
}

/// A here-document delimiter that does not occur as a line of `body`.
fn delimiter_for(body: &str, tag: &str) -> String {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    let mut delimiter = format!("GOTERRA_{tag}_{}", &digest[..16]);
    while body.lines().any(|line| line == delimiter) {
        delimiter.push('X');
    }
    delimiter
}

fn heredoc(out: &mut String, target: &str, body: &str, tag: &str) {
    let delimiter = delimiter_for(body, tag);
    let _ = writeln!(out, "cat > {target} <<'{delimiter}'");
    out.push_str(body);
    if !body.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "{delimiter}");
}

/// Renders the boot script.
pub fn render(spec: &BootScript<'_>) -> Result<String, BootError> {
    if let Some(name) = spec.inputs.keys().find(|name| !is_identifier(name)) {
        return Err(BootError::InputName(name.clone()));
    }
    let mut out = String::new();
    out.push_str("#!/bin/bash\n");
    let _ = writeln!(
        out,
        "# Goterra boot script for {} ({}): runs each recipe once.",
        spec.name, spec.app_id
    );
    out.push_str("set -Eeuo pipefail\numask 022\n");
    let _ = writeln!(out, "export GOT_HOME=\"${{GOT_HOME:-{DEFAULT_GOT_HOME}}}\"");
    let _ = writeln!(out, "export GOT_ID={}", shell_quote(spec.app_id));
    let _ = writeln!(out, "export GOT_NAME={}", shell_quote(spec.name));
    let _ = writeln!(out, "export GOT_URL={}", shell_quote(spec.store_url));
    let _ = writeln!(out, "export GOT_DEPLOYMENT={}", shell_quote(spec.deployment));
    let _ = writeln!(out, "export GOT_DEP=\"$GOT_DEPLOYMENT\"");
    let _ = writeln!(out, "export GOT_TOKEN={}", shell_quote(spec.token.expose()));
    out.push_str(
        r#"export GOT_TRIM=1000000
GOT_HOST=$(hostname 2>/dev/null | tr -c 'A-Za-z0-9_.:@\n-' '_' | head -c 100)
GOT_HOST=${GOT_HOST:-vm}
GOT_LOG="$GOT_HOME/$GOT_ID-$GOT_NAME.log"
mkdir -p "$GOT_HOME"
touch "$GOT_LOG"
"#,
    );
    heredoc(&mut out, "\"$GOT_HOME/goterra-cli\"", SHELL_CLI, "CLI");
    out.push_str(
        r#"chmod 0755 "$GOT_HOME/goterra-cli"
got() { "$GOT_HOME/goterra-cli" "$@"; }
got_report() {
  got put "ts_end_${GOT_NAME}_${GOT_HOST}" "$(date +%s)" || true
  got put "_log_app_${GOT_NAME}_${GOT_HOST}" "@$GOT_LOG" || true
}
got_failed() {
  local status=$?
  trap - ERR
  echo "goterra: boot script failed (exit $status)" >> "$GOT_LOG"
  got put "status_app_${GOT_NAME}_${GOT_HOST}" failed || true
  got_report
  exit "$status"
}
trap got_failed ERR
got_run_recipe() { # id name: the script is on stdin
  local script="$GOT_HOME/_recipe${GOT_ID}_$1.sh"
  if [ -e "$script.done" ]; then echo "goterra: recipe $2 already ran" >> "$GOT_LOG"; return 0; fi
  cat > "$script"
  chmod 0700 "$script"
  echo "goterra: running recipe $2 ($1)" >> "$GOT_LOG"
  (cd "$GOT_HOME" && bash "$script") >> "$GOT_LOG" 2>&1
  touch "$script.done"
}
got_install_ssh_key() {
  local key=$1 home dir
  for home in /root /home/debian /home/ubuntu /home/centos /home/cloud-user /home/ec2-user /home/fedora /home/rocky /home/almalinux; do
    dir="${GOT_SSH_ROOT:-}$home"
    [ -d "$dir" ] || continue
    mkdir -p "$dir/.ssh" && chmod 0700 "$dir/.ssh"
    touch "$dir/.ssh/authorized_keys" && chmod 0600 "$dir/.ssh/authorized_keys"
    grep -qxF "$key" "$dir/.ssh/authorized_keys" || printf '%s\n' "$key" >> "$dir/.ssh/authorized_keys"
    [ "$home" = /root ] || chown -R "$(stat -c %u:%g "$dir")" "$dir/.ssh" 2>/dev/null || true
  done
}
"#,
    );
    out.push_str("# Run inputs: single-quoted, so nothing in them is expanded.\n");
    for (name, value) in spec.inputs {
        let _ = writeln!(out, "export {name}={}", shell_quote(value));
    }
    if let Some(key) = spec.ssh_pub_key.map(str::trim).filter(|key| !key.is_empty()) {
        let _ = writeln!(out, "got_install_ssh_key {}", shell_quote(key));
    }
    out.push_str(
        r#"got put "ts_start_${GOT_NAME}_${GOT_HOST}" "$(date +%s)"
got put "status_app_${GOT_NAME}_${GOT_HOST}" start
"#,
    );
    for recipe in spec.recipes {
        let _ = writeln!(out, "# recipe {} ({})", recipe.name, recipe.id);
        let script = substitute(&recipe.script, spec);
        let delimiter = delimiter_for(&script, "RECIPE");
        let _ = writeln!(
            out,
            "got_run_recipe {} {} <<'{delimiter}'",
            shell_quote(&recipe.id),
            shell_quote(&recipe.name)
        );
        out.push_str(&script);
        if !script.ends_with('\n') {
            out.push('\n');
        }
        let _ = writeln!(out, "{delimiter}");
    }
    out.push_str(
        r#"trap - ERR
got put "status_app_${GOT_NAME}_${GOT_HOST}" over
got_report
"#,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parents(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Result<Option<String>, BootError> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(c, p)| (c.to_string(), p.to_string())).collect();
        move |id: &str| Ok(map.get(id).cloned())
    }

    #[test]
    fn ancestors_come_first_root_first_each_once() {
        let ids = vec!["child".to_string(), "other".to_string(), "parent".to_string()];
        let order = order_with_ancestors(
            &ids,
            parents(&[("child", "parent"), ("parent", "root"), ("other", "root")]),
        )
        .unwrap();
        assert_eq!(order, ["root", "parent", "child", "other"]);
    }

    #[test]
    fn cycles_are_reported() {
        let ids = vec!["a".to_string()];
        assert_eq!(
            order_with_ancestors(&ids, parents(&[("a", "b"), ("b", "a")])),
            Err(BootError::Cycle("a".into()))
        );
    }

    #[test]
    fn quoting_neutralises_everything() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn input_names_must_be_identifiers() {
        let token = Sensitive::new("t".to_string());
        let inputs = BTreeMap::from([("a;b".to_string(), "x".to_string())]);
        let spec = BootScript {
            app_id: "app",
            name: "n",
            store_url: "http://x",
            deployment: "d",
            token: &token,
            recipes: &[],
            inputs: &inputs,
            ssh_pub_key: None,
        };
        assert_eq!(render(&spec), Err(BootError::InputName("a;b".into())));
    }

    #[test]
    fn a_recipe_cannot_end_the_heredoc_early() {
        let body = "echo hi\nGOTERRA_RECIPE_x\n";
        let delimiter = delimiter_for(body, "RECIPE");
        assert!(!body.lines().any(|line| line == delimiter));
    }
}
