//! The data-access layer: every page reads and writes through the platform's public REST API
//! with goterra-client's typed [`Client`], as the signed-in user (bearer token), so the
//! services' access rules apply to the UI exactly as to any other client. Pages pass the ids
//! they got from their URL; this layer types them and maps the client's errors to what a page
//! must tell apart.

use crate::model::*;
use crate::session::Session;
use goterra_client::runs::RunStatus;
use goterra_client::{ApplicationId, Client, ClientError, DeploymentId, LogEvent, NamespaceId, RunId, Uid};
use goterra_core::Sensitive;
use serde_json::Value;
use std::collections::BTreeMap;
use std::str::FromStr;

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
    /// 429: too many attempts (failed logins); wait `retry_after_secs` when known.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// Another 4xx: the API's message is for the user (bad input, conflict...).
    #[error("{message}")]
    Rejected { status: u16, message: String },
    /// A 5xx or no answer: the cause is logged, the user gets a generic message.
    #[error("the platform cannot answer")]
    Unavailable,
}

impl From<ClientError> for ApiFailure {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Unauthorized { .. } => Self::Unauthorized,
            ClientError::TooManyRequests {
                message,
                retry_after_secs,
            } => Self::Throttled {
                message,
                retry_after_secs,
            },
            ClientError::Server { status: 403, message } => Self::Forbidden(message),
            ClientError::Server { status: 404, message } => Self::NotFound(message),
            ClientError::Server { status, message } if (400..500).contains(&status) => {
                Self::Rejected { status, message }
            }
            other => {
                tracing::error!(err = %other, "an API call failed");
                Self::Unavailable
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiFailure>;

/// An id from a URL: one that cannot be an id names nothing.
fn id<T: FromStr>(text: &str) -> ApiResult<T> {
    T::from_str(text).map_err(|_| ApiFailure::NotFound(format!("no object {text:?}")))
}

fn core_secret(secret: Sensitive<String>) -> goterra_client::Sensitive<String> {
    goterra_client::Sensitive::new(secret.into_inner())
}

#[derive(Clone)]
pub struct Api {
    client: Client,
}

/// The API as one user sees it.
pub struct UserApi {
    client: Client,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: Client::new(base)?,
        })
    }

    pub fn as_user(&self, session: &Session) -> UserApi {
        // Clones share the HTTP connection pool.
        UserApi {
            client: self.client.clone().with_token(session.token()),
        }
    }

    /// `POST /auth/login` for the browser at `client`; a wrong uid or password is
    /// `Unauthorized`. Auth counts failed logins per client address: naming the browser's
    /// address keeps one user's failures from throttling every user of the UI.
    pub async fn login(
        &self,
        uid: &str,
        password: Sensitive<String>,
        client: Option<std::net::IpAddr>,
    ) -> ApiResult<LoginAnswer> {
        let uid: Uid = id(uid).map_err(|_| ApiFailure::Unauthorized)?;
        let answer = self
            .client
            .clone()
            .with_forwarded_for(client)
            .login(&uid, &core_secret(password))
            .await?;
        Ok(answer)
    }

    /// `GET /auth/api` with an API key: the user and a fresh token.
    pub async fn login_with_key(&self, api_key: Sensitive<String>) -> ApiResult<LoginAnswer> {
        let answer = self
            .client
            .clone()
            .with_api_key(api_key.into_inner())
            .login_with_api_key()
            .await?;
        Ok(LoginAnswer {
            token: answer.token,
            user: answer.user,
        })
    }
}

impl Api {
    /// Relays an identity provider's redirect to auth's callback with the browser's flow
    /// cookie; with the signed-in user's session, a linking flow links to that user.
    pub async fn oidc_callback(
        &self,
        provider: &str,
        query: &[(String, String)],
        flow_cookie: &str,
        session: Option<&Session>,
    ) -> ApiResult<goterra_client::auth::OidcLoginAnswer> {
        let client = match session {
            Some(session) => self.client.clone().with_token(session.token()),
            None => self.client.clone(),
        };
        Ok(client.oidc_callback(provider, query, flow_cookie).await?)
    }
}

impl UserApi {
    // --- auth -----------------------------------------------------------------------------

    pub async fn identities(&self, uid: &str) -> ApiResult<Vec<goterra_client::auth::IdentityView>> {
        Ok(self.client.identities(&id(uid)?).await?)
    }

    /// Starts linking an identity: the provider URL and the flow cookie for the browser.
    pub async fn start_identity_link(&self, uid: &str, provider: &str) -> ApiResult<(String, Option<String>)> {
        let request = goterra_client::auth::LinkIdentityRequest {
            provider: provider.to_string(),
            via: goterra_client::auth::OidcReturn::App,
        };
        let (answer, cookie) = self.client.start_identity_link(&id(uid)?, &request).await?;
        Ok((answer.location, cookie))
    }

    pub async fn unlink_identity(&self, uid: &str, provider: &str) -> ApiResult<()> {
        self.client.unlink_identity(&id(uid)?, provider).await?;
        Ok(())
    }

    pub async fn me(&self) -> ApiResult<User> {
        Ok(self.client.me().await?)
    }

    pub async fn users(&self, skip: u64, limit: u64) -> ApiResult<Vec<User>> {
        let (skip, limit) = (i64::try_from(skip).ok(), i64::try_from(limit).ok());
        Ok(self.client.users(skip, limit).await?)
    }

    pub async fn user(&self, uid: &str) -> ApiResult<User> {
        Ok(self.client.user(&id(uid)?).await?)
    }

    pub async fn update_user(&self, uid: &str, changes: &UpdateUserRequest) -> ApiResult<()> {
        self.client.update_user(&id(uid)?, changes).await?;
        Ok(())
    }

    pub async fn change_password(
        &self,
        uid: &str,
        current: Sensitive<String>,
        new: Sensitive<String>,
    ) -> ApiResult<()> {
        let request = goterra_client::auth::PasswordRequest {
            password: new.into_inner(),
            current_password: Some(current.into_inner()),
        };
        self.client.change_password(&id(uid)?, &request).await?;
        Ok(())
    }

    /// A new API key, shown once.
    pub async fn new_api_key(&self, uid: &str) -> ApiResult<Sensitive<String>> {
        let key = self.client.regenerate_api_key(&id(uid)?).await?;
        Ok(Sensitive::new(key.into_inner()))
    }

    /// Creates a user; answers its API key, shown once.
    pub async fn register(&self, user: &RegisterRequest) -> ApiResult<Sensitive<String>> {
        let answer = self.client.register(user).await?;
        Ok(Sensitive::new(answer.apikey))
    }

    pub async fn delete_user(&self, uid: &str) -> ApiResult<()> {
        self.client.delete_user(&id(uid)?).await?;
        Ok(())
    }

    // --- namespaces -----------------------------------------------------------------------

    /// The caller's namespaces; `all` lists every namespace (admins).
    pub async fn namespaces(&self, all: bool) -> ApiResult<Vec<Namespace>> {
        Ok(self.client.namespaces(all).await?)
    }

    pub async fn namespace(&self, ns: &str) -> ApiResult<Namespace> {
        Ok(self.client.namespace(&id(ns)?).await?)
    }

    /// Creates a namespace; answers its id.
    pub async fn create_namespace(&self, name: &str) -> ApiResult<String> {
        Ok(self.client.create_namespace(name).await?.into_string())
    }

    pub async fn update_namespace(&self, namespace: &Namespace) -> ApiResult<()> {
        let patch = goterra_client::deploy::NamespacePatch {
            name: Some(namespace.name.clone()),
            owners: Some(namespace.owners.clone()),
            members: Some(namespace.members.clone()),
            freeze: Some(namespace.freeze),
        };
        self.client.update_namespace(&id(&namespace.id)?, &patch).await?;
        Ok(())
    }

    pub async fn delete_namespace(&self, ns: &str) -> ApiResult<()> {
        Ok(self.client.delete_namespace(&id(ns)?).await?)
    }

    // --- catalogue ------------------------------------------------------------------------

    /// The objects of kind `K` in namespace `ns`.
    pub async fn catalogue<K: CatalogueKind>(&self, ns: &str) -> ApiResult<Vec<K>> {
        Ok(self.client.list_items::<K>(&id(ns)?, false).await?)
    }

    /// The public objects of kind `K` of every namespace.
    pub async fn public_catalogue<K: CatalogueKind>(&self) -> ApiResult<Vec<K>> {
        Ok(self.client.list_public_items::<K>(false).await?)
    }

    pub async fn catalogue_item<K: CatalogueKind>(&self, ns: &str, item: &str) -> ApiResult<K> {
        Ok(self.client.get_item::<K>(&id(ns)?, &id(item)?).await?)
    }

    /// Creates an object from the form's JSON; answers its id.
    pub async fn create_item<K: CatalogueKind>(&self, ns: &str, item: &Value) -> ApiResult<String> {
        Ok(self.client.create_item::<K>(&id(ns)?, item).await?.to_string())
    }

    /// Changes the fields the form has (the API merges them into the stored object).
    pub async fn update_item<K: CatalogueKind>(&self, ns: &str, item_id: &str, item: &Value) -> ApiResult<()> {
        self.client.update_item::<K>(&id(ns)?, &id(item_id)?, item).await?;
        Ok(())
    }

    pub async fn delete_item<K: CatalogueKind>(&self, ns: &str, item: &str) -> ApiResult<()> {
        Ok(self.client.delete_item::<K>(&id(ns)?, &id(item)?).await?)
    }

    /// Whether the user stored credentials for an endpoint.
    pub async fn has_secret(&self, ns: &str, endpoint: &str) -> ApiResult<bool> {
        match self.client.endpoint_secret(&id(ns)?, &id(endpoint)?).await {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn put_secret(&self, ns: &str, endpoint: &str, name: &str, password: Sensitive<String>) -> ApiResult<()> {
        let secret = goterra_client::deploy::SecretRequest {
            name: name.to_string(),
            password: core_secret(password),
        };
        self.client
            .set_endpoint_secret(&id(ns)?, &id(endpoint)?, &secret)
            .await?;
        Ok(())
    }

    pub async fn delete_secret(&self, ns: &str, endpoint: &str) -> ApiResult<()> {
        self.client.delete_endpoint_secret(&id(ns)?, &id(endpoint)?).await?;
        Ok(())
    }

    /// The user's own defaults for an endpoint (`{var: [values]}`).
    pub async fn endpoint_defaults(&self, ns: &str, endpoint: &str) -> ApiResult<Defaults> {
        match self.client.endpoint_defaults(&id(ns)?, &id(endpoint)?).await {
            Ok(answer) => Ok(answer.defaults),
            Err(err) if err.is_not_found() => Ok(Defaults::new()),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn app_inputs(&self, ns: &str, app: &str) -> ApiResult<InputsSummary> {
        let app: ApplicationId = id(app)?;
        Ok(self.client.app_inputs(&id(ns)?, &app).await?)
    }

    // --- runs -----------------------------------------------------------------------------

    /// Checks a run request as a start would, without starting anything: the Terraform the
    /// agent would apply (no secret in it).
    pub async fn preview_run(&self, ns: &str, app: &str, request: &RunRequest) -> ApiResult<String> {
        let preview = self.client.preview_run(&id(ns)?, &id(app)?, request).await?;
        Ok(preview.app_tf)
    }

    /// Starts a run; answers its id.
    pub async fn start_run(&self, ns: &str, app: &str, request: &RunRequest) -> ApiResult<String> {
        Ok(self
            .client
            .create_run(&id(ns)?, &id(app)?, request)
            .await?
            .into_string())
    }

    /// The caller's runs (`all`: plus those of the namespaces they own; admins: all) in one
    /// of `statuses` (empty: any), one page of them.
    pub async fn my_runs(&self, all: bool, statuses: &[RunStatus], skip: u64, limit: u64) -> ApiResult<Vec<Run>> {
        let (skip, limit) = (i64::try_from(skip).ok(), i64::try_from(limit).ok());
        Ok(self.client.runs_in_status(None, all, statuses, skip, limit).await?)
    }

    pub async fn namespace_runs(
        &self,
        ns: &str,
        all: bool,
        statuses: &[RunStatus],
        skip: u64,
        limit: u64,
    ) -> ApiResult<Vec<Run>> {
        let (skip, limit) = (i64::try_from(skip).ok(), i64::try_from(limit).ok());
        Ok(self
            .client
            .runs_in_status(Some(&id(ns)?), all, statuses, skip, limit)
            .await?)
    }

    pub async fn run(&self, ns: &str, run: &str) -> ApiResult<Run> {
        let run: RunId = id(run)?;
        Ok(self.client.run(&id(ns)?, &run).await?)
    }

    pub async fn run_log(&self, ns: &str, run: &str, from: i64) -> ApiResult<RunLog> {
        let run: RunId = id(run)?;
        Ok(self.client.run_log(&id(ns)?, &run, from).await?)
    }

    /// The live log: lines as they are written, until the action ends.
    pub async fn follow_run_log(&self, ns: &str, run: &str, from: i64) -> ApiResult<LogStream> {
        let run: RunId = id(run)?;
        Ok(LogStream(self.client.follow_run_log(&id(ns)?, &run, from).await?))
    }

    pub async fn destroy_run(
        &self,
        ns: &str,
        run: &str,
        secrets: BTreeMap<String, Sensitive<String>>,
    ) -> ApiResult<()> {
        let run: RunId = id(run)?;
        let ns: NamespaceId = id(ns)?;
        if secrets.is_empty() {
            self.client.destroy_run(&ns, &run).await?;
        } else {
            let secrets = secrets
                .into_iter()
                .map(|(name, value)| (name, core_secret(value)))
                .collect();
            self.client.destroy_run_with_credentials(&ns, &run, &secrets).await?;
        }
        Ok(())
    }

    pub async fn cancel_run(&self, ns: &str, run: &str) -> ApiResult<()> {
        let run: RunId = id(run)?;
        self.client.cancel_run(&id(ns)?, &run).await?;
        Ok(())
    }

    /// The run's keys in the store.
    pub async fn store_values(&self, deployment: &str) -> ApiResult<BTreeMap<String, String>> {
        let deployment: DeploymentId = id(deployment)?;
        Ok(self.client.store_keys(&deployment, None).await?.deployment)
    }

    /// The Terraform resources of a run, from the run agent's state route.
    pub async fn run_resources(&self, ns: &str, run: &str) -> ApiResult<RunResources> {
        let run: RunId = id(run)?;
        Ok(self.client.run_resources(&id(ns)?, &run).await?)
    }

    // --- documents ------------------------------------------------------------------------

    /// A service's OpenAPI document.
    pub async fn openapi(&self, service: &str) -> ApiResult<Value> {
        Ok(self.client.openapi_document(service).await?)
    }

    /// A namespace's usage totals (`GET /acct/ns/{ns}`); `None` until acct answers.
    pub async fn namespace_usage(&self, ns: &str) -> ApiResult<Option<Value>> {
        acct_answer(self.client.get_json(&["acct", "ns", ns]).await)
    }

    /// The resources running now, of one namespace or (admins) of all.
    pub async fn running_resources(&self, ns: Option<&str>) -> ApiResult<Option<Value>> {
        let answer = match ns {
            Some(ns) => self.client.get_json(&["acct", "resources", "ns", ns]).await,
            None => self.client.get_json(&["acct", "resources"]).await,
        };
        acct_answer(answer)
    }
}

/// An accounting answer; `None` when acct has no such route (yet).
fn acct_answer(answer: Result<Value, ClientError>) -> ApiResult<Option<Value>> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// A followed run log.
pub struct LogStream(goterra_client::LogFollower);

impl LogStream {
    pub async fn next(&mut self) -> Option<LogEvent> {
        match self.0.next().await {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(%err, "the run log stream broke off");
                None
            }
        }
    }
}
