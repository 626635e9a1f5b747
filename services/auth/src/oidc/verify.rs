//! ID-token verification: the signature against the provider's published keys (RS256 or
//! ES256 only: `none`, HS* and every other algorithm are refused), then `iss`, `aud`/`azp`,
//! `exp`/`iat` with a small leeway, and the `nonce` this browser's flow was started with.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock difference tolerated between Goterra and the provider.
pub const LEEWAY_SECS: u64 = 60;
const ALLOWED: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token's algorithm is not accepted (RS256 or ES256 only)")]
    Algorithm,
    /// No published key has the token's `kid`: the caller refreshes the keys once and retries.
    #[error("the ID token is signed by an unknown key")]
    UnknownKey,
    #[error("the ID token's {0} is not valid")]
    Invalid(&'static str),
}

/// What a verified ID token says about the user.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub subject: String,
    pub issuer: String,
    /// Every claim, for the provider's uid and groups settings.
    pub claims: Map<String, Value>,
}

impl VerifiedToken {
    /// The email when the provider vouches for it (`email_verified` true, as a boolean or the
    /// string some providers send); unverified emails are never used.
    pub fn verified_email(&self) -> Option<&str> {
        let verified = match self.claims.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            Some(Value::String(text)) => text == "true",
            _ => false,
        };
        self.claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|email| verified && !email.is_empty())
    }

    /// A claim as text: strings as they are, numbers printed.
    pub fn claim_text(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    /// A claim holding a list of values (or a single one).
    pub fn claim_values(&self, name: &str) -> Vec<String> {
        match self.claims.get(name) {
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => Vec::new(),
        }
    }
}

/// What an ID token of one provider must satisfy.
pub struct Expected<'a> {
    pub issuers: &'a [String],
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: u64,
}

/// Verifies `token` against `keys` (the provider's JWKS).
pub fn verify(token: &str, keys: &[Jwk], expected: &Expected<'_>) -> Result<VerifiedToken, VerifyError> {
    // `alg: none` and unknown algorithms fail here already: jsonwebtoken has no such variant.
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if !ALLOWED.contains(&header.alg) {
        return Err(VerifyError::Algorithm);
    }
    let jwk = pick_key(keys, header.kid.as_deref(), header.alg)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| VerifyError::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECS;
    validation.set_audience(&[expected.client_id]);
    validation.set_issuer(expected.issuers);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    // `exp` is checked against jsonwebtoken's clock; `iat` and the nonce below against ours.
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::InvalidSignature => VerifyError::Invalid("signature"),
            ErrorKind::ExpiredSignature => VerifyError::Invalid("expiry (exp)"),
            ErrorKind::ImmatureSignature => VerifyError::Invalid("not-before time (nbf)"),
            ErrorKind::InvalidAudience => VerifyError::Invalid("audience (aud)"),
            ErrorKind::InvalidIssuer => VerifyError::Invalid("issuer (iss)"),
            ErrorKind::MissingRequiredClaim(_) => VerifyError::Invalid("set of claims"),
            ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
            _ => VerifyError::Malformed,
        }
    })?;
    let claims = data.claims;
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(VerifyError::Invalid("issue time (iat)"))?;
    if issued_at > expected.now.saturating_add(LEEWAY_SECS) {
        return Err(VerifyError::Invalid("issue time (iat)"));
    }
    let expires = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(VerifyError::Invalid("expiry (exp)"))?;
    if expires.saturating_add(LEEWAY_SECS) < expected.now {
        return Err(VerifyError::Invalid("expiry (exp)"));
    }
    // With several audiences, the token must have been issued to us (OIDC Core 3.1.3.7).
    let audiences = claims.get("aud").map_or(0, |aud| aud.as_array().map_or(1, Vec::len));
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(VerifyError::Invalid("authorized party (azp)")),
        None if audiences > 1 => return Err(VerifyError::Invalid("authorized party (azp)")),
        _ => {}
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
    if nonce.is_empty() || !constant_time_eq(nonce.as_bytes(), expected.nonce.as_bytes()) {
        return Err(VerifyError::Invalid("nonce"));
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| !sub.is_empty() && sub.len() <= 255)
        .ok_or(VerifyError::Invalid("subject (sub)"))?
        .to_string();
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(VerifiedToken {
        subject,
        issuer,
        claims,
    })
}

/// The signing key for `kid` and `alg`: asymmetric keys meant for signatures only, so that a
/// symmetric (`oct`) entry of a JWKS can never verify anything.
fn pick_key<'a>(keys: &'a [Jwk], kid: Option<&str>, alg: Algorithm) -> Result<&'a Jwk, VerifyError> {
    let usable = |jwk: &&Jwk| {
        let family_fits = matches!(
            (&jwk.algorithm, alg),
            (AlgorithmParameters::RSA(_), Algorithm::RS256) | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
        );
        let for_signing = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
        family_fits && for_signing
    };
    let mut candidates = keys
        .iter()
        .filter(usable)
        .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid);
    let first = candidates.next().ok_or(VerifyError::UnknownKey)?;
    // Without a `kid`, only an unambiguous key set is acceptable.
    if kid.is_none() && candidates.next().is_some() {
        return Err(VerifyError::UnknownKey);
    }
    Ok(first)
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a JWKS document, keeping the keys jsonwebtoken understands (one odd key must not
/// make the provider unusable).
pub fn parse_jwks(document: &Value) -> Vec<Jwk> {
    document
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const CLIENT: &str = "goterra";
    const ISSUER: &str = "https://id.example.org";

    /// jsonwebtoken checks `exp` against the system clock, so test claims follow it too.
    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn keys(name: &str) -> Vec<Jwk> {
        let text = match name {
            "rsa-a" => include_str!("testdata/rsa-a.jwks.json"),
            "rsa-b" => include_str!("testdata/rsa-b.jwks.json"),
            _ => include_str!("testdata/ec.jwks.json"),
        };
        parse_jwks(&serde_json::from_str(text).unwrap())
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": CLIENT, "sub": "user-1", "iat": now() - 10, "exp": now() + 300,
               "nonce": "n-123", "email": "ada@example.org", "email_verified": true})
    }

    fn sign(alg: Algorithm, kid: &str, claims: &Value) -> String {
        let key = match kid {
            "rsa-a" => EncodingKey::from_rsa_pem(include_bytes!("testdata/rsa_a.pem")).unwrap(),
            "rsa-b" => EncodingKey::from_rsa_pem(include_bytes!("testdata/rsa_b.pem")).unwrap(),
            _ => EncodingKey::from_ec_pem(include_bytes!("testdata/ec.pem")).unwrap(),
        };
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn check(token: &str, keys: &[Jwk]) -> Result<VerifiedToken, VerifyError> {
        let issuers = [ISSUER.to_string()];
        let expected = Expected {
            issuers: &issuers,
            client_id: CLIENT,
            nonce: "n-123",
            now: now(),
        };
        verify(token, keys, &expected)
    }

    fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut value = claims();
        change(value.as_object_mut().unwrap());
        value
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn valid_rs256_and_es256_tokens_pass() {
        let token = check(&sign(Algorithm::RS256, "rsa-a", &claims()), &keys("rsa-a")).unwrap();
        assert_eq!(token.subject, "user-1");
        assert_eq!(token.issuer, ISSUER);
        assert_eq!(token.verified_email(), Some("ada@example.org"));
        let token = check(&sign(Algorithm::ES256, "ec", &claims()), &keys("ec")).unwrap();
        assert_eq!(token.subject, "user-1");
    }

    #[test]
    fn another_audience_issuer_or_nonce_is_refused() {
        let rsa = keys("rsa-a");
        let aud = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("aud".into(), json!("someone-else"));
            }),
        );
        assert_eq!(check(&aud, &rsa).unwrap_err(), VerifyError::Invalid("audience (aud)"));
        let iss = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("iss".into(), json!("https://evil.example.org"));
            }),
        );
        assert_eq!(check(&iss, &rsa).unwrap_err(), VerifyError::Invalid("issuer (iss)"));
        let nonce = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("nonce".into(), json!("replayed"));
            }),
        );
        assert_eq!(check(&nonce, &rsa).unwrap_err(), VerifyError::Invalid("nonce"));
        let no_nonce = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.remove("nonce");
            }),
        );
        assert_eq!(check(&no_nonce, &rsa).unwrap_err(), VerifyError::Invalid("nonce"));
        let azp = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("aud".into(), json!([CLIENT, "other"]));
            }),
        );
        assert_eq!(
            check(&azp, &rsa).unwrap_err(),
            VerifyError::Invalid("authorized party (azp)")
        );
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let rsa = keys("rsa-a");
        let real_now = now();
        let expired = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("iat".into(), json!(real_now - 3600));
                c.insert("exp".into(), json!(real_now - 600));
            }),
        );
        let issuers = [ISSUER.to_string()];
        let expected = Expected {
            issuers: &issuers,
            client_id: CLIENT,
            nonce: "n-123",
            now: real_now,
        };
        assert_eq!(
            verify(&expired, &rsa, &expected).unwrap_err(),
            VerifyError::Invalid("expiry (exp)")
        );
        // Within the leeway it still passes.
        let just_expired = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("iat".into(), json!(real_now - 600));
                c.insert("exp".into(), json!(real_now - 5));
            }),
        );
        assert!(verify(&just_expired, &rsa, &expected).is_ok());
        let future = sign(
            Algorithm::RS256,
            "rsa-a",
            &with(|c| {
                c.insert("iat".into(), json!(now() + 3600));
                c.insert("exp".into(), json!(now() + 7200));
            }),
        );
        assert_eq!(
            check(&future, &rsa).unwrap_err(),
            VerifyError::Invalid("issue time (iat)")
        );
    }

    #[test]
    fn another_key_is_refused() {
        // Signed by key b but claiming key a's kid: the signature does not verify.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-a".into());
        let key = EncodingKey::from_rsa_pem(include_bytes!("testdata/rsa_b.pem")).unwrap();
        let forged = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert_eq!(
            check(&forged, &keys("rsa-a")).unwrap_err(),
            VerifyError::Invalid("signature")
        );
        // Signed by key b under its own kid: not a published key.
        let unknown = sign(Algorithm::RS256, "rsa-b", &claims());
        assert_eq!(check(&unknown, &keys("rsa-a")).unwrap_err(), VerifyError::UnknownKey);
        // An RS256 header on an EC key set finds no key either.
        assert_eq!(
            check(&sign(Algorithm::RS256, "rsa-a", &claims()), &keys("ec")).unwrap_err(),
            VerifyError::UnknownKey
        );
    }

    #[test]
    fn none_and_hmac_algorithms_are_refused() {
        let payload = b64(claims().to_string().as_bytes());
        let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(check(&none, &keys("rsa-a")).unwrap_err(), VerifyError::Malformed);
        // HS256 keyed with the RSA public key's bytes: the classic key-confusion attack.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-a".into());
        let hs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"public-key-bytes")).unwrap();
        assert_eq!(check(&hs, &keys("rsa-a")).unwrap_err(), VerifyError::Algorithm);
        // A symmetric key published in the JWKS never verifies anything.
        let oct: Vec<Jwk> =
            parse_jwks(&json!({"keys": [{"kty": "oct", "kid": "rsa-a", "k": b64(b"public-key-bytes")}]}));
        assert_eq!(
            check(&sign(Algorithm::RS256, "rsa-a", &claims()), &oct).unwrap_err(),
            VerifyError::UnknownKey
        );
    }

    #[test]
    fn unverified_emails_are_not_used() {
        let rsa = keys("rsa-a");
        let token = check(
            &sign(
                Algorithm::RS256,
                "rsa-a",
                &with(|c| {
                    c.insert("email_verified".into(), json!(false));
                }),
            ),
            &rsa,
        )
        .unwrap();
        assert_eq!(token.verified_email(), None);
        let token = check(
            &sign(
                Algorithm::RS256,
                "rsa-a",
                &with(|c| {
                    c.insert("email_verified".into(), json!("true"));
                    c.insert("groups".into(), json!(["a", "b"]));
                }),
            ),
            &rsa,
        )
        .unwrap();
        assert_eq!(token.verified_email(), Some("ada@example.org"));
        assert_eq!(token.claim_values("groups"), ["a", "b"]);
    }
}
