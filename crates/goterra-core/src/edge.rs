//! Rules applied at the HTTP edge of every service, before any handler runs, so that no route
//! can forget them and both database engines see the same input:
//! - **one text rule**: NUL and other control characters are refused with 400 in the path, the
//!   query and every string (and key) of a JSON body; only newline, carriage return and tab
//!   are allowed (scripts, descriptions and store values are multi-line text);
//! - **request size limits** answered in the JSON error shape: a URI longer than
//!   [`MAX_URI_BYTES`] is 414, more than [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] of
//!   them is 431;
//! - **every error is JSON** ([`json_error_bodies`], around the whole router): an error answer
//!   produced by the framework (405, 413, 404 of an unknown route, a path that is not
//!   UTF-8...) gets the `{"message"}` body its status deserves; headers such as `Allow` are
//!   kept.
//!
//! Deploy's agent routes are exempt from the body rule: they carry Terraform's own output and
//! state, stored verbatim (and only run agents may call them).

use crate::error::{ApiError, ErrorBody};
use crate::http::HealthOnly;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest request target (path and query) served.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most request headers served.
pub const MAX_HEADERS: usize = 100;
/// Largest total size of the request headers (names and values).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Largest error body rewritten into the JSON shape (framework messages are short).
const MAX_ERROR_TEXT: usize = 1024;
/// Routes whose bodies are machine output kept verbatim (see the module documentation).
const VERBATIM_BODY_PREFIXES: &[&str] = &["/deploy/agent/"];

/// Whether a character may appear in text received by the platform.
pub fn is_allowed_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\r' | '\t')
}

/// The text rule for one value: 400 naming `field` when it holds a forbidden character.
pub fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().all(is_allowed_char) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field}: NUL and control characters are not allowed"
        )))
    }
}

/// The middleware of the edge rules (install with `axum::middleware::from_fn_with_state`
/// and the body size limit). It wraps the body limit layer, whose refusals it makes JSON, and
/// so applies the same limit itself when it reads a body.
pub async fn edge_rules(State(body_limit): State<usize>, request: Request, next: Next) -> Response {
    if request.extensions().get::<HealthOnly>().is_some() {
        return health_only(request, next).await;
    }
    match check_request(request, body_limit).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

/// The middleware that gives every error answer a JSON body. It wraps the whole router (see
/// [`crate::http::serve_with`]), so that it also sees the answers axum makes outside the
/// routes' layers (405 with its `Allow` header, 404 of unknown routes).
pub async fn json_error_bodies(request: Request, next: Next) -> Response {
    json_errors(next.run(request).await).await
}

/// A connection in the room kept for health checks: `GET /<service>` is answered, anything
/// else is 503; the connection closes after the answer.
async fn health_only(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_health = request.method() == Method::GET && path.len() > 1 && !path[1..].contains('/');
    let mut response = if is_health {
        next.run(request).await
    } else {
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections: try again shortly",
        )
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if !is_health {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn check_request(request: Request, body_limit: usize) -> Result<Request, Response> {
    let uri_len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(error_response(
            StatusCode::URI_TOO_LONG,
            &format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Err(error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("at most {MAX_HEADERS} request headers and {MAX_HEADER_BYTES} bytes of them"),
        ));
    }
    let path = percent_decode(request.uri().path())
        .ok_or_else(|| ApiError::bad_request("path: not valid UTF-8 once percent-decoded").into_response())?;
    check_text("path", &path).map_err(IntoResponse::into_response)?;
    if let Some(query) = request.uri().query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            check_text("query", &name).map_err(IntoResponse::into_response)?;
            check_text(&name, &value).map_err(IntoResponse::into_response)?;
        }
    }
    for (name, value) in request.headers() {
        // Header values are bytes; those that are text follow the rule (X-API-NS, ...).
        if let Ok(text) = value.to_str() {
            check_text(name.as_str(), text).map_err(IntoResponse::into_response)?;
        }
    }
    if !may_carry_json(&request) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, body_limit).await.map_err(|err| {
        if is_length_limit(&err) {
            ApiError::too_large("request body too large").into_response()
        } else {
            ApiError::bad_request("cannot read the request body").into_response()
        }
    })?;
    check_json_text(&bytes).map_err(IntoResponse::into_response)?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn may_carry_json(request: &Request) -> bool {
    let path = request.uri().path();
    !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !VERBATIM_BODY_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The text rule over a JSON body. Bodies that are not JSON are left to their handler.
fn check_json_text(bytes: &Bytes) -> Result<(), ApiError> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match first_bad_string(&value, &mut String::new()) {
        Some(field) => check_text(if field.is_empty() { "body" } else { &field }, "\0"),
        None => Ok(()),
    }
}

/// The dotted path of the first string or key breaking the rule.
fn first_bad_string(value: &serde_json::Value, path: &mut String) -> Option<String> {
    let bad = |text: &str| !text.chars().all(is_allowed_char);
    match value {
        serde_json::Value::String(text) if bad(text) => Some(path.clone()),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            let before = path.len();
            path.push_str(&format!("[{index}]"));
            let found = first_bad_string(item, path);
            path.truncate(before);
            found
        }),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            let before = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            // A bad key is reported without its characters.
            path.push_str(if bad(key) { "<key>" } else { key });
            let found = if bad(key) {
                Some(path.clone())
            } else {
                first_bad_string(item, path)
            };
            path.truncate(before);
            found
        }),
        _ => None,
    }
}

/// `%XX` sequences decoded; `None` when the result is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Some(value) = std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(value);
            index += 3;
            continue;
        }
        decoded.push(byte);
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            message: message.to_string(),
        }),
    )
        .into_response()
}

/// Whether an error answer is one the framework made (no body type, or plain text such as an
/// extractor's rejection), as opposed to a document a handler chose to answer with: JSON, or
/// the web UI's HTML error and login pages, which must reach the browser as they are.
fn is_framework_text(response: &Response) -> bool {
    match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .is_ok_and(|value| value.trim_start().to_ascii_lowercase().starts_with("text/plain")),
    }
}

/// An error answer the framework made gets a JSON body: its text when it has a short one,
/// else the status's reason (with the allowed methods for 405). Answers a handler typed
/// itself (JSON, HTML pages) are left alone.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_framework_text(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let message = match (text, status) {
        (Some(text), _) => text,
        (None, StatusCode::METHOD_NOT_ALLOWED) => {
            match parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()) {
                Some(allowed) => format!("{reason}: this route accepts {allowed}"),
                None => reason,
            }
        }
        (None, _) => reason,
    };
    let body = serde_json::to_vec(&ErrorBody { message }).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_rule() {
        for good in ["plain", "two\nlines\r\n", "tab\there", "accents é ü 中文", ""] {
            assert!(check_text("f", good).is_ok(), "{good:?}");
        }
        for bad in ["ad\0min", "bell\u{7}", "esc\u{1b}[0m", "del\u{7f}", "c1\u{85}"] {
            assert!(matches!(check_text("f", bad), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn json_bodies_are_walked_to_the_bad_field() {
        let body = Bytes::from_static(br#"{"name":"ok","inputs":{"a":"x","b":["y","z\u0000"]}}"#);
        match check_json_text(&body) {
            Err(ApiError::BadRequest(message)) => assert!(message.starts_with("inputs.b[1]:"), "{message}"),
            other => panic!("{other:?}"),
        }
        let key = Bytes::from_static(br#"{"a\u0001":"x"}"#);
        assert!(check_json_text(&key).is_err());
        assert!(check_json_text(&Bytes::from_static(br#"{"script":"line\nline\t"}"#)).is_ok());
        // Not JSON: the handler decides.
        assert!(check_json_text(&Bytes::from_static(b"{not json")).is_ok());
    }

    async fn rewritten(content_type: Option<&'static str>, body: &'static str) -> (String, String) {
        let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
        match content_type {
            Some(value) => {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            }
            None => {
                response.headers_mut().remove(header::CONTENT_TYPE);
            }
        }
        let response = json_errors(response).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn framework_errors_become_json_and_pages_stay_pages() {
        let (kind, body) = rewritten(Some("text/plain; charset=utf-8"), "Failed to parse the request body").await;
        assert_eq!(kind, "application/json");
        assert_eq!(body, r#"{"message":"Failed to parse the request body"}"#);
        let (kind, body) = rewritten(None, "").await;
        assert_eq!(kind, "application/json");
        assert_eq!(body, r#"{"message":"unauthorized"}"#);
        // A page far longer than the rewritten texts (the UI's login page after a bad
        // password) keeps its type and every byte.
        let page: &'static str =
            Box::leak(format!("<!DOCTYPE html><p class=\"error\">Wrong</p>{}", " ".repeat(4096)).into_boxed_str());
        let (kind, body) = rewritten(Some("text/html; charset=utf-8"), page).await;
        assert_eq!(kind, "text/html; charset=utf-8");
        assert_eq!(body, page);
        let (kind, body) = rewritten(Some("application/json"), r#"{"message":"no"}"#).await;
        assert_eq!(
            (kind.as_str(), body.as_str()),
            ("application/json", r#"{"message":"no"}"#)
        );
    }

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(percent_decode("/deploy/ns/%41b").as_deref(), Some("/deploy/ns/Ab"));
        assert_eq!(percent_decode("/a/%00").as_deref(), Some("/a/\0"));
        assert_eq!(percent_decode("/a/%ff"), None);
        assert_eq!(percent_decode("/a/%zz%").as_deref(), Some("/a/%zz%"));
    }
}
