//! What the UI takes from the platform configuration.

use goterra_core::Config;
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the UI calls the REST API: `GOT_PROXY` when the services sit behind a proxy,
    /// else the platform's public URL (the listen address itself in `goterra up`).
    pub api_base: String,
    /// The public URL users and VMs see (`GOT_URL`).
    pub public_url: String,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    pub allow_user_create_ns: bool,
    /// The single sign-on providers that are on, for the login buttons.
    pub sso_providers: Vec<SsoProvider>,
}

/// A login button: `/auth/oidc/{name}`.
#[derive(Clone, Debug, Serialize)]
pub struct SsoProvider {
    pub name: String,
    pub display_name: String,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        let public_url = config.public_url();
        let api_base = config
            .proxy
            .as_deref()
            .map(|proxy| proxy.trim_end_matches('/').to_string())
            .unwrap_or_else(|| public_url.clone());
        Self {
            secure_cookies: public_url.starts_with("https://"),
            api_base,
            public_url,
            allow_user_create_ns: config.acl.allow_user_create_ns,
            sso_providers: config
                .oidc_providers()
                .map(|(name, provider)| SsoProvider {
                    name: name.to_string(),
                    display_name: provider.display_name(name).to_string(),
                })
                .collect(),
        }
    }

    fn has_provider(&self, name: &str) -> bool {
        self.sso_providers.iter().any(|provider| provider.name == name)
    }

    /// `GET /app/config`, with the original's keys.
    pub fn public_config(&self) -> PublicConfig {
        PublicConfig {
            url: self.public_url.clone(),
            acl_user_createns: self.allow_user_create_ns,
            oidc_google: self.has_provider(goterra_core::sso::GOOGLE),
            oidc_aai: self.has_provider(goterra_core::sso::AAI),
            oidc: self.sso_providers.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PublicConfig {
    pub url: String,
    pub acl_user_createns: bool,
    pub oidc_google: bool,
    pub oidc_aai: bool,
    /// Every provider that is on (the original's two keys only tell about google and aai).
    pub oidc: Vec<SsoProvider>,
}
