//! Single sign-on settings: the OpenID Connect providers users may log in with (`oidc.<name>`
//! in `goterra.yml`, and the original's `GOOGLE_OAUTH2_*` / `AAI_OAUTH2_*` variables).
//!
//! Auth uses them for the login flow; the UI only needs the names and display names for its
//! buttons, so both read the same section.

use crate::sensitive::Sensitive;
use anyhow::bail;
use serde::Deserialize;

pub const GOOGLE: &str = "google";
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const AAI: &str = "aai";
pub const AAI_ISSUER: &str = "https://login.elixir-czech.org/oidc/";

/// One OpenID Connect provider. A provider without a client id is off.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// The issuer URL; `{issuer}/.well-known/openid-configuration` is its discovery document.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Sensitive<String>>,
    /// Scopes asked for (default `openid email profile`); `openid` is always added.
    pub scopes: Option<Vec<String>>,
    /// The button text ("Sign in with …"); default the provider's name.
    pub display_name: Option<String>,
    /// The ID-token claim that becomes the uid of an account created at first login: `sub`
    /// (stable, opaque; the default) or `email` (only when the provider says it is verified).
    pub uid_claim: Option<String>,
    /// When not empty, only verified emails of these domains may log in.
    pub allowed_email_domains: Vec<String>,
    /// The ID-token claim holding the user's groups (a string or a list of strings).
    pub groups_claim: Option<String>,
    /// When not empty, only users with one of these values in `groups_claim` may log in.
    pub allowed_groups: Vec<String>,
    /// Whether a first login creates an account; when false, only identities already linked
    /// to an account (from its profile) may log in.
    pub create_users: bool,
}

impl Default for OidcProviderConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            scopes: None,
            display_name: None,
            uid_claim: None,
            allowed_email_domains: Vec::new(),
            groups_claim: None,
            allowed_groups: Vec::new(),
            create_users: true,
        }
    }
}

impl OidcProviderConfig {
    /// Google: the verified email is the uid, as in the original.
    pub fn google(client_id: String, client_secret: Option<Sensitive<String>>) -> Self {
        Self {
            issuer: GOOGLE_ISSUER.into(),
            client_id,
            client_secret,
            scopes: Some(vec!["openid".into(), "email".into(), "profile".into()]),
            display_name: Some("Google".into()),
            uid_claim: Some("email".into()),
            ..Self::default()
        }
    }

    /// ELIXIR AAI: the `sub` is the uid, as in the original.
    pub fn aai(client_id: String, client_secret: Option<Sensitive<String>>) -> Self {
        Self {
            issuer: AAI_ISSUER.into(),
            client_id,
            client_secret,
            scopes: Some(vec!["openid".into(), "email".into()]),
            display_name: Some("ELIXIR AAI".into()),
            uid_claim: Some("sub".into()),
            ..Self::default()
        }
    }

    /// Fills what the file left unset from a built-in provider's settings (`oidc.google` in a
    /// file needs no issuer).
    pub fn with_defaults_of(mut self, builtin: OidcProviderConfig) -> Self {
        if self.issuer.is_empty() {
            self.issuer = builtin.issuer;
        }
        if self.client_id.is_empty() {
            self.client_id = builtin.client_id;
        }
        self.client_secret = self.client_secret.or(builtin.client_secret);
        self.scopes = self.scopes.or(builtin.scopes);
        self.display_name = self.display_name.or(builtin.display_name);
        self.uid_claim = self.uid_claim.or(builtin.uid_claim);
        self
    }

    /// The claim that becomes the uid of a new account.
    pub fn uid_claim(&self) -> &str {
        self.uid_claim.as_deref().unwrap_or("sub")
    }

    pub fn is_enabled(&self) -> bool {
        !self.client_id.is_empty()
    }

    pub fn display_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.display_name.as_deref().filter(|d| !d.is_empty()).unwrap_or(name)
    }

    /// The scopes to ask for, `openid` first and once.
    pub fn scope(&self) -> String {
        let mut scopes = vec!["openid"];
        match &self.scopes {
            Some(asked) => scopes.extend(
                asked
                    .iter()
                    .map(String::as_str)
                    .filter(|s| *s != "openid" && !s.is_empty()),
            ),
            None => scopes.extend(["email", "profile"]),
        }
        scopes.join(" ")
    }

    /// Other spellings of the issuer that ID tokens may carry (Google's tokens may say
    /// `accounts.google.com` without the scheme).
    pub fn issuer_aliases(&self) -> Vec<String> {
        let mut issuers = vec![self.issuer.clone()];
        if self.issuer.trim_end_matches('/') == GOOGLE_ISSUER {
            issuers.push("accounts.google.com".into());
        }
        issuers
    }

    pub(crate) fn validate(&self, name: &str) -> anyhow::Result<()> {
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            bail!("oidc.{name}: provider names are 1 to 32 characters of a-z, 0-9, '-', '_'");
        }
        if !self.is_enabled() {
            return Ok(());
        }
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            bail!("oidc.{name}.issuer: an http(s) URL is required");
        }
        if self.uid_claim().trim().is_empty() {
            bail!("oidc.{name}.uid_claim: must name a claim (sub or email)");
        }
        if !self.allowed_groups.is_empty() && self.groups_claim.as_deref().is_none_or(str::is_empty) {
            bail!("oidc.{name}.allowed_groups: set groups_claim too");
        }
        Ok(())
    }
}

/// A client id or secret from the environment; empty, or the two quote characters the
/// original compose file left in (`""`), means unset.
pub fn env_value(value: Option<String>) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| trimmed.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(trimmed);
    (!unquoted.is_empty()).then(|| unquoted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_quoted_empty_values_are_unset() {
        assert_eq!(env_value(None), None);
        assert_eq!(env_value(Some(String::new())), None);
        assert_eq!(env_value(Some("\"\"".into())), None);
        assert_eq!(env_value(Some(" '' ".into())), None);
        assert_eq!(env_value(Some("abc".into())).as_deref(), Some("abc"));
        assert_eq!(env_value(Some("\"abc\"".into())).as_deref(), Some("abc"));
    }

    #[test]
    fn scope_starts_with_openid_once() {
        let mut provider = OidcProviderConfig::google("id".into(), None);
        assert_eq!(provider.scope(), "openid email profile");
        provider.scopes = Some(vec!["email".into(), "openid".into(), "groups".into()]);
        assert_eq!(provider.scope(), "openid email groups");
    }

    #[test]
    fn names_and_issuers_are_checked() {
        let provider = OidcProviderConfig::aai("id".into(), None);
        assert!(provider.validate("aai").is_ok());
        assert!(provider.validate("Bad Name").is_err());
        let no_issuer = OidcProviderConfig {
            client_id: "id".into(),
            ..OidcProviderConfig::default()
        };
        assert!(no_issuer.validate("x").is_err());
        // Off providers need nothing else.
        assert!(OidcProviderConfig::default().validate("off").is_ok());
    }
}
