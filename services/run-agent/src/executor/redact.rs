//! Replaces secret values in Terraform's output with `***`.

use goterra_core::runs::RunSpec;

pub const MASK: &str = "***";

/// Pieces of a multi-line secret shorter than this are not redacted on their own: a line of
/// a certificate is worth hiding, a lone `}` is not.
const MIN_PIECE: usize = 4;

/// Knows every secret value of a run and hides each whole occurrence of one in a line.
pub struct Redactor {
    /// Longest first, so a secret containing another is hidden whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        for value in values {
            if value.is_empty() {
                continue;
            }
            // Output is handled line by line, so a multi-line secret is hidden line by line.
            if value.contains('\n') {
                for piece in value.lines().map(str::trim) {
                    if piece.len() >= MIN_PIECE {
                        secrets.push(piece.to_string());
                    }
                }
            }
            secrets.push(value);
        }
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Every sensitive variable and the state credential of the spec.
    pub fn for_spec(spec: &RunSpec) -> Self {
        let values = spec
            .sensitive
            .values()
            .map(|value| value.expose().clone())
            .chain(std::iter::once(spec.state.password.expose().clone()));
        Self::new(values)
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }

    /// Redacts every string inside a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => *text = self.redact(text),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|item| self.redact_json(item)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|item| self.redact_json(item)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_values_are_hidden_longest_first() {
        let redactor = Redactor::new(["abc".to_string(), "xxabcxx".to_string(), String::new()]);
        assert_eq!(redactor.redact("a xxabcxx b abc c"), "a *** b *** c");
        assert_eq!(redactor.redact("nothing here"), "nothing here");
    }

    #[test]
    fn lines_of_a_multiline_secret_are_hidden() {
        let redactor = Redactor::new(["-----BEGIN KEY-----\nMIIEsecretbody\n}\n".to_string()]);
        assert_eq!(redactor.redact("key line: MIIEsecretbody"), "key line: ***");
        assert_eq!(redactor.redact("}"), "}");
    }
}
