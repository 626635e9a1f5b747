//! Cookies the services set for browsers (the web UI's session, auth's single sign-on flow):
//! reading one from a request and writing one, with the same attributes everywhere.

use axum::http::{HeaderMap, HeaderValue, header};

/// The value of cookie `name` in the request's `Cookie` headers (an empty value counts as absent).
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: `HttpOnly` (no script reads it), `SameSite=Lax` (sent on top-level
/// navigations back from an identity provider, not on cross-site posts), `Secure` when asked.
/// Callers give constant names and base64 or hex values; should one not form a valid header
/// value anyway, the cookie is cleared instead.
pub fn set(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("goterra_invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_set_cookie_reads_back() {
        let set = set("goterra_x", "abc", "/app", 60, true);
        assert_eq!(
            set.to_str().unwrap(),
            "goterra_x=abc; Path=/app; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("other=1; goterra_x=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("empty="));
        assert_eq!(read(&headers, "goterra_x"), Some("abc"));
        assert_eq!(read(&headers, "empty"), None);
        assert_eq!(read(&headers, "missing"), None);
    }
}
