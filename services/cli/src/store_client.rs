//! The store calls of the in-VM client: long-polling `get`, `put`, `create`, `delete`.

use goterra_client::ErrorBody;
use goterra_client::store::{DeploymentToken, KeyValue};
use std::time::Duration;
use tokio::time::Instant;

/// Longest single server-side wait asked for; the loop repeats until the overall timeout.
const POLL_WAIT: Duration = Duration::from_secs(60);
/// Extra time given to a request beyond the wait it asked for.
const REQUEST_SLACK: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Pause between attempts when the server answers 404 at once (no deployment yet, or an old
/// server without waiting), so the loop never spins.
const EARLY_ANSWER_PAUSE: Duration = Duration::from_secs(5);
/// Attempts of a write before giving up on network or server errors.
const PUT_ATTEMPTS: u32 = 5;

/// How a command ended, mapped to the process exit code.
#[derive(Debug)]
pub enum Failure {
    /// Timed out, refused, or could not be done: exit 1.
    Failed(String),
    /// 401 or 403: exit 3, at once and without retrying.
    Unauthorized(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::Unauthorized(_) => 3,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Failed(message) | Self::Unauthorized(message) => message,
        }
    }
}

pub struct StoreClient {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

impl StoreClient {
    /// `base_url` is the platform's root URL; trailing slashes are ignored.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, String> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let base = url::Url::parse(trimmed).map_err(|err| format!("invalid --url {trimmed:?}: {err}"))?;
        if base.cannot_be_a_base() {
            return Err(format!("invalid --url {trimmed:?}: not an http(s) URL"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| format!("cannot set up HTTP: {err}"))?;
        Ok(Self { http, base, token })
    }

    /// `{base}/store/{segments...}`, each segment escaped.
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("store").extend(segments);
        }
        url
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Waits until `key` is set or `timeout` has passed, using the server's long-poll.
    pub async fn get(&self, deployment: &str, key: &str, timeout: Duration) -> Result<String, Failure> {
        let deadline = Instant::now() + timeout;
        let url = self.url(&[deployment, key]);
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now()).min(POLL_WAIT);
            let started = Instant::now();
            let request = self
                .authorized(self.http.get(url.clone()))
                .query(&[("wait", wait.as_secs())])
                .timeout(wait + REQUEST_SLACK);
            let pause = match request.send().await {
                Ok(response) => match response.status().as_u16() {
                    200 => {
                        let body: KeyValue = response
                            .json()
                            .await
                            .map_err(|err| Failure::Failed(format!("unexpected answer from the store: {err}")))?;
                        return Ok(body.value);
                    }
                    401 | 403 => return Err(Failure::Unauthorized(error_text(response).await)),
                    400 => return Err(Failure::Failed(error_text(response).await)),
                    404 => {
                        backoff = Duration::from_secs(1);
                        // Answered well before the wait ended: do not hammer the server.
                        if started.elapsed() + Duration::from_secs(1) < wait {
                            EARLY_ANSWER_PAUSE
                        } else {
                            Duration::ZERO
                        }
                    }
                    status => {
                        eprintln!("store answered {status}: {}, retrying", error_text(response).await);
                        next_backoff(&mut backoff)
                    }
                },
                Err(err) => {
                    eprintln!(
                        "failed to contact server {}: {}, retrying",
                        self.base,
                        without_url(&err)
                    );
                    next_backoff(&mut backoff)
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Failure::Failed(format!("timed out waiting for key {key}")));
            }
            tokio::time::sleep(pause.min(remaining)).await;
        }
    }

    /// Sets `key`, retrying network and server errors a few times.
    pub async fn put(&self, deployment: &str, key: &str, value: &str) -> Result<(), Failure> {
        let url = self.url(&[deployment]);
        let body = KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        let mut backoff = Duration::from_secs(1);
        let mut last_error = String::new();
        for _ in 0..PUT_ATTEMPTS {
            let request = self
                .authorized(self.http.put(url.clone()))
                .json(&body)
                .timeout(Duration::from_secs(60));
            match request.send().await {
                Ok(response) => match response.status().as_u16() {
                    200 => return Ok(()),
                    401 | 403 => return Err(Failure::Unauthorized(error_text(response).await)),
                    status if status < 500 => {
                        return Err(Failure::Failed(format!(
                            "failed to update deployment ({status}): {}",
                            error_text(response).await
                        )));
                    }
                    status => last_error = format!("store answered {status}: {}", error_text(response).await),
                },
                Err(err) => last_error = format!("failed to contact server {}: {}", self.base, without_url(&err)),
            }
            eprintln!("{last_error}, retrying");
            tokio::time::sleep(next_backoff(&mut backoff)).await;
        }
        Err(Failure::Failed(last_error))
    }

    /// Creates a deployment with a user API key.
    pub async fn create(&self, api_key: &str, namespace: Option<&str>) -> Result<DeploymentToken, Failure> {
        let mut request = self
            .http
            .post(self.url(&[]))
            .header("X-API-Key", api_key)
            .timeout(Duration::from_secs(60));
        if let Some(namespace) = namespace {
            request = request.header("X-API-NS", namespace);
        }
        let response = request
            .send()
            .await
            .map_err(|err| Failure::Failed(format!("failed to contact server {}: {}", self.base, without_url(&err))))?;
        match response.status().as_u16() {
            200 | 201 => response
                .json()
                .await
                .map_err(|err| Failure::Failed(format!("unexpected answer from the store: {err}"))),
            401 | 403 => Err(Failure::Unauthorized(error_text(response).await)),
            status => Err(Failure::Failed(format!(
                "failed to create deployment ({status}): {}",
                error_text(response).await
            ))),
        }
    }

    pub async fn delete(&self, deployment: &str) -> Result<(), Failure> {
        let request = self
            .authorized(self.http.delete(self.url(&[deployment])))
            .timeout(Duration::from_secs(60));
        let response = request
            .send()
            .await
            .map_err(|err| Failure::Failed(format!("failed to contact server {}: {}", self.base, without_url(&err))))?;
        match response.status().as_u16() {
            200 => Ok(()),
            401 | 403 => Err(Failure::Unauthorized(error_text(response).await)),
            status => Err(Failure::Failed(format!(
                "failed to delete deployment ({status}): {}",
                error_text(response).await
            ))),
        }
    }
}

fn next_backoff(backoff: &mut Duration) -> Duration {
    let current = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    current
}

/// The server's `{"message"}`, or the status line.
async fn error_text(response: reqwest::Response) -> String {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(error) => error.message,
        Err(_) => status.to_string(),
    }
}

/// A request error without its URL, which holds the deployment id and key (not secret, but
/// noisy); never includes the token, which travels in a header.
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "").replace(" ()", "");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
