//! Input rules shared by every catalogue object: bounded names, identifiers, platform-reserved
//! variable names. Every failure is a 400 whose message names the field.

use goterra_core::ApiError;
use std::collections::BTreeMap;

pub const MAX_NAME: usize = 128;
pub const MAX_TEXT: usize = 4096;
pub const MAX_LIST: usize = 256;
pub const MAX_IDENTIFIER: usize = 64;
/// Scripts and Terraform files.
pub const MAX_DOCUMENT: usize = 1024 * 1024;

pub fn bad(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{field}: {problem}"))
}

/// A display name: non-empty after trimming, bounded, no control characters. Returns it trimmed.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_NAME {
        return Err(bad(field, format!("must be at most {MAX_NAME} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(bad(field, "must not contain control characters"));
    }
    Ok(trimmed.to_string())
}

/// Lengths count characters, as the OpenAPI document's `maxLength` does.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(bad(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

pub fn list_len<T>(field: &str, list: &[T]) -> Result<(), ApiError> {
    if list.len() > MAX_LIST {
        return Err(bad(field, format!("at most {MAX_LIST} entries")));
    }
    Ok(())
}

pub fn short_strings(field: &str, list: &[String]) -> Result<(), ApiError> {
    list_len(field, list)?;
    for value in list {
        text(field, value, MAX_TEXT)?;
    }
    Ok(())
}

/// A Terraform/shell variable name: `[A-Za-z_][A-Za-z0-9_]*`, bounded.
pub fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && value.len() <= MAX_IDENTIFIER
}

pub fn identifier(field: &str, value: &str) -> Result<(), ApiError> {
    if is_identifier(value) {
        Ok(())
    } else {
        Err(bad(
            field,
            format!(
                "'{}' is not an identifier ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_IDENTIFIER} characters)",
                shorten(value)
            ),
        ))
    }
}

/// Why an input name is reserved by the platform, if it is. `recipe_vars` are the template's
/// recipe variables, which the platform fills with recipe ids.
pub fn reserved_input(name: &str, recipe_vars: &[String]) -> Option<&'static str> {
    if name.starts_with("goterra_") {
        Some("goterra_* variables are set by the platform")
    } else if name.starts_with("feature_") {
        Some("feature_* variables come from the endpoint's features")
    } else if matches!(name, "image_id" | "user_name" | "password") {
        Some("it is set by the platform (image, endpoint credentials)")
    } else if recipe_vars.iter().any(|var| var == name) {
        Some("it is one of the template's recipe variables")
    } else {
        None
    }
}

/// Names a template may not declare as Terraform variables: the platform declares them.
pub fn reserved_declaration(name: &str, recipe_vars: &[String]) -> Option<&'static str> {
    if name == "ssh_pub_key" {
        return Some("it is set by the platform (the user's SSH key)");
    }
    reserved_input(name, recipe_vars)
}

/// Keys of an `inputs`-like map: identifiers, not reserved, bounded labels.
pub fn input_names<V>(field: &str, map: &BTreeMap<String, V>, recipe_vars: &[String]) -> Result<(), ApiError> {
    if map.len() > MAX_LIST {
        return Err(bad(field, format!("at most {MAX_LIST} entries")));
    }
    for key in map.keys() {
        identifier(field, key)?;
        if let Some(reason) = reserved_input(key, recipe_vars) {
            return Err(bad(field, format!("'{key}' is reserved: {reason}")));
        }
    }
    Ok(())
}

pub fn labels(field: &str, map: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for value in map.values() {
        text(field, value, MAX_TEXT)?;
    }
    Ok(())
}

pub fn defaults(field: &str, map: &BTreeMap<String, Vec<String>>, recipe_vars: &[String]) -> Result<(), ApiError> {
    input_names(field, map, recipe_vars)?;
    for values in map.values() {
        short_strings(field, values)?;
    }
    Ok(())
}

/// A value quoted into a message, cut so that a huge input does not make a huge answer.
pub fn shorten(value: &str) -> String {
    if value.chars().count() <= 64 {
        value.to_string()
    } else {
        format!("{}…", value.chars().take(64).collect::<String>())
    }
}

/// A message cut to a readable length.
pub fn shorten_message(message: &str) -> String {
    if message.chars().count() <= 200 {
        message.to_string()
    } else {
        format!("{}…", message.chars().take(200).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for good in ["a", "_x", "tenant_name", "A1"] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a b", "é", "a\"", &"x".repeat(65)] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn reserved_names() {
        let vars = vec!["recipes_vm".to_string()];
        for name in [
            "goterra_url",
            "feature_ip",
            "image_id",
            "user_name",
            "password",
            "recipes_vm",
        ] {
            assert!(reserved_input(name, &vars).is_some(), "{name}");
        }
        assert!(reserved_input("ssh_pub_key", &vars).is_none());
        assert!(reserved_declaration("ssh_pub_key", &vars).is_some());
        assert!(reserved_input("tenant_name", &vars).is_none());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  a ").unwrap(), "a");
        assert!(name("name", "  ").is_err());
        assert!(name("name", &"x".repeat(129)).is_err());
        assert!(name("name", "a\nb").is_err());
    }
}
