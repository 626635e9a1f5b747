//! What goes wrong on a page, and the page the user then sees: a readable message with the
//! right status, never a stack trace; an expired session goes back to the login page.

use crate::api::ApiFailure;
use crate::layout;
use axum::http::{StatusCode, header};
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
