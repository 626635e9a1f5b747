//! The one error type of the client. Its variants are what a caller must tell apart: the CLI
//! maps them to exit codes (server refusal 1, unauthorized 3, unreachable 4).

/// Why a call failed. No variant holds a credential: URLs carry none, and server messages are
/// the server's own `{"message"}`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status (other than 401) and its `message`.
    #[error("{message} (HTTP {status})")]
    Server { status: u16, message: String },
    /// 429: too many attempts (failed logins); `retry_after_secs` is the server's
    /// `Retry-After`, when it sent one in seconds.
    #[error("{message} (HTTP 429{})", retry_after_secs.map(|secs| format!(", retry in {secs} s")).unwrap_or_default())]
    TooManyRequests {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// 401: no credential, or a wrong or expired one.
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
    /// The server could not be reached (refused, DNS, TLS, timeout, connection lost).
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The server answered something that is not the expected JSON.
    #[error("unexpected answer from {url}: {detail}")]
    Decode { url: String, detail: String },
    /// A base URL that is not an absolute http(s) URL.
    #[error("invalid URL {url:?}: {detail}")]
    InvalidUrl { url: String, detail: String },
}

impl ClientError {
    /// The HTTP status of a server answer, if the failure is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            Self::Unauthorized { .. } => Some(401),
            Self::TooManyRequests { .. } => Some(429),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Maps a transport error of `url`. reqwest's own text is kept for the detail; it names
    /// the URL but never a header, so no credential can reach it.
    pub(crate) fn transport(url: &url::Url, err: reqwest::Error) -> Self {
        let url = url.to_string();
        let detail = source_chain(&err);
        if err.is_decode() {
            Self::Decode { url, detail }
        } else {
            Self::Unreachable { url, detail }
        }
    }
}

/// The error and its causes, `: `-separated (reqwest's top-level text alone hides the reason,
/// e.g. "connection refused").
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = inner.source();
    }
    text
}

pub type ClientResult<T> = Result<T, ClientError>;
