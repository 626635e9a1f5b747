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
        }
    }

    /// `GET /app/config`, with the original's keys.
    pub fn public_config(&self) -> PublicConfig {
        PublicConfig {
            url: self.public_url.clone(),
            acl_user_createns: self.allow_user_create_ns,
            // The auth service has no identity-provider login (yet): no OIDC button may lead
            // to a route that does not exist.
            oidc_google: false,
            oidc_aai: false,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PublicConfig {
    pub url: String,
    pub acl_user_createns: bool,
    pub oidc_google: bool,
    pub oidc_aai: bool,
}
