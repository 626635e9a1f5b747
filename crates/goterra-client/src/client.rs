//! [`Client`]: one method per public route, typed requests and answers, one error type.

use crate::auth::{
    ApiKeyAnswer, ApiKeyLoginAnswer, IdentitiesAnswer, IdentityView, LinkIdentityAnswer, LinkIdentityRequest,
    LoginAnswer, LoginRequest, MessageAnswer, OidcLoginAnswer, PasswordRequest, RegisterAnswer, RegisterRequest,
    TokenAnswer, UpdateUserRequest, UserAnswer, UserView, UsersAnswer,
};
use crate::common::{ErrorBody, Health, Message};
use crate::deploy::{
    CatalogueItem, EndpointDefaults, InputsResponse, InputsSummary, Namespace, NamespaceList, NamespaceOne,
    NamespacePatch, NamespaceRef, NewNamespace, SecretRequest, SecretStatus, TokenResponse,
};
use crate::error::{ClientError, ClientResult};
use crate::ids::{ApplicationId, DeploymentId, EndpointId, NamespaceId, RunId, Uid};
use crate::run_agent::{AgentStatus, RunResources};
use crate::runs::{
    AgentAnswer, CLAIM_HEADER, LogLines, Run, RunAction, RunCreated, RunList, RunLog, RunReport, RunRequest, RunSpec,
    RunStatus, TerraformPreview,
};
use crate::sensitive::Sensitive;
use crate::store::{DeploymentData, DeploymentToken, KeyValue};
use futures_util::StreamExt;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Longest time an ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Extra time given to a store wait beyond the wait it asked the server for.
const WAIT_SLACK: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const API_KEY_HEADER: &str = "x-api-key";
const NAMESPACE_HEADER: &str = "x-api-ns";

/// How calls authenticate.
#[derive(Clone, Debug, Default)]
pub enum Credential {
    #[default]
    Anonymous,
    /// A user (or deployment) token, sent as `Authorization: Bearer`.
    Token(Sensitive<String>),
    /// A user API key, sent as `X-API-Key`.
    ApiKey(Sensitive<String>),
}

/// One HTTP call, as `--verbose` shows it: never a header, so never a credential.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub method: Method,
    pub url: Url,
    /// `None` when no answer came (network failure).
    pub status: Option<u16>,
    pub elapsed: Duration,
}

type Observer = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// A typed client of the platform's API at one base URL.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credential: Credential,
    observer: Option<Observer>,
    forwarded_for: Option<std::net::IpAddr>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("credential", &self.credential)
            .finish()
    }
}

/// What a followed run log brings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// New lines; `next` is the index to resume from (`?from=`).
    Lines { lines: Vec<String>, next: Option<i64> },
    /// The action ended (or the server stopped following); the run's status.
    End { status: String },
    /// The server could not read the log.
    Error { message: String },
}

impl Client {
    /// A client of the platform at `base_url` (`https://goterra.example.org`; a trailing slash
    /// is ignored), without credential.
    pub fn new(base_url: &str) -> ClientResult<Self> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let invalid = |detail: String| ClientError::InvalidUrl {
            url: trimmed.to_string(),
            detail,
        };
        let base = Url::parse(trimmed).map_err(|err| invalid(err.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("not an http(s) URL".to_string()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("goterra-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| invalid(err.to_string()))?;
        Ok(Self {
            http,
            base,
            credential: Credential::Anonymous,
            observer: None,
            forwarded_for: None,
        })
    }

    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credential = credential;
        self
    }

    pub fn with_token(self, token: impl Into<String>) -> Self {
        self.with_credential(Credential::Token(Sensitive::new(token.into())))
    }

    pub fn with_api_key(self, key: impl Into<String>) -> Self {
        self.with_credential(Credential::ApiKey(Sensitive::new(key.into())))
    }

    /// Names `client` in `X-Forwarded-For` on every call: for a proxy such as the web UI,
    /// whose users' failed logins must be counted per user's address. The platform believes
    /// it only from the addresses in its `http.trusted_proxies`.
    pub fn with_forwarded_for(mut self, client: Option<std::net::IpAddr>) -> Self {
        self.forwarded_for = client;
        self
    }

    /// Calls `observer` after every HTTP call (for `--verbose`).
    pub fn with_observer(mut self, observer: impl Fn(&CallRecord) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// `{base}/{segments...}`, each segment escaped (an id can never change the path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn with_query(mut url: Url, pairs: &[(&str, String)]) -> Url {
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        url
    }

    fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, url.clone());
        if let Some(client) = self.forwarded_for {
            request = request.header("X-Forwarded-For", client.to_string());
        }
        match &self.credential {
            Credential::Anonymous => request,
            Credential::Token(token) => request.bearer_auth(token.expose()),
            Credential::ApiKey(key) => request.header(API_KEY_HEADER, key.expose()),
        }
    }

    /// Sends, reports the call to the observer, and turns error statuses into [`ClientError`].
    async fn send(
        &self,
        method: Method,
        url: &Url,
        request: reqwest::RequestBuilder,
    ) -> ClientResult<reqwest::Response> {
        let started = Instant::now();
        let outcome = request.send().await;
        if let Some(observer) = &self.observer {
            observer(&CallRecord {
                method,
                url: url.clone(),
                status: outcome.as_ref().ok().map(|response| response.status().as_u16()),
                elapsed: started.elapsed(),
            });
        }
        let response = outcome.map_err(|err| ClientError::transport(url, err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after_secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|body| body.message)
            .unwrap_or_else(|_| {
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    trimmed.chars().take(300).collect()
                }
            });
        if status == reqwest::StatusCode::UNAUTHORIZED {
            Err(ClientError::Unauthorized { message })
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(ClientError::TooManyRequests {
                message,
                retry_after_secs,
            })
        } else {
            Err(ClientError::Server {
                status: status.as_u16(),
                message,
            })
        }
    }

    async fn decode<T: DeserializeOwned>(url: &Url, response: reqwest::Response) -> ClientResult<T> {
        let bytes = response.bytes().await.map_err(|err| ClientError::transport(url, err))?;
        serde_json::from_slice(&bytes).map_err(|err| ClientError::Decode {
            url: url.to_string(),
            detail: err.to_string(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&dyn ErasedBody>,
    ) -> ClientResult<T> {
        let mut request = self.request(method.clone(), &url).timeout(CALL_TIMEOUT);
        if let Some(body) = body {
            request = request.json(&body.to_value(&url)?);
        }
        let response = self.send(method, &url, request).await?;
        Self::decode(&url, response).await
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> ClientResult<T> {
        self.call(Method::GET, url, None).await
    }

    async fn post<T: DeserializeOwned>(&self, url: Url, body: &dyn ErasedBody) -> ClientResult<T> {
        self.call(Method::POST, url, Some(body)).await
    }

    async fn put<T: DeserializeOwned>(&self, url: Url, body: &dyn ErasedBody) -> ClientResult<T> {
        self.call(Method::PUT, url, Some(body)).await
    }

    async fn delete<T: DeserializeOwned>(&self, url: Url) -> ClientResult<T> {
        self.call(Method::DELETE, url, None).await
    }

    // ---- every service ----

    /// `GET /{segments...}` as untyped JSON, for routes whose shapes this crate does not
    /// define yet (the accounting API while it is being written).
    pub async fn get_json(&self, segments: &[&str]) -> ClientResult<Value> {
        self.get(self.url(segments)).await
    }

    /// `GET /<service>/openapi.json`: the service's OpenAPI document, as JSON.
    pub async fn openapi_document(&self, service: &str) -> ClientResult<Value> {
        self.get(self.url(&[service, "openapi.json"])).await
    }

    /// `GET /<service>`: `auth`, `deploy`, `store`, `run-agent`, `acct`.
    pub async fn health(&self, service: &str) -> ClientResult<Health> {
        self.get(self.url(&[service])).await
    }

    // ---- auth ----

    /// `GET /auth/api`: the user of the API key this client holds, and a token for it.
    pub async fn login_with_api_key(&self) -> ClientResult<ApiKeyLoginAnswer> {
        self.get(self.url(&["auth", "api"])).await
    }

    /// `POST /auth/login` with a local account's password.
    pub async fn login(&self, uid: &Uid, password: &Sensitive<String>) -> ClientResult<LoginAnswer> {
        let body = LoginRequest {
            uid: uid.to_string(),
            password: password.expose().clone(),
        };
        self.post(self.url(&["auth", "login"]), &body).await
    }

    /// `GET /auth/token`: a fresh token for the caller.
    pub async fn renew_token(&self) -> ClientResult<TokenAnswer> {
        self.get(self.url(&["auth", "token"])).await
    }

    /// `POST /deploy/session/bind`: the API key held by this client exchanged for a token.
    pub async fn bind_session(&self) -> ClientResult<TokenResponse> {
        self.post(self.url(&["deploy", "session", "bind"]), &Value::Null).await
    }

    /// `GET /auth/me`.
    pub async fn me(&self) -> ClientResult<UserView> {
        self.get(self.url(&["auth", "me"])).await
    }

    /// `GET /auth/user` (admins).
    pub async fn users(&self, skip: Option<i64>, limit: Option<i64>) -> ClientResult<Vec<UserView>> {
        let url = Self::with_query(self.url(&["auth", "user"]), &page(skip, limit));
        Ok(self.get::<UsersAnswer>(url).await?.users)
    }

    /// `GET /auth/user/{uid}`.
    pub async fn user(&self, uid: &Uid) -> ClientResult<UserView> {
        Ok(self
            .get::<UserAnswer>(self.url(&["auth", "user", uid.as_str()]))
            .await?
            .user)
    }

    /// `POST /auth/register`: a new user; the answer holds its API key, shown once.
    pub async fn register(&self, request: &RegisterRequest) -> ClientResult<RegisterAnswer> {
        self.post(self.url(&["auth", "register"]), request).await
    }

    /// `PUT /auth/user/{uid}`.
    pub async fn update_user(&self, uid: &Uid, patch: &UpdateUserRequest) -> ClientResult<UserView> {
        Ok(self
            .put::<UserAnswer>(self.url(&["auth", "user", uid.as_str()]), patch)
            .await?
            .user)
    }

    /// `PUT /auth/user/{uid}/password`.
    pub async fn change_password(&self, uid: &Uid, request: &PasswordRequest) -> ClientResult<UserView> {
        Ok(self
            .put::<UserAnswer>(self.url(&["auth", "user", uid.as_str(), "password"]), request)
            .await?
            .user)
    }

    /// `POST /auth/user/{uid}/apikey`: a new API key (the old one stops working).
    pub async fn regenerate_api_key(&self, uid: &Uid) -> ClientResult<Sensitive<String>> {
        let answer: ApiKeyAnswer = self
            .post(self.url(&["auth", "user", uid.as_str(), "apikey"]), &Value::Null)
            .await?;
        Ok(Sensitive::new(answer.apikey))
    }

    /// `DELETE /auth/user/{uid}`.
    pub async fn delete_user(&self, uid: &Uid) -> ClientResult<MessageAnswer> {
        self.delete(self.url(&["auth", "user", uid.as_str()])).await
    }

    /// `GET /auth/oidc/{provider}/callback` on behalf of a browser (the web UI relays the
    /// provider's redirect): `query` as the provider sent it, `flow_cookie` the browser's
    /// `Cookie` header carrying the flow. With a token credential, a linking flow links.
    pub async fn oidc_callback(
        &self,
        provider: &str,
        query: &[(String, String)],
        flow_cookie: &str,
    ) -> ClientResult<OidcLoginAnswer> {
        let mut url = self.url(&["auth", "oidc", provider, "callback"]);
        url.query_pairs_mut().extend_pairs(query);
        let request = self
            .request(Method::GET, &url)
            .timeout(CALL_TIMEOUT)
            .header(reqwest::header::COOKIE, flow_cookie);
        let response = self.send(Method::GET, &url, request).await?;
        Self::decode(&url, response).await
    }

    /// `POST /auth/user/{uid}/identities`: where to send the browser to link an identity, and
    /// the flow cookie (`Set-Cookie` value) the browser must carry back.
    pub async fn start_identity_link(
        &self,
        uid: &Uid,
        request: &LinkIdentityRequest,
    ) -> ClientResult<(LinkIdentityAnswer, Option<String>)> {
        let url = self.url(&["auth", "user", uid.as_str(), "identities"]);
        let body = serde_json::to_value(request).map_err(|err| ClientError::Decode {
            url: url.to_string(),
            detail: err.to_string(),
        })?;
        let builder = self.request(Method::POST, &url).timeout(CALL_TIMEOUT).json(&body);
        let response = self.send(Method::POST, &url, builder).await?;
        let cookie = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Ok((Self::decode(&url, response).await?, cookie))
    }

    /// `GET /auth/user/{uid}/identities`.
    pub async fn identities(&self, uid: &Uid) -> ClientResult<Vec<IdentityView>> {
        Ok(self
            .get::<IdentitiesAnswer>(self.url(&["auth", "user", uid.as_str(), "identities"]))
            .await?
            .identities)
    }

    /// `DELETE /auth/user/{uid}/identities/{provider}` (admins).
    pub async fn unlink_identity(&self, uid: &Uid, provider: &str) -> ClientResult<MessageAnswer> {
        self.delete(self.url(&["auth", "user", uid.as_str(), "identities", provider]))
            .await
    }

    // ---- namespaces ----

    /// `GET /deploy/ns`: the caller's namespaces (`all`: every namespace, admins).
    pub async fn namespaces(&self, all: bool) -> ClientResult<Vec<Namespace>> {
        self.namespaces_page(all, None, None).await
    }

    /// [`Self::namespaces`], one page (by name).
    pub async fn namespaces_page(
        &self,
        all: bool,
        skip: Option<i64>,
        limit: Option<i64>,
    ) -> ClientResult<Vec<Namespace>> {
        let mut query = page(skip, limit);
        if all {
            query.push(("all", "1".to_string()));
        }
        let url = Self::with_query(self.url(&["deploy", "ns"]), &query);
        Ok(self.get::<NamespaceList>(url).await?.ns)
    }

    /// `GET /deploy/ns/{id}`.
    pub async fn namespace(&self, id: &NamespaceId) -> ClientResult<Namespace> {
        Ok(self
            .get::<NamespaceOne>(self.url(&["deploy", "ns", id.as_str()]))
            .await?
            .ns)
    }

    /// `POST /deploy/ns`: the new namespace's id.
    pub async fn create_namespace(&self, name: &str) -> ClientResult<NamespaceId> {
        let body = NewNamespace { name: name.to_string() };
        let answer: NamespaceRef = self.post(self.url(&["deploy", "ns"]), &body).await?;
        Ok(NamespaceId::from_trusted(answer.ns))
    }

    /// `PUT /deploy/ns/{id}`.
    pub async fn update_namespace(&self, id: &NamespaceId, patch: &NamespacePatch) -> ClientResult<Namespace> {
        Ok(self
            .put::<NamespaceOne>(self.url(&["deploy", "ns", id.as_str()]), patch)
            .await?
            .ns)
    }

    /// `DELETE /deploy/ns/{id}` (refused while it holds objects or runs).
    pub async fn delete_namespace(&self, id: &NamespaceId) -> ClientResult<()> {
        self.delete::<NamespaceRef>(self.url(&["deploy", "ns", id.as_str()]))
            .await?;
        Ok(())
    }

    // ---- catalogue ----

    /// `GET /deploy/ns/{id}/<kind>`: the namespace's objects of one kind (`light`: without
    /// scripts and Terraform files).
    pub async fn list_items<K: CatalogueItem>(&self, ns: &NamespaceId, light: bool) -> ClientResult<Vec<K>> {
        let url = self.url(&["deploy", "ns", ns.as_str(), K::SEGMENT]);
        let url = Self::with_query(url, &light_query(light));
        let answer: Value = self.get(url.clone()).await?;
        unwrap_key(&url, answer, K::MANY)
    }

    /// `GET /deploy/<kinds>`: the public objects of one kind.
    pub async fn list_public_items<K: CatalogueItem>(&self, light: bool) -> ClientResult<Vec<K>> {
        let url = Self::with_query(self.url(&["deploy", K::MANY]), &light_query(light));
        let answer: Value = self.get(url.clone()).await?;
        unwrap_key(&url, answer, K::MANY)
    }

    /// `GET /deploy/ns/{id}/<kind>/{oid}`.
    pub async fn get_item<K: CatalogueItem>(&self, ns: &NamespaceId, id: &K::Id) -> ClientResult<K> {
        let url = self.url(&["deploy", "ns", ns.as_str(), K::SEGMENT, id.as_ref()]);
        let answer: Value = self.get(url.clone()).await?;
        unwrap_key(&url, answer, K::ONE)
    }

    /// `POST /deploy/ns/{id}/<kind>`: `body` is the object (an `K`, or any JSON object of its
    /// fields); the answer is the new id.
    pub async fn create_item<K: CatalogueItem>(
        &self,
        ns: &NamespaceId,
        body: &(impl Serialize + Sync),
    ) -> ClientResult<K::Id> {
        let url = self.url(&["deploy", "ns", ns.as_str(), K::SEGMENT]);
        let answer: Value = self.post(url.clone(), &JsonBody(body)).await?;
        let id: String = unwrap_key(&url, answer, K::ONE)?;
        id.parse().map_err(|_| ClientError::Decode {
            url: url.to_string(),
            detail: format!("{id:?} is not an id"),
        })
    }

    /// `PUT /deploy/ns/{id}/<kind>/{oid}`: the fields of `body` replace the stored ones.
    pub async fn update_item<K: CatalogueItem>(
        &self,
        ns: &NamespaceId,
        id: &K::Id,
        body: &(impl Serialize + Sync),
    ) -> ClientResult<K> {
        let url = self.url(&["deploy", "ns", ns.as_str(), K::SEGMENT, id.as_ref()]);
        let answer: Value = self.put(url.clone(), &JsonBody(body)).await?;
        unwrap_key(&url, answer, K::ONE)
    }

    /// `DELETE /deploy/ns/{id}/<kind>/{oid}` (409 while frozen or used).
    pub async fn delete_item<K: CatalogueItem>(&self, ns: &NamespaceId, id: &K::Id) -> ClientResult<()> {
        let url = self.url(&["deploy", "ns", ns.as_str(), K::SEGMENT, id.as_ref()]);
        self.delete::<Value>(url).await?;
        Ok(())
    }

    // ---- endpoint secrets and defaults, application inputs ----

    fn endpoint_url(&self, ns: &NamespaceId, endpoint: &EndpointId, leaf: &str) -> Url {
        self.url(&["deploy", "ns", ns.as_str(), "endpoint", endpoint.as_str(), leaf])
    }

    /// `GET .../endpoint/{e}/secret`: whether the caller has a secret there, and its user name.
    pub async fn endpoint_secret(&self, ns: &NamespaceId, endpoint: &EndpointId) -> ClientResult<SecretStatus> {
        self.get(self.endpoint_url(ns, endpoint, "secret")).await
    }

    /// `PUT .../endpoint/{e}/secret`: the caller's cloud credential (stored encrypted).
    pub async fn set_endpoint_secret(
        &self,
        ns: &NamespaceId,
        endpoint: &EndpointId,
        secret: &SecretRequest,
    ) -> ClientResult<Message> {
        self.put(self.endpoint_url(ns, endpoint, "secret"), secret).await
    }

    /// `DELETE .../endpoint/{e}/secret`.
    pub async fn delete_endpoint_secret(&self, ns: &NamespaceId, endpoint: &EndpointId) -> ClientResult<Message> {
        self.delete(self.endpoint_url(ns, endpoint, "secret")).await
    }

    /// `GET .../endpoint/{e}/defaults`: the caller's suggested input values.
    pub async fn endpoint_defaults(&self, ns: &NamespaceId, endpoint: &EndpointId) -> ClientResult<EndpointDefaults> {
        self.get(self.endpoint_url(ns, endpoint, "defaults")).await
    }

    /// `PUT .../endpoint/{e}/defaults`.
    pub async fn set_endpoint_defaults(
        &self,
        ns: &NamespaceId,
        endpoint: &EndpointId,
        defaults: &EndpointDefaults,
    ) -> ClientResult<EndpointDefaults> {
        self.put(self.endpoint_url(ns, endpoint, "defaults"), defaults).await
    }

    /// `GET /deploy/ns/{id}/app/{a}/inputs`: what a run of the application asks for.
    pub async fn app_inputs(&self, ns: &NamespaceId, app: &ApplicationId) -> ClientResult<InputsSummary> {
        let url = self.url(&["deploy", "ns", ns.as_str(), "app", app.as_str(), "inputs"]);
        Ok(self.get::<InputsResponse>(url).await?.app)
    }

    // ---- runs ----

    fn run_url(&self, ns: &NamespaceId, run: &RunId, leaf: Option<&str>) -> Url {
        let mut segments = vec!["deploy", "ns", ns.as_str(), "run", run.as_str()];
        segments.extend(leaf);
        self.url(&segments)
    }

    /// `POST /deploy/ns/{id}/run/{app}`: starts a run; the answer is its id.
    pub async fn create_run(&self, ns: &NamespaceId, app: &ApplicationId, request: &RunRequest) -> ClientResult<RunId> {
        let url = self.url(&["deploy", "ns", ns.as_str(), "run", app.as_str()]);
        let created: RunCreated = self.post(url, request).await?;
        Ok(RunId::from_trusted(created.run))
    }

    /// `POST /deploy/ns/{id}/run/{app}/terraform`: the files a run would get, without starting it.
    pub async fn preview_run(
        &self,
        ns: &NamespaceId,
        app: &ApplicationId,
        request: &RunRequest,
    ) -> ClientResult<TerraformPreview> {
        let url = self.url(&["deploy", "ns", ns.as_str(), "run", app.as_str(), "terraform"]);
        self.post(url, request).await
    }

    /// `GET /deploy/run` (`ns`: `None`) or `GET /deploy/ns/{id}/run`; `all`: every run the
    /// caller may see.
    pub async fn runs(
        &self,
        ns: Option<&NamespaceId>,
        all: bool,
        skip: Option<i64>,
        limit: Option<i64>,
    ) -> ClientResult<Vec<Run>> {
        self.runs_in_status(ns, all, &[], skip, limit).await
    }

    /// [`Self::runs`], only those in one of `statuses` (empty: any status); `skip` and
    /// `limit` page the filtered list (`?status=a,b`).
    pub async fn runs_in_status(
        &self,
        ns: Option<&NamespaceId>,
        all: bool,
        statuses: &[RunStatus],
        skip: Option<i64>,
        limit: Option<i64>,
    ) -> ClientResult<Vec<Run>> {
        let url = match ns {
            Some(ns) => self.url(&["deploy", "ns", ns.as_str(), "run"]),
            None => self.url(&["deploy", "run"]),
        };
        let mut query = page(skip, limit);
        if all {
            query.push(("all", "1".to_string()));
        }
        if !statuses.is_empty() {
            let names: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
            query.push(("status", names.join(",")));
        }
        Ok(self.get::<RunList>(Self::with_query(url, &query)).await?.runs)
    }

    /// `GET /deploy/ns/{id}/run/{run}`.
    pub async fn run(&self, ns: &NamespaceId, run: &RunId) -> ClientResult<Run> {
        self.get(self.run_url(ns, run, None)).await
    }

    /// `POST .../run/{run}/cancel`.
    pub async fn cancel_run(&self, ns: &NamespaceId, run: &RunId) -> ClientResult<Run> {
        self.post(self.run_url(ns, run, Some("cancel")), &Value::Null).await
    }

    /// `DELETE .../run/{run}`: queues the destruction; the answer is the run, `destroy_pending`.
    pub async fn destroy_run(&self, ns: &NamespaceId, run: &RunId) -> ClientResult<Run> {
        self.delete(self.run_url(ns, run, None)).await
    }

    /// `DELETE .../run/{run}` with one-off cloud credentials (`user_name`, `password`) for an
    /// endpoint where the caller stored none; they are used for this destroy only.
    pub async fn destroy_run_with_credentials(
        &self,
        ns: &NamespaceId,
        run: &RunId,
        secretinputs: &std::collections::BTreeMap<String, Sensitive<String>>,
    ) -> ClientResult<Run> {
        let secrets: std::collections::BTreeMap<&str, &str> = secretinputs
            .iter()
            .map(|(name, value)| (name.as_str(), value.expose().as_str()))
            .collect();
        let body = serde_json::json!({ "secretinputs": secrets });
        self.call(Method::DELETE, self.run_url(ns, run, None), Some(&body))
            .await
    }

    /// `GET .../run/{run}/log?from=`: one page of the run's Terraform output.
    pub async fn run_log(&self, ns: &NamespaceId, run: &RunId, from: i64) -> ClientResult<RunLog> {
        let url = Self::with_query(self.run_url(ns, run, Some("log")), &[("from", from.to_string())]);
        self.get(url).await
    }

    /// `GET .../run/{run}/log?follow=1`: the log as it is written, until the action ends.
    pub async fn follow_run_log(&self, ns: &NamespaceId, run: &RunId, from: i64) -> ClientResult<LogFollower> {
        let url = Self::with_query(
            self.run_url(ns, run, Some("log")),
            &[("from", from.to_string()), ("follow", "1".to_string())],
        );
        let request = self
            .request(Method::GET, &url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let response = self.send(Method::GET, &url, request).await?;
        Ok(LogFollower {
            url,
            body: Box::pin(response.bytes_stream().map(|chunk| chunk.map(|bytes| bytes.to_vec()))),
            buffer: Vec::new(),
            ended: false,
        })
    }

    /// `GET /run-agent/ns/{id}/run/{run}/state`: the run's resources (owner or admin).
    pub async fn run_resources(&self, ns: &NamespaceId, run: &RunId) -> ClientResult<RunResources> {
        self.get(self.url(&["run-agent", "ns", ns.as_str(), "run", run.as_str(), "state"]))
            .await
    }

    /// `GET /run-agent`: the agent's capacity and the runs it executes.
    pub async fn agent_status(&self) -> ClientResult<AgentStatus> {
        self.get(self.url(&["run-agent"])).await
    }

    // ---- run agents: deploy's agent routes (agent credential) ----

    fn agent_run_url(&self, run: &RunId, leaf: &str) -> Url {
        self.url(&["deploy", "agent", "run", run.as_str(), leaf])
    }

    /// `POST /deploy/agent/run/{id}/{leaf}`, with the agent's claim on the run when it holds
    /// one (deploy refuses the reports of an agent whose claim was taken over: 409).
    async fn agent_run_post<B: Serialize + ?Sized>(
        &self,
        run: &RunId,
        leaf: &str,
        body: &B,
        claim: Option<&str>,
    ) -> ClientResult<AgentAnswer> {
        let url = self.agent_run_url(run, leaf);
        let mut request = self.request(Method::POST, &url).timeout(CALL_TIMEOUT).json(body);
        if let Some(claim) = claim {
            request = request.header(CLAIM_HEADER, claim);
        }
        let response = self.send(Method::POST, &url, request).await?;
        Self::decode(&url, response).await
    }

    /// `GET /deploy/agent/run/{id}/spec?action=`: everything an agent needs to execute the
    /// action in flight (409: it is not in flight).
    pub async fn agent_run_spec(&self, run: &RunId, action: RunAction) -> ClientResult<RunSpec> {
        let url = Self::with_query(
            self.agent_run_url(run, "spec"),
            &[("action", action.as_str().to_string())],
        );
        self.get(url).await
    }

    /// `POST .../started`: claims the action; the answer carries the claim to send back.
    pub async fn agent_run_started(&self, run: &RunId) -> ClientResult<AgentAnswer> {
        self.agent_run_post(run, "started", &Value::Object(Default::default()), None)
            .await
    }

    /// `POST .../log`: lines of Terraform output.
    pub async fn agent_run_log(&self, run: &RunId, lines: &LogLines, claim: Option<&str>) -> ClientResult<AgentAnswer> {
        self.agent_run_post(run, "log", lines, claim).await
    }

    /// `POST .../heartbeat`: the agent is alive; the answer says whether to cancel.
    pub async fn agent_run_heartbeat(&self, run: &RunId, claim: Option<&str>) -> ClientResult<AgentAnswer> {
        self.agent_run_post(run, "heartbeat", &Value::Object(Default::default()), claim)
            .await
    }

    /// `POST .../finished`: the result of the action.
    pub async fn agent_run_finished(
        &self,
        run: &RunId,
        report: &RunReport,
        claim: Option<&str>,
    ) -> ClientResult<AgentAnswer> {
        self.agent_run_post(run, "finished", report, claim).await
    }

    /// `POST .../release`: hands the action in progress back to the queue (the agent stops).
    pub async fn agent_run_release(&self, run: &RunId, claim: Option<&str>) -> ClientResult<AgentAnswer> {
        self.agent_run_post(run, "release", &Value::Object(Default::default()), claim)
            .await
    }

    /// `GET .../state`: the run's Terraform state as deploy stores it (the `http` backend's
    /// read), `None` when there is none yet.
    pub async fn agent_run_state(&self, run: &RunId) -> ClientResult<Option<String>> {
        let url = self.agent_run_url(run, "state");
        let request = self.request(Method::GET, &url).timeout(CALL_TIMEOUT);
        let response = match self.send(Method::GET, &url, request).await {
            Ok(response) => response,
            Err(err) if err.is_not_found() => return Ok(None),
            Err(err) => return Err(err),
        };
        let text = response.text().await.map_err(|err| ClientError::transport(&url, err))?;
        Ok(Some(text).filter(|text| !text.trim().is_empty()))
    }

    // ---- store ----

    /// `POST /store`: a new deployment, usable by the namespace `ns` too when given.
    pub async fn create_deployment(&self, ns: Option<&str>) -> ClientResult<DeploymentToken> {
        let url = self.url(&["store"]);
        let mut request = self.request(Method::POST, &url).timeout(CALL_TIMEOUT);
        if let Some(ns) = ns {
            request = request.header(NAMESPACE_HEADER, ns);
        }
        let response = self.send(Method::POST, &url, request).await?;
        Self::decode(&url, response).await
    }

    /// `POST /store/{id}/token`: a fresh deployment token.
    pub async fn renew_deployment_token(&self, deployment: &DeploymentId) -> ClientResult<DeploymentToken> {
        self.post(self.url(&["store", deployment.as_str(), "token"]), &Value::Null)
            .await
    }

    /// `GET /store/{id}?filter=`: every key (starting with `prefix`, when given).
    pub async fn store_keys(&self, deployment: &DeploymentId, prefix: Option<&str>) -> ClientResult<DeploymentData> {
        let query: Vec<(&str, String)> = prefix.map(|p| ("filter", p.to_string())).into_iter().collect();
        self.get(Self::with_query(self.url(&["store", deployment.as_str()]), &query))
            .await
    }

    /// `GET /store/{id}/{key}`: the key's value; `wait` asks the server to wait up to that long
    /// for the key to be written (404 when it was not).
    pub async fn store_get(&self, deployment: &DeploymentId, key: &str, wait: Duration) -> ClientResult<String> {
        let mut url = self.url(&["store", deployment.as_str(), key]);
        if !wait.is_zero() {
            url = Self::with_query(url, &[("wait", wait.as_secs().to_string())]);
        }
        let request = self.request(Method::GET, &url).timeout(wait + WAIT_SLACK);
        let response = self.send(Method::GET, &url, request).await?;
        Ok(Self::decode::<KeyValue>(&url, response).await?.value)
    }

    /// `PUT /store/{id}`: writes one key.
    pub async fn store_put(&self, deployment: &DeploymentId, key: &str, value: &str) -> ClientResult<Message> {
        let body = KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        self.put(self.url(&["store", deployment.as_str()]), &body).await
    }

    /// `PUT /store/{id}` with a list: writes every key at once.
    pub async fn store_put_many(&self, deployment: &DeploymentId, values: &[KeyValue]) -> ClientResult<Message> {
        self.put(self.url(&["store", deployment.as_str()]), &JsonBody(values))
            .await
    }

    /// `DELETE /store/{id}`: the deployment and all its keys.
    pub async fn delete_deployment(&self, deployment: &DeploymentId) -> ClientResult<Message> {
        self.delete(self.url(&["store", deployment.as_str()])).await
    }
}

/// A followed run log (server-sent events), read with [`LogFollower::next`].
pub struct LogFollower {
    url: Url,
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buffer: Vec<u8>,
    ended: bool,
}

impl fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFollower").field("url", &self.url.as_str()).finish()
    }
}

impl LogFollower {
    /// The next event; `None` once the stream ended (after [`LogEvent::End`], or when the
    /// server closed it).
    pub async fn next(&mut self) -> ClientResult<Option<LogEvent>> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(block) = take_event_block(&mut self.buffer) {
                if let Some(event) = parse_event(&block) {
                    if matches!(event, LogEvent::End { .. }) {
                        self.ended = true;
                    }
                    return Ok(Some(event));
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(err)) => return Err(ClientError::transport(&self.url, err)),
                None => {
                    self.ended = true;
                    return Ok(None);
                }
            }
        }
    }
}

/// Cuts the first complete event (up to a blank line) off `buffer`. Works on bytes, so a
/// character split between two chunks is decoded only once whole.
fn take_event_block(buffer: &mut Vec<u8>) -> Option<String> {
    let (end, separator) = [b"\n\n".as_slice(), b"\r\n\r\n".as_slice()]
        .iter()
        .filter_map(|separator| {
            buffer
                .windows(separator.len())
                .position(|window| window == *separator)
                .map(|end| (end, separator.len()))
        })
        .min()?;
    let block = String::from_utf8_lossy(&buffer[..end]).replace("\r\n", "\n");
    buffer.drain(..end + separator);
    Some(block)
}

/// One server-sent event: `event:` (default `message`), `data:` lines, `id:`. Comments
/// (keep-alives) give `None`.
fn parse_event(block: &str) -> Option<LogEvent> {
    let mut kind = "message";
    let mut data: Vec<&str> = Vec::new();
    let mut id = None;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value,
            "data" => data.push(value),
            "id" => id = value.parse().ok(),
            _ => {}
        }
    }
    if data.is_empty() && kind == "message" {
        return None;
    }
    Some(match kind {
        "end" => LogEvent::End {
            status: data.join("\n"),
        },
        "error" => LogEvent::Error {
            message: data.join("\n"),
        },
        _ => LogEvent::Lines {
            lines: data.into_iter().map(String::from).collect(),
            next: id,
        },
    })
}

fn page(skip: Option<i64>, limit: Option<i64>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(skip) = skip {
        query.push(("skip", skip.to_string()));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    query
}

fn light_query(light: bool) -> Vec<(&'static str, String)> {
    if light {
        vec![("light", "1".to_string())]
    } else {
        Vec::new()
    }
}

/// Takes `key` out of a `{"<key>": ...}` answer.
fn unwrap_key<T: DeserializeOwned>(url: &Url, answer: Value, key: &str) -> ClientResult<T> {
    let decode = |detail: String| ClientError::Decode {
        url: url.to_string(),
        detail,
    };
    let Value::Object(mut fields) = answer else {
        return Err(decode(format!("expected an object with {key:?}")));
    };
    let value = fields
        .remove(key)
        .ok_or_else(|| decode(format!("no {key:?} in the answer")))?;
    serde_json::from_value(value).map_err(|err| decode(err.to_string()))
}

/// A request body, serialized once (kept object-safe so the call helpers are not generic
/// over the body type).
trait ErasedBody: Sync {
    fn to_value(&self, url: &Url) -> ClientResult<Value>;
}

impl<T: Serialize + Sync> ErasedBody for T {
    fn to_value(&self, url: &Url) -> ClientResult<Value> {
        serde_json::to_value(self).map_err(|err| ClientError::Decode {
            url: url.to_string(),
            detail: format!("cannot encode the request: {err}"),
        })
    }
}

/// Wraps a `?Sized` or borrowed body for [`ErasedBody`].
struct JsonBody<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for JsonBody<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        let client = Client::new("http://example.org/base/").unwrap();
        let url = client.url(&["deploy", "ns", "a/../b", "run"]);
        assert_eq!(url.as_str(), "http://example.org/base/deploy/ns/a%2F..%2Fb/run");
    }

    #[test]
    fn a_bad_base_url_is_refused() {
        assert!(matches!(Client::new("ftp://x"), Err(ClientError::InvalidUrl { .. })));
        assert!(matches!(Client::new("not a url"), Err(ClientError::InvalidUrl { .. })));
    }

    #[test]
    fn debug_never_shows_the_credential() {
        let client = Client::new("http://example.org").unwrap().with_api_key("key-123456");
        assert!(!format!("{client:?}").contains("key-123456"));
        let client = client.with_token("tok-abcdef");
        assert!(!format!("{client:?}").contains("tok-abcdef"));
    }

    #[test]
    fn server_sent_events_are_parsed() {
        let mut buffer =
            b"id: 2\ndata: a\ndata: b\n\n: keep-alive\n\nevent: end\ndata: deploy_success\n\nrest".to_vec();
        let first = take_event_block(&mut buffer).unwrap();
        assert_eq!(
            parse_event(&first),
            Some(LogEvent::Lines {
                lines: vec!["a".into(), "b".into()],
                next: Some(2)
            })
        );
        let comment = take_event_block(&mut buffer).unwrap();
        assert_eq!(parse_event(&comment), None);
        let end = take_event_block(&mut buffer).unwrap();
        assert_eq!(
            parse_event(&end),
            Some(LogEvent::End {
                status: "deploy_success".into()
            })
        );
        assert_eq!(take_event_block(&mut buffer), None);
        assert_eq!(buffer, b"rest");
    }
}
