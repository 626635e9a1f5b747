//! Sessions: the user's API token, encrypted (fernet) in an `HttpOnly; SameSite=Lax` cookie.
//!
//! No session lives in server memory, so any replica serves any request. The cookie holds the
//! token auth issued at login (never the API key nor the password), the identity to draw the
//! navigation, a CSRF token and the time of login. A session ends with the token's lifetime;
//! an expired or rejected one sends the browser back to the login page with a message.

use crate::Ui;
use crate::error::PageError;
use crate::pages::SignedIn;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use goterra_core::token::unix_now;
use goterra_core::{Config, Sensitive};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;

pub const SESSION_COOKIE: &str = "goterra_session";
/// A one-off message for the next page (after a redirect).
pub const FLASH_COOKIE: &str = "goterra_flash";
/// The CSRF token of the login form, before any session exists.
pub const LOGIN_COOKIE: &str = "goterra_login";
/// The form field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";
/// Session lifetime when user tokens never expire (`GOT_TOKEN_TTL <= 0`).
const DEFAULT_SESSION_SECS: u64 = 12 * 3600;
const FLASH_SECS: u64 = 120;
/// Separates the cookie keys from the token keys derived from the same secrets.
const KEY_PURPOSE: &[u8] = b"goterra/ui/session/v1";

/// A signed-in user, as the cookie holds it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "t")]
    token: String,
    #[serde(rename = "u")]
    pub uid: String,
    #[serde(rename = "a")]
    pub admin: bool,
    #[serde(rename = "c")]
    csrf: String,
    /// Unix seconds of the login.
    #[serde(rename = "i")]
    issued: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(token: Sensitive<String>, uid: String, admin: bool) -> Self {
        Self::new_at(token, uid, admin, unix_now())
    }

    pub fn new_at(token: Sensitive<String>, uid: String, admin: bool, issued: u64) -> Self {
        Self {
            token: token.into_inner(),
            uid,
            admin,
            csrf: random_token(),
            issued,
        }
    }

    /// The bearer token for API calls.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The value the session's forms carry in their `csrf` field.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    fn csrf_matches(&self, sent: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), sent.as_bytes())
    }
}

/// Why there is no usable session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, or one that does not decrypt: plain login page.
    Missing,
    /// A valid cookie past its lifetime: login page with "your session has expired".
    Expired,
}

/// Encrypts and decrypts the cookies with keys derived from the token secrets (the first
/// encrypts, all decrypt, so rotating `GOT_SECRET` keeps sessions).
pub struct SessionCodec {
    keys: Vec<fernet::Fernet>,
    ttl_secs: u64,
    secure: bool,
}

impl SessionCodec {
    pub fn new(config: &Config, secure: bool) -> anyhow::Result<Self> {
        let mut keys = Vec::with_capacity(config.fernet.len());
        for secret in &config.fernet {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
                .map_err(|_| anyhow::anyhow!("cannot derive the session key"))?;
            mac.update(KEY_PURPOSE);
            use base64::Engine;
            let key = base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes());
            keys.push(fernet::Fernet::new(&key).ok_or_else(|| anyhow::anyhow!("cannot derive the session key"))?);
        }
        if keys.is_empty() {
            anyhow::bail!("no token secret configured (set GOT_SECRET): the UI encrypts its sessions with it");
        }
        let ttl_secs = u64::try_from(config.token_ttl)
            .ok()
            .filter(|hours| *hours > 0)
            .map_or(DEFAULT_SESSION_SECS, |hours| hours.saturating_mul(3600));
        Ok(Self { keys, ttl_secs, secure })
    }

    fn seal(&self, plain: &[u8]) -> String {
        self.keys[0].encrypt(plain)
    }

    fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        self.keys.iter().find_map(|key| key.decrypt(sealed).ok())
    }

    /// Encrypts a value a form carries from one step to the next (a run request between the
    /// wizard and its confirmation), so its secrets never appear in the page.
    pub fn seal_json<T: Serialize>(&self, value: &T) -> String {
        self.seal(&serde_json::to_vec(value).unwrap_or_default())
    }

    /// The value of [`Self::seal_json`], when it is younger than `max_age_secs`.
    pub fn open_json<T: DeserializeOwned>(&self, sealed: &str, max_age_secs: u64) -> Option<T> {
        let plain = self
            .keys
            .iter()
            .find_map(|key| key.decrypt_with_ttl(sealed, max_age_secs).ok())?;
        serde_json::from_slice(&plain).ok()
    }

    /// The `Set-Cookie` value that starts `session`.
    pub fn start(&self, session: &Session) -> HeaderValue {
        let payload = serde_json::to_vec(session).unwrap_or_default();
        self.cookie(SESSION_COOKIE, &self.seal(&payload), self.ttl_secs)
    }

    /// The `Set-Cookie` value that ends the session.
    pub fn end(&self) -> HeaderValue {
        self.cookie(SESSION_COOKIE, "", 0)
    }

    pub fn read(&self, headers: &HeaderMap) -> Result<Session, NoSession> {
        self.read_at(headers, unix_now())
    }

    pub fn read_at(&self, headers: &HeaderMap, now: u64) -> Result<Session, NoSession> {
        let sealed = cookie(headers, SESSION_COOKIE).ok_or(NoSession::Missing)?;
        let plain = self.open(sealed).ok_or(NoSession::Missing)?;
        let session: Session = serde_json::from_slice(&plain).map_err(|_| NoSession::Missing)?;
        if session.issued.saturating_add(self.ttl_secs) < now {
            return Err(NoSession::Expired);
        }
        Ok(session)
    }

    /// A message shown once on the next page.
    pub fn flash(&self, message: &str) -> HeaderValue {
        self.cookie(FLASH_COOKIE, &self.seal(message.as_bytes()), FLASH_SECS)
    }

    /// The pending message, if any (the caller clears it with [`Self::clear_flash`]).
    pub fn take_flash(&self, headers: &HeaderMap) -> Option<String> {
        let sealed = cookie(headers, FLASH_COOKIE)?;
        let plain = self.open(sealed)?;
        String::from_utf8(plain).ok()
    }

    pub fn clear_flash(&self) -> HeaderValue {
        self.cookie(FLASH_COOKIE, "", 0)
    }

    /// A fresh CSRF token for the login form and its cookie.
    pub fn login_csrf(&self) -> (String, HeaderValue) {
        let token = random_token();
        let cookie = self.cookie(LOGIN_COOKIE, &token, 3600);
        (token, cookie)
    }

    pub fn login_csrf_matches(&self, headers: &HeaderMap, sent: &str) -> bool {
        cookie(headers, LOGIN_COOKIE).is_some_and(|expected| constant_time_eq(expected.as_bytes(), sent.as_bytes()))
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        goterra_core::cookies::set(name, value, crate::PREFIX, max_age, self.secure)
    }
}

pub use goterra_core::cookies::read as cookie;

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Pages that need a signed-in user take a [`Session`]; without one the browser goes to the
/// login page (with a message when the session expired).
impl FromRequestParts<Ui> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        match ui.sessions.read(&parts.headers) {
            Ok(session) => Ok(session),
            Err(NoSession::Expired) => Err(PageError::SessionExpired),
            Err(NoSession::Missing) => Err(PageError::SignInFirst),
        }
    }
}

/// A state-changing form: the signed-in user, and the form's fields once its CSRF token matched
/// the session's. Every POST handler takes one, so none can forget the check.
pub struct Posted<T> {
    pub me: SignedIn,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Ui> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, ui: &Ui) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let me = SignedIn::from_request_parts(&mut parts, ui).await?;
        let bytes = axum::body::to_bytes(body, crate::pages::MAX_FORM_BYTES)
            .await
            .map_err(|_| PageError::BadRequest("the form is too large".into()))?;
        let fields: HashMap<String, String> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        let sent = fields.get(CSRF_FIELD).map(String::as_str).unwrap_or_default();
        if !me.session.csrf_matches(sent) {
            return Err(PageError::Csrf);
        }
        let form = serde_urlencoded_form(&bytes)?;
        Ok(Self { me, form })
    }
}

/// Decodes a form body into `T`, repeated fields included (`name=a&name=b` into a `Vec`).
pub fn serde_urlencoded_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PageError> {
    let mut object = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(bytes).into_owned() {
        match object.get_mut(&name) {
            Some(serde_json::Value::Array(values)) => values.push(value.into()),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, value.into()]);
            }
            None => {
                object.insert(name, value.into());
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|err| PageError::BadRequest(format!("the form is not valid: {err}")))
}
