//! What a template's Terraform files may contain.
//!
//! - Each file must be valid HCL (a syntax error names its line).
//! - Variables the platform declares and fills (reserved names, the template's recipe variables
//!   and its own inputs) may not be declared again: Terraform would refuse the duplicate.
//! - No `backend` block and no `terraform { cloud {} }`: the platform keeps the state.
//! - `local-exec` provisioners and the `external` data source run commands on the agent's host,
//!   outside any VM: only an admin may write them.

use crate::validate::{bad, reserved_declaration};
use goterra_core::ApiError;
use hcl::{Block, Body};

/// Deepest bracket nesting accepted, checked before parsing so that a hostile file cannot
/// exhaust the parser's stack.
const MAX_NESTING: usize = 64;

/// Checks one file; returns the constructs that need an admin (empty when none).
pub fn check(kind: &str, source: &str, recipe_vars: &[String], inputs: &[String]) -> Result<Vec<String>, ApiError> {
    let field = format!("data.{kind}");
    if nesting(source) > MAX_NESTING {
        return Err(bad(&field, format!("nesting deeper than {MAX_NESTING} levels")));
    }
    let body = hcl::parse(source).map_err(|err| match err {
        hcl::Error::Parse(parse) => bad(
            &field,
            format!(
                "HCL syntax error at line {}, column {}: {}",
                parse.location().line(),
                parse.location().column(),
                parse.message()
            ),
        ),
        other => bad(&field, format!("invalid HCL: {other}")),
    })?;
    let mut admin_only = Vec::new();
    for block in body.blocks() {
        let labels = labels(block);
        match (block.identifier.as_str(), labels.first().copied()) {
            ("variable", Some(name)) => {
                let reason = reserved_declaration(name, recipe_vars).or_else(|| {
                    inputs
                        .iter()
                        .any(|input| input == name)
                        .then_some("it is one of the template's inputs, which the platform declares")
                });
                if let Some(reason) = reason {
                    return Err(bad(
                        &field,
                        format!("variable \"{name}\" must not be declared: {reason}"),
                    ));
                }
            }
            ("terraform", _) if block.body.blocks().any(|inner| inner.identifier.as_str() == "cloud") => {
                return Err(bad(
                    &field,
                    "terraform { cloud } is not allowed: the platform keeps the state",
                ));
            }
            ("data", Some("external")) => admin_only.push("data \"external\"".to_string()),
            _ => {}
        }
        walk(&field, &block.body, &mut admin_only)?;
        if block.identifier.as_str() == "backend" {
            return Err(backend(&field));
        }
    }
    admin_only.dedup();
    Ok(admin_only)
}

fn walk(field: &str, body: &Body, admin_only: &mut Vec<String>) -> Result<(), ApiError> {
    for block in body.blocks() {
        let identifier = block.identifier.as_str();
        if identifier == "backend" {
            return Err(backend(field));
        }
        if identifier == "provisioner" && labels(block).first() == Some(&"local-exec") {
            admin_only.push("provisioner \"local-exec\"".to_string());
        }
        walk(field, &block.body, admin_only)?;
    }
    Ok(())
}

fn backend(field: &str) -> ApiError {
    bad(
        field,
        "backend blocks are not allowed: the platform keeps the Terraform state",
    )
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels.iter().map(|label| label.as_str()).collect()
}

/// Maximum depth of `{ [ (` nesting, counted crudely (strings included): only a guard.
fn nesting(source: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for byte in source.bytes() {
        match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str) -> Result<Vec<String>, ApiError> {
        check(
            "openstack",
            source,
            &["recipes_vm".to_string()],
            &["tenant".to_string()],
        )
    }

    fn message(err: ApiError) -> String {
        err.to_string()
    }

    #[test]
    fn plain_templates_pass() {
        let source = r#"
variable "flavor" { default = "m1.small" }
resource "openstack_compute_instance_v2" "vm" {
  name = "vm-${var.goterra_run}"
  image_id = var.image_id
  user_data = var.goterra_cloudinit["recipes_vm"]
}
output "ip" { value = openstack_compute_instance_v2.vm.access_ip_v4 }
"#;
        assert_eq!(run(source).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = message(run("resource \"a\" \"b\" {\n  x = \n}\n").unwrap_err());
        assert!(err.starts_with("data.openstack: HCL syntax error at line"), "{err}");
    }

    #[test]
    fn reserved_declarations_are_refused() {
        for name in [
            "goterra_url",
            "image_id",
            "feature_ip",
            "user_name",
            "password",
            "ssh_pub_key",
            "recipes_vm",
            "tenant",
        ] {
            let err = message(run(&format!("variable \"{name}\" {{}}\n")).unwrap_err());
            assert!(
                err.contains(&format!("variable \"{name}\" must not be declared")),
                "{err}"
            );
        }
    }

    #[test]
    fn state_location_is_the_platforms() {
        let err = message(run("terraform {\n  backend \"s3\" {}\n}\n").unwrap_err());
        assert!(err.contains("backend blocks are not allowed"), "{err}");
        let err = message(run("terraform {\n  cloud {\n organization = \"x\"\n }\n}\n").unwrap_err());
        assert!(err.contains("cloud"), "{err}");
    }

    #[test]
    fn host_commands_need_an_admin() {
        let source =
            "resource \"null_resource\" \"x\" {\n  provisioner \"local-exec\" {\n    command = \"id\"\n  }\n}\n";
        assert_eq!(run(source).unwrap(), vec!["provisioner \"local-exec\"".to_string()]);
        let source = "data \"external\" \"x\" {\n  program = [\"id\"]\n}\n";
        assert_eq!(run(source).unwrap(), vec!["data \"external\"".to_string()]);
        let source =
            "resource \"null_resource\" \"x\" {\n  provisioner \"remote-exec\" {\n    inline = [\"id\"]\n  }\n}\n";
        assert!(run(source).unwrap().is_empty());
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let source = format!("x = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(message(run(&source).unwrap_err()).contains("nesting"));
    }
}
