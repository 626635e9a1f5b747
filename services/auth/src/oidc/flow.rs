//! The sign-in flow's browser binding: `state`, `nonce`, the PKCE verifier and the redirect
//! URI, encrypted (fernet) in a short-lived `HttpOnly` cookie. Nothing is kept in server
//! memory, so any replica finishes a flow any other started; a callback without the cookie
//! of the browser that started the flow, or with another `state`, is refused.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use goterra_core::Sensitive;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FLOW_COOKIE: &str = "goterra_oidc";
/// How long a user has to sign in at the provider.
pub const FLOW_SECS: u64 = 600;
/// Separates these keys from the token and UI session keys derived from the same secrets.
const KEY_PURPOSE: &[u8] = b"goterra/auth/oidc-flow/v1";

/// One sign-in (or identity-linking) flow in progress.
#[derive(Serialize, Deserialize)]
pub struct Flow {
    #[serde(rename = "p")]
    pub provider: String,
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "n")]
    pub nonce: String,
    /// The PKCE code verifier; the provider only saw its S256 challenge.
    #[serde(rename = "v")]
    pub verifier: String,
    #[serde(rename = "r")]
    pub redirect_uri: String,
    /// Set when a signed-in user links this identity to their account.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub link_uid: Option<String>,
}

impl Flow {
    pub fn new(provider: &str, redirect_uri: String, link_uid: Option<String>) -> Self {
        Self {
            provider: provider.to_string(),
            state: random_text(),
            nonce: random_text(),
            verifier: random_text(),
            redirect_uri,
            link_uid,
        }
    }

    /// The PKCE S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// 256 random bits, URL-safe (also a valid 43-character PKCE verifier).
fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub struct FlowCodec {
    keys: Vec<fernet::Fernet>,
    secure: bool,
}

impl FlowCodec {
    /// Keys derived from the token secrets: the first encrypts, all decrypt.
    pub fn new(secrets: &[Sensitive<String>], secure: bool) -> anyhow::Result<Self> {
        let mut keys = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
                .map_err(|_| anyhow::anyhow!("cannot derive the sign-in flow key"))?;
            mac.update(KEY_PURPOSE);
            let key = base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes());
            keys.push(fernet::Fernet::new(&key).ok_or_else(|| anyhow::anyhow!("cannot derive the sign-in flow key"))?);
        }
        if keys.is_empty() {
            anyhow::bail!(
                "no token secret configured (set GOT_SECRET): single sign-on encrypts its flow cookie with it"
            );
        }
        Ok(Self { keys, secure })
    }

    /// The `Set-Cookie` value that carries `flow` to the callback.
    pub fn start(&self, flow: &Flow) -> HeaderValue {
        let sealed = self.keys[0].encrypt(&serde_json::to_vec(flow).unwrap_or_default());
        self.cookie(&sealed, FLOW_SECS)
    }

    /// The `Set-Cookie` value that ends the flow: a callback works once per browser.
    pub fn end(&self) -> HeaderValue {
        self.cookie("", 0)
    }

    /// The flow of this request's cookie, when it decrypts and is younger than [`FLOW_SECS`].
    pub fn read(&self, headers: &HeaderMap) -> Option<Flow> {
        let sealed = goterra_core::cookies::read(headers, FLOW_COOKIE)?;
        let plain = self
            .keys
            .iter()
            .find_map(|key| key.decrypt_with_ttl(sealed, FLOW_SECS).ok())?;
        serde_json::from_slice(&plain).ok()
    }

    fn cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        // Path=/ : the callback is auth's (`/auth/...`) or the web UI's (`/app/...`).
        goterra_core::cookies::set(FLOW_COOKIE, value, "/", max_age, self.secure)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::header;

    fn codec(secret: &str) -> FlowCodec {
        FlowCodec::new(&[Sensitive::new(secret.to_string())], false).unwrap()
    }

    fn request_with(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        headers
    }

    #[test]
    fn a_flow_round_trips_only_with_the_same_secret() {
        let flow = Flow::new("lab", "http://x/cb".into(), None);
        let set = codec("secret-one-0123456789").start(&flow);
        let back = codec("secret-one-0123456789").read(&request_with(&set)).unwrap();
        assert_eq!(back.state, flow.state);
        assert_eq!(back.verifier, flow.verifier);
        assert!(codec("secret-two-0123456789").read(&request_with(&set)).is_none());
        assert!(codec("secret-one-0123456789").read(&HeaderMap::new()).is_none());
    }

    #[test]
    fn values_are_random_and_the_challenge_is_s256() {
        let flow = Flow::new("lab", String::new(), None);
        assert_ne!(flow.state, flow.nonce);
        assert_eq!(flow.verifier.len(), 43);
        // RFC 7636 appendix B.
        let known = Flow {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..Flow::new("lab", String::new(), None)
        };
        assert_eq!(known.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
