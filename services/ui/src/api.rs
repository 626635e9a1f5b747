//! The data-access layer: every page reads and writes through the platform's public REST API,
//! as the signed-in user (bearer token), so the services' access rules apply to the UI exactly
//! as to any other client. One method per API call; pages never build URLs of the API.

use crate::model::*;
use crate::session::Session;
use goterra_core::Sensitive;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How an API call failed, as a page needs to know it.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// 401: the token is no longer accepted (expired, user deleted or demoted).
    #[error("not signed in")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Another 4xx: the API's message is for the user (bad input, conflict...).
    #[error("{message}")]
    Rejected { status: u16, message: String },
    /// A 5xx or no answer: the cause is logged, the user gets a generic message.
    #[error("the platform cannot answer")]
    Unavailable,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Arc<str>,
}

/// The API as one user sees it.
pub struct UserApi<'a> {
    api: &'a Api,
    token: &'a str,
}

/// Percent-encodes one path segment (ids come from URLs the user can edit).
fn seg(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Api {
    pub fn new(base: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').into(),
        })
    }

    pub fn as_user<'a>(&'a self, session: &'a Session) -> UserApi<'a> {
        UserApi {
            api: self,
            token: session.token(),
        }
    }

    /// `POST /auth/login`; a wrong uid or password is `Unauthorized`.
    pub async fn login(&self, uid: &str, password: &Sensitive<String>) -> Result<LoginAnswer, ApiFailure> {
        let request = self
            .http
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"uid": uid, "password": password.expose()}));
        decode(request.send().await).await
    }

    /// `GET /auth/api` with an API key: the user and a fresh token.
    pub async fn login_with_key(&self, api_key: &Sensitive<String>) -> Result<LoginAnswer, ApiFailure> {
        let request = self
            .http
            .get(format!("{}/auth/api", self.base))
            .header(goterra_core::auth::API_KEY_HEADER, api_key.expose());
        let answer: ApiKeyLoginAnswer = decode(request.send().await).await?;
        Ok(LoginAnswer {
            token: answer.token,
            user: answer.user,
        })
    }
}

impl UserApi<'_> {
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiFailure> {
        let mut request = self
            .api
            .http
            .request(method, format!("{}{path}", self.api.base))
            .bearer_auth(self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        decode(request.send().await).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiFailure> {
        self.call(Method::GET, path, None).await
    }

    async fn send<B: Serialize>(&self, method: Method, path: &str, body: &B) -> Result<Value, ApiFailure> {
        let body = serde_json::to_value(body).map_err(|err| {
            tracing::error!(%err, "cannot encode a request body");
            ApiFailure::Unavailable
        })?;
        self.call(method, path, Some(&body)).await
    }

    async fn delete(&self, path: &str) -> Result<Value, ApiFailure> {
        self.call(Method::DELETE, path, None).await
    }

    // --- auth -----------------------------------------------------------------------------

    pub async fn me(&self) -> Result<User, ApiFailure> {
        self.get("/auth/me").await
    }

    pub async fn users(&self, skip: u64, limit: u64) -> Result<Vec<User>, ApiFailure> {
        let answer: UsersAnswer = self.get(&format!("/auth/user?skip={skip}&limit={limit}")).await?;
        Ok(answer.users)
    }

    pub async fn user(&self, uid: &str) -> Result<User, ApiFailure> {
        let answer: UserAnswer = self.get(&format!("/auth/user/{}", seg(uid))).await?;
        Ok(answer.user)
    }

    pub async fn update_user(&self, uid: &str, changes: &UpdateUserRequest) -> Result<(), ApiFailure> {
        self.send(Method::PUT, &format!("/auth/user/{}", seg(uid)), changes)
            .await?;
        Ok(())
    }

    pub async fn change_password(
        &self,
        uid: &str,
        current: Option<&Sensitive<String>>,
        new: &Sensitive<String>,
    ) -> Result<(), ApiFailure> {
        let mut body = json!({"password": new.expose()});
        if let Some(current) = current {
            body["current_password"] = json!(current.expose());
        }
        self.send(Method::PUT, &format!("/auth/user/{}/password", seg(uid)), &body)
            .await?;
        Ok(())
    }

    /// A new API key, shown once.
    pub async fn new_api_key(&self, uid: &str) -> Result<Sensitive<String>, ApiFailure> {
        let answer = self
            .send(Method::POST, &format!("/auth/user/{}/apikey", seg(uid)), &json!({}))
            .await?;
        Ok(Sensitive::new(string_field(&answer, "apikey")))
    }

    /// Creates a user; answers its API key, shown once.
    pub async fn register(&self, user: &RegisterRequest) -> Result<Sensitive<String>, ApiFailure> {
        let answer = self.send(Method::POST, "/auth/register", user).await?;
        Ok(Sensitive::new(string_field(&answer, "apikey")))
    }

    pub async fn delete_user(&self, uid: &str) -> Result<(), ApiFailure> {
        self.delete(&format!("/auth/user/{}", seg(uid))).await?;
        Ok(())
    }

    // --- namespaces -----------------------------------------------------------------------

    /// The caller's namespaces; `all` lists every namespace (admins).
    pub async fn namespaces(&self, all: bool) -> Result<Vec<Namespace>, ApiFailure> {
        let path = if all { "/deploy/ns?all=1" } else { "/deploy/ns" };
        let answer: NamespaceList = self.get(path).await?;
        Ok(answer.ns)
    }

    pub async fn namespace(&self, id: &str) -> Result<Namespace, ApiFailure> {
        let answer: NamespaceOne = self.get(&format!("/deploy/ns/{}", seg(id))).await?;
        Ok(answer.ns)
    }

    /// Creates a namespace; answers its id.
    pub async fn create_namespace(&self, name: &str) -> Result<String, ApiFailure> {
        let answer = self.send(Method::POST, "/deploy/ns", &json!({"name": name})).await?;
        Ok(string_field(&answer, "ns"))
    }

    pub async fn update_namespace(&self, namespace: &Namespace) -> Result<(), ApiFailure> {
        let body = json!({
            "name": namespace.name,
            "owners": namespace.owners,
            "members": namespace.members,
            "freeze": namespace.freeze,
        });
        self.send(Method::PUT, &format!("/deploy/ns/{}", seg(&namespace.id)), &body)
            .await?;
        Ok(())
    }

    pub async fn delete_namespace(&self, id: &str) -> Result<(), ApiFailure> {
        self.delete(&format!("/deploy/ns/{}", seg(id))).await?;
        Ok(())
    }

    // --- catalogue ------------------------------------------------------------------------

    /// The objects of kind `K` in namespace `ns`.
    pub async fn catalogue<K: CatalogueKind>(&self, ns: &str) -> Result<Vec<K>, ApiFailure> {
        let answer: Value = self.get(&format!("/deploy/ns/{}/{}", seg(ns), K::SEGMENT)).await?;
        list_field(answer, K::MANY)
    }

    /// The public objects of kind `K` of every namespace.
    pub async fn public_catalogue<K: CatalogueKind>(&self) -> Result<Vec<K>, ApiFailure> {
        let answer: Value = self.get(&format!("/deploy/{}", K::MANY)).await?;
        list_field(answer, K::MANY)
    }

    pub async fn catalogue_item<K: CatalogueKind>(&self, ns: &str, id: &str) -> Result<K, ApiFailure> {
        let mut answer: Value = self
            .get(&format!("/deploy/ns/{}/{}/{}", seg(ns), K::SEGMENT, seg(id)))
            .await?;
        serde_json::from_value(answer[K::ONE].take()).map_err(bad_answer)
    }

    /// Creates an object; answers its id.
    pub async fn create_item<K: CatalogueKind>(&self, ns: &str, item: &Value) -> Result<String, ApiFailure> {
        let answer = self
            .send(Method::POST, &format!("/deploy/ns/{}/{}", seg(ns), K::SEGMENT), item)
            .await?;
        // `{"<kind>": "<id>"}`
        Ok(string_field(&answer, K::ONE))
    }

    pub async fn update_item<K: CatalogueKind>(&self, ns: &str, id: &str, item: &Value) -> Result<(), ApiFailure> {
        self.send(
            Method::PUT,
            &format!("/deploy/ns/{}/{}/{}", seg(ns), K::SEGMENT, seg(id)),
            item,
        )
        .await?;
        Ok(())
    }

    pub async fn delete_item<K: CatalogueKind>(&self, ns: &str, id: &str) -> Result<(), ApiFailure> {
        self.delete(&format!("/deploy/ns/{}/{}/{}", seg(ns), K::SEGMENT, seg(id)))
            .await?;
        Ok(())
    }

    /// Whether the user stored credentials for an endpoint.
    pub async fn has_secret(&self, ns: &str, endpoint: &str) -> Result<bool, ApiFailure> {
        match self
            .get::<Value>(&format!("/deploy/ns/{}/endpoint/{}/secret", seg(ns), seg(endpoint)))
            .await
        {
            Ok(_) => Ok(true),
            Err(ApiFailure::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    pub async fn put_secret(
        &self,
        ns: &str,
        endpoint: &str,
        name: &str,
        password: &Sensitive<String>,
    ) -> Result<(), ApiFailure> {
        let body = json!({"name": name, "password": password.expose()});
        self.send(
            Method::PUT,
            &format!("/deploy/ns/{}/endpoint/{}/secret", seg(ns), seg(endpoint)),
            &body,
        )
        .await?;
        Ok(())
    }

    pub async fn delete_secret(&self, ns: &str, endpoint: &str) -> Result<(), ApiFailure> {
        self.delete(&format!("/deploy/ns/{}/endpoint/{}/secret", seg(ns), seg(endpoint)))
            .await?;
        Ok(())
    }

    /// The user's own defaults for an endpoint (`{var: [values]}`).
    pub async fn endpoint_defaults(&self, ns: &str, endpoint: &str) -> Result<Defaults, ApiFailure> {
        match self
            .get::<EndpointDefaults>(&format!("/deploy/ns/{}/endpoint/{}/defaults", seg(ns), seg(endpoint)))
            .await
        {
            Ok(answer) => Ok(answer.defaults),
            Err(ApiFailure::NotFound(_)) => Ok(Defaults::new()),
            Err(other) => Err(other),
        }
    }

    pub async fn app_inputs(&self, ns: &str, app: &str) -> Result<InputsSummary, ApiFailure> {
        let answer: InputsResponse = self
            .get(&format!("/deploy/ns/{}/app/{}/inputs", seg(ns), seg(app)))
            .await?;
        Ok(answer.app)
    }

    // --- runs -----------------------------------------------------------------------------

    /// Starts a run; answers its id.
    pub async fn start_run(&self, ns: &str, app: &str, request: &RunRequest) -> Result<String, ApiFailure> {
        let answer = self
            .send(
                Method::POST,
                &format!("/deploy/ns/{}/run/{}", seg(ns), seg(app)),
                request,
            )
            .await?;
        Ok(string_field(&answer, "run"))
    }

    /// Checks a run request as a start would, without starting anything: the Terraform files
    /// the agent would write (no secret in them).
    pub async fn preview_run(&self, ns: &str, app: &str, request: &RunRequest) -> Result<Value, ApiFailure> {
        self.send(
            Method::POST,
            &format!("/deploy/ns/{}/run/{}/terraform", seg(ns), seg(app)),
            request,
        )
        .await
    }

    /// The caller's runs (`all`: plus those of the namespaces they own; admins: all).
    pub async fn my_runs(&self, all: bool, skip: u64, limit: u64) -> Result<Vec<Run>, ApiFailure> {
        let all = if all { "&all=1" } else { "" };
        let answer: RunList = self.get(&format!("/deploy/run?skip={skip}&limit={limit}{all}")).await?;
        Ok(answer.runs)
    }

    pub async fn namespace_runs(&self, ns: &str, all: bool, skip: u64, limit: u64) -> Result<Vec<Run>, ApiFailure> {
        let all = if all { "&all=1" } else { "" };
        let answer: RunList = self
            .get(&format!("/deploy/ns/{}/run?skip={skip}&limit={limit}{all}", seg(ns)))
            .await?;
        Ok(answer.runs)
    }

    pub async fn run(&self, ns: &str, id: &str) -> Result<Run, ApiFailure> {
        self.get(&format!("/deploy/ns/{}/run/{}", seg(ns), seg(id))).await
    }

    pub async fn run_log(&self, ns: &str, id: &str, from: i64) -> Result<RunLog, ApiFailure> {
        self.get(&format!("/deploy/ns/{}/run/{}/log?from={from}", seg(ns), seg(id)))
            .await
    }

    /// The live log as server-sent events, passed through to the browser as they come.
    pub async fn follow_run_log(&self, ns: &str, id: &str, from: i64) -> Result<reqwest::Response, ApiFailure> {
        let response = self
            .api
            .http
            .get(format!(
                "{}/deploy/ns/{}/run/{}/log?follow=1&from={from}",
                self.api.base,
                seg(ns),
                seg(id)
            ))
            .bearer_auth(self.token)
            // The stream lasts as long as the action: no overall timeout.
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => Ok(response),
            other => decode::<Value>(other).await.and(Err(ApiFailure::Unavailable)),
        }
    }

    pub async fn destroy_run(
        &self,
        ns: &str,
        id: &str,
        secrets: &BTreeMap<String, Sensitive<String>>,
    ) -> Result<(), ApiFailure> {
        let secretinputs: BTreeMap<&str, &str> =
            secrets.iter().map(|(k, v)| (k.as_str(), v.expose().as_str())).collect();
        let body = json!({ "secretinputs": secretinputs });
        self.send(
            Method::DELETE,
            &format!("/deploy/ns/{}/run/{}", seg(ns), seg(id)),
            &body,
        )
        .await?;
        Ok(())
    }

    pub async fn cancel_run(&self, ns: &str, id: &str) -> Result<(), ApiFailure> {
        self.send(
            Method::POST,
            &format!("/deploy/ns/{}/run/{}/cancel", seg(ns), seg(id)),
            &json!({}),
        )
        .await?;
        Ok(())
    }

    /// The run's keys in the store (`filter`: only keys with this prefix).
    pub async fn store_values(
        &self,
        deployment: &str,
        filter: Option<&str>,
    ) -> Result<BTreeMap<String, String>, ApiFailure> {
        let query = filter.map(|f| format!("?filter={}", seg(f))).unwrap_or_default();
        let answer: DeploymentData = self.get(&format!("/store/{}{query}", seg(deployment))).await?;
        Ok(answer.deployment)
    }

    /// The Terraform resources of a run, from the run agent's state route.
    pub async fn run_resources(&self, ns: &str, id: &str) -> Result<RunResources, ApiFailure> {
        self.get(&format!("/run-agent/ns/{}/run/{}/state", seg(ns), seg(id)))
            .await
    }

    // --- documents ------------------------------------------------------------------------

    /// A service's OpenAPI document.
    pub async fn openapi(&self, service: &str) -> Result<Value, ApiFailure> {
        self.get(&format!("/{}/openapi.json", seg(service))).await
    }

    /// A namespace's usage totals (`GET /acct/ns/{ns}`).
    pub async fn namespace_usage(&self, ns: &str) -> Result<Option<Value>, ApiFailure> {
        self.acct(&format!("/acct/ns/{}", seg(ns))).await
    }

    /// The resources running now, of one namespace or (admins) of all.
    pub async fn running_resources(&self, ns: Option<&str>) -> Result<Option<Value>, ApiFailure> {
        match ns {
            Some(ns) => self.acct(&format!("/acct/resources/ns/{}", seg(ns))).await,
            None => self.acct("/acct/resources").await,
        }
    }

    /// An accounting answer; `None` when acct has no such route (yet) or no data.
    async fn acct(&self, path: &str) -> Result<Option<Value>, ApiFailure> {
        match self.get::<Value>(path).await {
            Ok(value) => Ok(Some(value)),
            Err(ApiFailure::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

fn string_field(value: &Value, name: &str) -> String {
    value.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn list_field<T: DeserializeOwned>(mut answer: Value, name: &str) -> Result<Vec<T>, ApiFailure> {
    match answer.get_mut(name).map(Value::take) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(list) => serde_json::from_value(list).map_err(bad_answer),
    }
}

fn bad_answer(err: serde_json::Error) -> ApiFailure {
    tracing::error!(%err, "the API answered a shape the UI does not know");
    ApiFailure::Unavailable
}

/// Turns an answer into `T` or the failure its status means.
async fn decode<T: DeserializeOwned>(response: reqwest::Result<reqwest::Response>) -> Result<T, ApiFailure> {
    let response = response.map_err(|err| {
        tracing::error!(err = %err.without_url(), "the API did not answer");
        ApiFailure::Unavailable
    })?;
    let status = response.status();
    if status.is_success() {
        let bytes = response.bytes().await.map_err(|err| {
            tracing::error!(err = %err.without_url(), "cannot read an API answer");
            ApiFailure::Unavailable
        })?;
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        return serde_json::from_slice(bytes).map_err(bad_answer);
    }
    let message = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|body| body.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    Err(match status.as_u16() {
        401 => ApiFailure::Unauthorized,
        403 => ApiFailure::Forbidden(message),
        404 => ApiFailure::NotFound(message),
        code @ 400..=499 => ApiFailure::Rejected { status: code, message },
        code => {
            tracing::error!(status = code, %message, "the API failed");
            ApiFailure::Unavailable
        }
    })
}
