//! What goes wrong on a page, and the page the user then sees: a readable message with the
//! right status, never a stack trace; an expired session goes back to the login page.

use crate::api::ApiFailure;
use crate::layout;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in to continue")]
    SignInFirst,
    #[error("your session has expired: sign in again")]
    SessionExpired,
    #[error("this form has expired or did not come from this site: reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error("the platform cannot answer right now; try again in a moment")]
    Unavailable,
}

impl From<ApiFailure> for PageError {
    fn from(failure: ApiFailure) -> Self {
        match failure {
            ApiFailure::Unauthorized => Self::SessionExpired,
            ApiFailure::Forbidden(message) => Self::Forbidden(message),
            ApiFailure::NotFound(message) => Self::NotFound(message),
            ApiFailure::Rejected { status, message } => Self::Rejected {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                message,
            },
            ApiFailure::Throttled {
                message,
                retry_after_secs,
            } => Self::Rejected {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!("{message} (you can try again {})", retry_time(retry_after_secs)),
            },
            ApiFailure::Unavailable => Self::Unavailable,
        }
    }
}

/// A refusal the user can fix by changing what they typed (the API's 4xx on the input, or a
/// 403 such as a wrong current password): the status and the message to show next to the
/// form. Anything else is an error page.
pub fn form_refusal(failure: ApiFailure) -> Result<(StatusCode, String), PageError> {
    match failure {
        ApiFailure::Rejected { status, message } => {
            Ok((StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), message))
        }
        ApiFailure::Forbidden(message) => Ok((StatusCode::FORBIDDEN, message)),
        other => Err(other.into()),
    }
}

/// How long to wait before trying again, for a message: "in 3 seconds", "in 2 min 5 s";
/// "later" when the API did not say.
pub fn retry_time(retry_after_secs: Option<u64>) -> String {
    match retry_after_secs {
        Some(1) => "in 1 second".to_string(),
        Some(secs) if secs < 60 => format!("in {secs} seconds"),
        Some(secs) => format!("in {}", layout::duration(secs as f64)),
        None => "later".to_string(),
    }
}

impl PageError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignInFirst | Self::SessionExpired => StatusCode::SEE_OTHER,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Rejected { status, .. } => *status,
            Self::Unavailable => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignInFirst => login_redirect(false),
            Self::SessionExpired => login_redirect(true),
            other => {
                let status = other.status();
                (status, layout::error_page(status, &other.to_string())).into_response()
            }
        }
    }
}

/// To the login page; `expired` adds the message and drops the dead session cookie.
fn login_redirect(expired: bool) -> Response {
    let location = if expired {
        format!("{}/login?expired=1", crate::PREFIX)
    } else {
        format!("{}/login", crate::PREFIX)
    };
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if expired {
        let clear = format!(
            "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Lax",
            crate::session::SESSION_COOKIE,
            crate::PREFIX
        );
        if let Ok(value) = clear.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

pub const NO_SUCH_PAGE: &str = "There is no page at this address.";

/// What a URL under `/app` that no page answers gets: the HTML "not found" page (the API's
/// unknown routes keep their JSON answer).
pub async fn no_such_page() -> PageError {
    PageError::NotFound(NO_SUCH_PAGE.into())
}

/// Error answers the framework makes on the UI's routes (405 for a page's URL with another
/// method, a query string or form that does not parse) become HTML error pages, as the
/// handlers' own errors are. Without this the edge would give them the API's JSON body.
pub async fn framework_errors_as_pages(request: Request, next: Next) -> Response {
    let (mut parts, text) = match goterra_core::edge::framework_error(next.run(request).await).await {
        Ok(taken_apart) => taken_apart,
        Err(response) => return response,
    };
    let status = parts.status;
    let message = text.unwrap_or_else(|| match status {
        StatusCode::NOT_FOUND => NO_SUCH_PAGE.to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "This page cannot be used that way (the method is not allowed).".to_string(),
        other => other.canonical_reason().unwrap_or("Error").to_string(),
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(layout::error_page(status, &message).into_string()))
}
