//! Rules applied at the HTTP edge of every service, before any handler runs, so that no route
//! can forget them and both database engines see the same input:
//! - **one text rule**: NUL and other control characters are refused with 400 in the path, the
//!   query, text headers and every string (and key) of a JSON body. Newline, carriage return
//!   and tab are allowed only in the fields that are multi-line text by nature
//!   ([`MULTILINE_FIELDS`]: scripts, descriptions, Terraform template bodies, store values,
//!   SSH public keys, passwords and secret inputs); names, ids, uids, emails, kinds, tags and
//!   the like are one line;
//! - **request size limits** answered in the JSON error shape: a URI longer than
//!   [`MAX_URI_BYTES`] is 414, more than [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] of
//!   them is 431;
//! - **whole bodies before any answer**: a request's body is read (up to the body limit) before
//!   it is checked or handed on, so no answer — a refusal included — leaves a body half read,
//!   which would make hyper reset the connection and a proxy in front answer 502; a body
//!   over the limit is refused (at once when declared so) with `Connection: close`;
//! - **every error is JSON** ([`json_error_bodies`], around the whole router): an error answer
//!   produced by the framework (405, 413, 404 of an unknown route, a path that is not
//!   UTF-8...) gets the `{"message"}` body its status deserves; headers such as `Allow` are
//!   kept.
//!
//! Deploy's agent routes are exempt from the body rule: they carry Terraform's own output and
//! state, stored verbatim (and only run agents may call them).

use crate::error::{ApiError, ErrorBody};
use crate::http::HealthOnly;
use axum::body::{Body, Bytes, HttpBody};
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

/// JSON fields (by name, in any case, at any depth) whose strings are multi-line text: a
/// field named here, or any value of a map named in [`MULTILINE_MAPS`], may hold newline,
/// carriage return and tab.
/// - `script`, `description`: recipes' shell scripts; descriptions of everything;
/// - `value`: store values (what VMs exchange: certificates, join commands...);
/// - `pub_key`: a user's SSH public keys, one per line as in `authorized_keys`;
/// - `password`, `current_password`: passwords and endpoint secrets (a cloud credential file
///   may be multi-line); they are hashed or encrypted, never shown.
pub const MULTILINE_FIELDS: &[&str] = &[
    "script",
    "description",
    "value",
    "pub_key",
    "password",
    "current_password",
];
/// JSON maps whose values are multi-line text: `data` (a template's Terraform bodies, per
/// cloud kind) and `secretinputs` (a run's secret inputs, e.g. a key file).
pub const MULTILINE_MAPS: &[&str] = &["data", "secretinputs"];

/// Whether a character may appear in one-line text received by the platform.
pub fn is_allowed_char(c: char) -> bool {
    !c.is_control()
}

/// Whether a character may appear in multi-line text ([`MULTILINE_FIELDS`]).
pub fn is_allowed_multiline_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\r' | '\t')
}

/// The text rule for one one-line value: 400 naming `field` when it holds a control character.
pub fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().all(is_allowed_char) {
        Ok(())
    } else {
        Err(refused(field))
    }
}

fn refused(field: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{field}: NUL and control characters are not allowed (newline and tab only in multi-line text such as scripts and descriptions)"
    ))
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

/// A connection in the room kept for health checks: what a load balancer or a monitor asks —
/// `GET /<service>` (health), `/<service>/ready` (readiness) and `/<service>/metrics` — is
/// answered, anything else is 503; the connection closes after the answer.
async fn health_only(request: Request, next: Next) -> Response {
    let is_health = request.method() == Method::GET && is_health_path(request.uri().path());
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

/// `/<service>`, `/<service>/ready` or `/<service>/metrics`.
fn is_health_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    match rest.split_once('/') {
        None => !rest.is_empty(),
        Some((service, what)) => !service.is_empty() && matches!(what, "ready" | "metrics"),
    }
}

async fn check_request(request: Request, body_limit: usize) -> Result<Request, Response> {
    // The whole body first, also for a request refused below: an answer given while the client
    // is still sending would be followed by hyper closing the connection with the rest of the
    // body unread, which resets it — a proxy in front then loses the answer and says 502.
    let (parts, body) = request.into_parts();
    let bytes = if body.is_end_stream() {
        Bytes::new()
    } else if body.size_hint().lower() > body_limit as u64 {
        // Declared too large: refused before reading.
        return Err(closing(ApiError::too_large("request body too large").into_response()));
    } else {
        axum::body::to_bytes(body, body_limit).await.map_err(|err| {
            closing(if is_length_limit(&err) {
                ApiError::too_large("request body too large").into_response()
            } else {
                ApiError::bad_request("cannot read the request body").into_response()
            })
        })?
    };
    let request = Request::from_parts(parts, Body::from(bytes.clone()));
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
        // Header values are bytes; those that are text follow the rule (X-API-NS, ...), with
        // HTTP's own allowance of tabs as whitespace (CR and LF cannot reach here).
        if let Ok(text) = value.to_str()
            && !text.chars().all(is_allowed_multiline_char)
        {
            return Err(refused(name.as_str()).into_response());
        }
    }
    if may_carry_json(&request) {
        check_json_text(&bytes).map_err(IntoResponse::into_response)?;
    }
    Ok(request)
}

/// An answer given with the request body unread says `Connection: close`. hyper closes such a
/// connection after the answer anyway, but decides so after writing the answer's head; without
/// the header, a proxy in front (Traefik) keeps the connection in its pool — shared by every
/// client — sends the next request on it, meets the closed socket and answers that request 502
/// (it cannot retry a POST).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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
    match first_bad_string(&value, Text::Single, &mut String::new()) {
        Some(field) => Err(refused(if field.is_empty() { "body" } else { &field })),
        None => Ok(()),
    }
}

/// What the strings under a JSON value may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    Single,
    Multi,
    /// A map whose values are multi-line (its keys are one line).
    MultiMap,
}

impl Text {
    /// The rule for the value of field `key` of an object under this rule.
    fn of_field(self, key: &str) -> Text {
        let named = |names: &[&str]| names.iter().any(|name| name.eq_ignore_ascii_case(key));
        if self == Text::MultiMap || named(MULTILINE_FIELDS) {
            Text::Multi
        } else if named(MULTILINE_MAPS) {
            Text::MultiMap
        } else {
            Text::Single
        }
    }

    fn allows(self, text: &str) -> bool {
        match self {
            Text::Multi => text.chars().all(is_allowed_multiline_char),
            Text::Single | Text::MultiMap => text.chars().all(is_allowed_char),
        }
    }
}

/// The dotted path of the first string or key breaking the rule.
fn first_bad_string(value: &serde_json::Value, rule: Text, path: &mut String) -> Option<String> {
    match value {
        serde_json::Value::String(text) if !rule.allows(text) => Some(path.clone()),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            let before = path.len();
            path.push_str(&format!("[{index}]"));
            let found = first_bad_string(item, rule, path);
            path.truncate(before);
            found
        }),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            let before = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            // Keys are one line; a bad key is reported without its characters.
            let bad_key = !Text::Single.allows(key);
            path.push_str(if bad_key { "<key>" } else { key });
            let found = if bad_key {
                Some(path.clone())
            } else {
                first_bad_string(item, rule.of_field(key), path)
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

/// An error answer the framework made, taken apart to be given another body: its parts (status,
/// headers such as `Allow`; the length header removed) and its text when it has a short one.
/// Any other answer comes back unchanged as `Err`. The edge makes JSON of them; the web UI,
/// HTML pages.
pub async fn framework_error(response: Response) -> Result<(axum::http::response::Parts, Option<String>), Response> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_framework_text(&response) {
        return Err(response);
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok((parts, text))
}

/// An error answer the framework made gets a JSON body: its text when it has a short one,
/// else the status's reason (with the allowed methods for 405). Answers a handler typed
/// itself (JSON, HTML pages) are left alone.
async fn json_errors(response: Response) -> Response {
    let (mut parts, text) = match framework_error(response).await {
        Ok(taken_apart) => taken_apart,
        Err(response) => return response,
    };
    let status = parts.status;
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
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

/// The text rule as a JSON Schema pattern, for one-line strings.
pub const ONE_LINE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// The text rule as a JSON Schema pattern, for multi-line strings ([`MULTILINE_FIELDS`]).
pub const MULTI_LINE_PATTERN: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";
/// Name of the schema added to documents for the free-form JSON the edge lets through (extra
/// fields of a body): any JSON whose strings and keys are one line.
pub const JSON_TEXT_SCHEMA: &str = "JsonText";

/// Writes the text rule into an OpenAPI document, so that it describes what the edge accepts:
/// every string of a request (path, query and header parameters, JSON bodies but those of the
/// verbatim routes) gets the one-line or multi-line pattern, object keys the one-line pattern,
/// and the extra fields a body may carry (the services ignore them, the edge checks their text)
/// the [`JSON_TEXT_SCHEMA`]. Schemas shared with answers get the same constraints, which what
/// the services store and return satisfies.
pub fn document_the_text_rule(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let mut refs: Vec<(String, Text)> = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let verbatim_body = VERBATIM_BODY_PREFIXES.iter().any(|prefix| path.starts_with(prefix));
            let Some(item) = item.as_object_mut() else { continue };
            for (key, operation) in item.iter_mut() {
                if key == "parameters" {
                    mark_parameters(operation, &mut refs);
                    continue;
                }
                if let Some(parameters) = operation.get_mut("parameters") {
                    mark_parameters(parameters, &mut refs);
                }
                if verbatim_body {
                    continue;
                }
                if let Some(content) = operation
                    .pointer_mut("/requestBody/content")
                    .and_then(Value::as_object_mut)
                {
                    for media in content.values_mut() {
                        if let Some(schema) = media.get_mut("schema") {
                            mark_schema(schema, Text::Single, &mut refs);
                        }
                    }
                }
            }
        }
    }
    let mut done: Vec<String> = Vec::new();
    while let Some((name, rule)) = refs.pop() {
        if done.contains(&name) {
            continue;
        }
        done.push(name.clone());
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            mark_schema(schema, rule, &mut refs);
        }
    }
    if let Some(schemas) = doc
        .as_object_mut()
        .map(|doc| doc.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .map(|components| components.entry("schemas").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        let itself = json!({"$ref": format!("#/components/schemas/{JSON_TEXT_SCHEMA}")});
        schemas.insert(
            JSON_TEXT_SCHEMA.to_string(),
            json!({
                "description": "Any JSON value whose strings and keys hold no control characters (the platform's text rule)",
                "anyOf": [
                    {"type": "string", "pattern": ONE_LINE_PATTERN},
                    {"type": ["number", "boolean", "null"]},
                    {"type": "array", "items": itself.clone()},
                    {"type": "object", "propertyNames": {"pattern": ONE_LINE_PATTERN}, "additionalProperties": itself},
                ]
            }),
        );
    }
}

fn mark_parameters(parameters: &mut serde_json::Value, refs: &mut Vec<(String, Text)>) {
    for parameter in parameters.as_array_mut().into_iter().flatten() {
        // Credentials are verified, not read as text.
        let is_authorization = parameter
            .get("name")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|name| name.eq_ignore_ascii_case("authorization"));
        if let Some(schema) = parameter.get_mut("schema")
            && !is_authorization
        {
            mark_schema(schema, Text::Single, refs);
        }
    }
}

/// Adds the text rule to `schema` (and what it contains) read under `rule`; component schemas
/// it refers to are queued in `refs`.
fn mark_schema(schema: &mut serde_json::Value, rule: Text, refs: &mut Vec<(String, Text)>) {
    use serde_json::{Value, json};
    let Some(object) = schema.as_object_mut() else { return };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        if let Some(name) = reference.strip_prefix("#/components/schemas/") {
            refs.push((name.to_string(), rule));
        }
        return;
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for sub in object
            .get_mut(combinator)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            mark_schema(sub, rule, refs);
        }
    }
    let has_type = |object: &serde_json::Map<String, Value>, wanted: &str| match object.get("type") {
        Some(Value::String(kind)) => kind == wanted,
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == wanted),
        _ => false,
    };
    if has_type(object, "string") && !object.contains_key("pattern") && !object.contains_key("enum") {
        let pattern = if rule == Text::Multi {
            MULTI_LINE_PATTERN
        } else {
            ONE_LINE_PATTERN
        };
        object.insert("pattern".into(), json!(pattern));
    }
    if let Some(items) = object.get_mut("items") {
        mark_schema(items, rule, refs);
    }
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            mark_schema(property, rule.of_field(name), refs);
        }
    }
    if has_type(object, "object") || object.contains_key("properties") {
        match object.get_mut("propertyNames") {
            Some(names) => mark_schema(names, Text::Single, refs),
            None => {
                object.insert("propertyNames".into(), json!({"pattern": ONE_LINE_PATTERN}));
            }
        }
        let values = if rule == Text::MultiMap {
            Text::Multi
        } else {
            Text::Single
        };
        match object.get_mut("additionalProperties") {
            Some(Value::Bool(false)) => {}
            Some(additional @ Value::Bool(true)) | Some(additional @ Value::Object(_))
                if additional.as_object().is_none_or(|schema| schema.is_empty()) =>
            {
                *additional = json!({"$ref": format!("#/components/schemas/{JSON_TEXT_SCHEMA}")});
            }
            Some(additional) => mark_schema(additional, values, refs),
            None => {
                object.insert(
                    "additionalProperties".into(),
                    json!({"$ref": format!("#/components/schemas/{JSON_TEXT_SCHEMA}")}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_rule() {
        for good in ["plain", "accents é ü 中文", ""] {
            assert!(check_text("f", good).is_ok(), "{good:?}");
        }
        for bad in [
            "ad\0min",
            "bell\u{7}",
            "esc\u{1b}[0m",
            "del\u{7f}",
            "c1\u{85}",
            "two\nlines",
            "tab\there",
            "cr\r",
        ] {
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
    fn newline_and_tab_only_in_multiline_fields() {
        for good in [
            r#"{"script":"line\nline\t","description":"a\r\nb"}"#,
            r#"{"Key":"k","Value":"multi\nline"}"#,
            r#"[{"key":"k","value":"a\nb"}]"#,
            r#"{"data":{"openstack":"resource \"x\" {\n}\n"},"name":"t"}"#,
            r#"{"secretinputs":{"key_file":"-----BEGIN-----\nabc\n"}}"#,
            r#"{"pub_key":"ssh-ed25519 AAA a@b\nssh-rsa AAA c@d"}"#,
        ] {
            assert!(check_json_text(&Bytes::from(good)).is_ok(), "{good}");
        }
        for (bad, field) in [
            (r#"{"name":"two\nlines"}"#, "name"),
            (r#"{"uid":"tab\t"}"#, "uid"),
            (r#"{"inputs":{"a":"x\ny"}}"#, "inputs.a"),
            (r#"{"data":{"open\nstack":"x"}}"#, "data.<key>"),
            (r#"{"data":{"k":{"nested":"a\nb"}}}"#, "data.k.nested"),
            (r#"{"tags":["a\tb"]}"#, "tags[0]"),
            (r#"{"script":"nul\u0000"}"#, "script"),
        ] {
            match check_json_text(&Bytes::from(bad)) {
                Err(ApiError::BadRequest(message)) => assert!(message.starts_with(&format!("{field}:")), "{message}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_room_kept_for_health_checks_serves_health_readiness_and_metrics() {
        for path in ["/auth", "/deploy/ready", "/store/metrics", "/app"] {
            assert!(is_health_path(path), "{path}");
        }
        for path in [
            "/",
            "",
            "/auth/me",
            "/deploy/ns",
            "//ready",
            "/store/x/ready",
            "/auth/ready/x",
        ] {
            assert!(!is_health_path(path), "{path}");
        }
    }

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(percent_decode("/deploy/ns/%41b").as_deref(), Some("/deploy/ns/Ab"));
        assert_eq!(percent_decode("/a/%00").as_deref(), Some("/a/\0"));
        assert_eq!(percent_decode("/a/%ff"), None);
        assert_eq!(percent_decode("/a/%zz%").as_deref(), Some("/a/%zz%"));
    }
}
