//! Fernet tokens compatible with the original services.
//!
//! Key derivation is the original's: the 32-byte fernet key is HMAC-SHA256(secret, empty
//! message). Several secrets may be configured: the first signs, all verify (rotation).
//! The payload is a JSON object of identity claims only, never an API key or a password hash.
//! A `scope` claim separates user tokens from store tokens scoped to one deployment; tokens of
//! the original services carry no scope and are user tokens.

use crate::fernet_codec::{self, FernetKey};
use crate::identity::Identity;
use crate::sensitive::Sensitive;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

/// Tokens stamped further in the future than this are refused (clock skew allowance).
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// Longer strings are not even decoded: no valid token comes near this size.
const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// A user's session token, accepted by every service.
    User,
    /// A token that reads and writes one store deployment and nothing else.
    Store,
    /// A run agent's service credential: fetches run specs and reports results to deploy.
    Agent,
    /// Another Goterra service asking one on its own behalf (acct reading run resources from
    /// deploy, a service asking auth for users' status), minted from the shared secret:
    /// accepted only by routes that take a [`crate::auth::ServiceCaller`], never as a user or
    /// an agent.
    Service,
}

/// The token payload. Field names follow the original user JSON so that old verifiers read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub logged: bool,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default, rename = "super")]
    pub super_user: bool,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub kind: String,
    /// Absent in tokens of the original services, which are user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<TokenScope>,
    /// The store deployment a store token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Absolute expiry (unix seconds) of store tokens, which outlive the user-token TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
}

impl Claims {
    pub fn for_user(identity: &Identity) -> Self {
        Self {
            logged: true,
            uid: identity.uid.clone(),
            admin: identity.admin,
            super_user: identity.super_user,
            email: identity.email.clone(),
            kind: identity.kind.clone(),
            scope: Some(TokenScope::User),
            deployment: None,
            exp: None,
        }
    }

    /// A token for one store deployment, carrying only the owner's uid (for auditing).
    pub fn for_store(uid: &str, deployment: &str, expires_at: u64) -> Self {
        Self {
            logged: true,
            uid: uid.to_string(),
            admin: false,
            super_user: false,
            email: String::new(),
            kind: String::new(),
            scope: Some(TokenScope::Store),
            deployment: Some(deployment.to_string()),
            exp: Some(expires_at),
        }
    }

    /// The credential of a run agent (`uid` names the agent), valid until `expires_at`.
    pub fn for_agent(agent: &str, expires_at: u64) -> Self {
        Self {
            logged: true,
            uid: agent.to_string(),
            admin: false,
            super_user: false,
            email: String::new(),
            kind: String::new(),
            scope: Some(TokenScope::Agent),
            deployment: None,
            exp: Some(expires_at),
        }
    }

    /// The credential of a platform service (`uid` names it, e.g. `acct`), valid until
    /// `expires_at`.
    pub fn for_service(service: &str, expires_at: u64) -> Self {
        Self {
            scope: Some(TokenScope::Service),
            ..Self::for_agent(service, expires_at)
        }
    }

    pub fn scope(&self) -> TokenScope {
        self.scope.unwrap_or(TokenScope::User)
    }

    pub fn identity(&self) -> Identity {
        Identity {
            uid: self.uid.clone(),
            admin: self.admin,
            super_user: self.super_user,
            email: self.email.clone(),
            kind: self.kind.clone(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
}

/// Encodes and verifies tokens with the configured secrets.
pub struct TokenCodec {
    signer: FernetKey,
    verifiers: Vec<FernetKey>,
    /// `None` means tokens never expire (the original's `GOT_TOKEN_TTL <= 0`).
    ttl_secs: Option<u64>,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCodec")
            .field("secrets", &self.verifiers.len())
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

/// The fernet key (URL-safe base64) that the original derives from a secret string.
pub fn fernet_key_for_secret(secret: &str) -> Sensitive<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(b"");
    Sensitive::new(URL_SAFE.encode(mac.finalize().into_bytes()))
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

impl TokenCodec {
    /// `ttl_hours <= 0` disables expiry of user tokens, as in the original.
    pub fn new(secrets: &[Sensitive<String>], ttl_hours: i64) -> anyhow::Result<Self> {
        let mut verifiers = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let key = fernet_key_for_secret(secret.expose());
            let fernet = FernetKey::new(key.expose())
                .ok_or_else(|| anyhow::anyhow!("cannot derive a fernet key from a secret"))?;
            verifiers.push(fernet);
        }
        let signer = verifiers
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no token secret configured (set GOT_SECRET)"))?;
        let ttl_secs = u64::try_from(ttl_hours)
            .ok()
            .filter(|hours| *hours > 0)
            .map(|hours| hours.saturating_mul(3600));
        Ok(Self {
            signer,
            verifiers,
            ttl_secs,
        })
    }

    pub fn user_ttl_secs(&self) -> Option<u64> {
        self.ttl_secs
    }

    pub fn issue(&self, claims: &Claims) -> String {
        self.issue_at(claims, unix_now())
    }

    pub fn issue_at(&self, claims: &Claims, now: u64) -> String {
        let payload = serde_json::to_vec(claims).unwrap_or_else(|_| unreachable!("claims always serialize"));
        self.signer.seal(&payload, now)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, unix_now())
    }

    /// The claims and the issue time (unix seconds) of a valid token.
    pub fn verify_issued(&self, token: &str) -> Result<(Claims, u64), TokenError> {
        self.verify_issued_at(token, unix_now())
    }

    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        self.verify_issued_at(token, now).map(|(claims, _)| claims)
    }

    fn verify_issued_at(&self, token: &str, now: u64) -> Result<(Claims, u64), TokenError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        // Read the timestamp first so that absurd values are refused before any other work.
        let issued_at = FernetKey::issued_at(token).ok_or(TokenError::Invalid)?;
        if issued_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(TokenError::Invalid);
        }
        let mut decoded = fernet_codec::decode(token).ok_or(TokenError::Invalid)?;
        let opened = self
            .verifiers
            .iter()
            .find_map(|key| key.open_decoded(&mut decoded))
            .ok_or(TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&opened.plaintext).map_err(|_| TokenError::Invalid)?;
        match claims.scope() {
            TokenScope::User => {
                if let Some(ttl) = self.ttl_secs
                    && issued_at.saturating_add(ttl) < now
                {
                    return Err(TokenError::Expired);
                }
            }
            TokenScope::Store | TokenScope::Agent | TokenScope::Service => {
                let expires_at = claims.exp.ok_or(TokenError::Invalid)?;
                if claims.scope() == TokenScope::Store && claims.deployment.as_deref().is_none_or(str::is_empty) {
                    return Err(TokenError::Invalid);
                }
                if expires_at < now {
                    return Err(TokenError::Expired);
                }
            }
        }
        Ok((claims, issued_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(secrets: &[&str], ttl_hours: i64) -> TokenCodec {
        let secrets: Vec<_> = secrets.iter().map(|s| Sensitive::new(s.to_string())).collect();
        TokenCodec::new(&secrets, ttl_hours).unwrap()
    }

    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/fernet-tokens.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn alice() -> Identity {
        Identity {
            uid: "alice".into(),
            admin: false,
            super_user: false,
            email: "alice@example.org".into(),
            kind: String::new(),
        }
    }

    #[test]
    fn key_derivation_matches_the_original() {
        let fixture = fixture();
        let key = fernet_key_for_secret(fixture["secret"].as_str().unwrap());
        assert_eq!(key.expose(), fixture["fernet_key"].as_str().unwrap());
    }

    #[test]
    fn original_tokens_decode_at_their_time() {
        let fixture = fixture();
        let codec = codec(&[fixture["secret"].as_str().unwrap()], 24);
        let issued = fixture["issued_at_unix"].as_u64().unwrap();
        for entry in fixture["tokens"].as_array().unwrap() {
            let claims = codec.verify_at(entry["token"].as_str().unwrap(), issued + 10).unwrap();
            assert_eq!(claims.uid, entry["payload"]["uid"].as_str().unwrap());
            assert_eq!(claims.admin, entry["payload"]["admin"].as_bool().unwrap());
            assert_eq!(claims.email, entry["payload"]["email"].as_str().unwrap());
            assert_eq!(claims.scope(), TokenScope::User);
        }
    }

    #[test]
    fn original_tokens_expire_after_the_ttl_and_never_without_one() {
        let fixture = fixture();
        let secret = fixture["secret"].as_str().unwrap();
        let issued = fixture["issued_at_unix"].as_u64().unwrap();
        let token = fixture["tokens"][0]["token"].as_str().unwrap();
        let later = issued + 25 * 3600;
        assert_eq!(codec(&[secret], 24).verify_at(token, later), Err(TokenError::Expired));
        assert!(codec(&[secret], 0).verify_at(token, later).is_ok());
    }

    #[test]
    fn wrong_secret_is_refused() {
        let fixture = fixture();
        let codec = codec(&[fixture["wrong_secret_must_fail"].as_str().unwrap()], 24);
        let issued = fixture["issued_at_unix"].as_u64().unwrap();
        let token = fixture["tokens"][0]["token"].as_str().unwrap();
        assert_eq!(codec.verify_at(token, issued), Err(TokenError::Invalid));
    }

    #[test]
    fn rotation_first_secret_signs_all_verify() {
        let old = codec(&["old-secret-0123456789"], 24);
        let rotated = codec(&["new-secret-0123456789", "old-secret-0123456789"], 24);
        let old_token = old.issue(&Claims::for_user(&alice()));
        assert_eq!(rotated.verify(&old_token).unwrap().uid, "alice");
        let new_token = rotated.issue(&Claims::for_user(&alice()));
        assert_eq!(old.verify(&new_token), Err(TokenError::Invalid));
    }

    #[test]
    fn tokens_from_the_future_are_refused() {
        let codec = codec(&["secret-0123456789"], 24);
        let now = unix_now();
        let token = codec.issue_at(&Claims::for_user(&alice()), now + 3600);
        assert_eq!(codec.verify_at(&token, now), Err(TokenError::Invalid));
        let token = codec.issue_at(&Claims::for_user(&alice()), now + 30);
        assert!(codec.verify_at(&token, now).is_ok());
    }

    #[test]
    fn payload_never_holds_secrets() {
        let codec = codec(&["secret-0123456789"], 24);
        let token = codec.issue(&Claims::for_user(&alice()));
        let key = fernet::Fernet::new(fernet_key_for_secret("secret-0123456789").expose()).unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&key.decrypt(&token).unwrap()).unwrap();
        let object = payload.as_object().unwrap();
        assert!(!object.contains_key("apikey"));
        assert!(!object.contains_key("password"));
        assert_eq!(object["scope"], "user");
    }

    #[test]
    fn store_tokens_carry_their_own_expiry() {
        let codec = codec(&["secret-0123456789"], 24);
        let now = unix_now();
        let token = codec.issue_at(&Claims::for_store("alice", "dep1", now + 100), now);
        let claims = codec.verify_at(&token, now + 50).unwrap();
        assert_eq!(claims.scope(), TokenScope::Store);
        assert_eq!(claims.deployment.as_deref(), Some("dep1"));
        assert_eq!(codec.verify_at(&token, now + 101), Err(TokenError::Expired));
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        let codec = codec(&["secret-0123456789"], 24);
        for garbage in [
            "",
            "gAAAAA",
            "gA==",
            "not a token",
            "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "////",
        ] {
            assert_eq!(codec.verify(garbage), Err(TokenError::Invalid), "{garbage}");
        }
        let huge = "g".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(codec.verify(&huge), Err(TokenError::Invalid));
    }
}
