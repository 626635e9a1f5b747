//! An authenticated client for a command: the cached token when there is one, otherwise a
//! login with the API key (`GET /auth/api`), cached for the next commands. A cached token older
//! than an hour is renewed (`GET /auth/token`) before use, so it never expires under a long
//! command; one the server refuses (expired, or the key changed) is replaced by logging in
//! again.

use super::config::{Paths, Resolved, TokenCache};
use super::error::{CliError, CliResult};
use goterra_client::{CallRecord, Client, Sensitive};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Age after which a cached token is renewed before use (user tokens live a day by default).
const RENEW_AFTER: Duration = Duration::from_secs(3600);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// What every workstation command gets.
pub struct Session {
    pub resolved: Resolved,
    pub paths: Paths,
    pub verbose: bool,
}

impl Session {
    /// A client of the server without credential (`login`, health checks).
    pub fn anonymous(&self) -> CliResult<Client> {
        let client = Client::new(self.resolved.url()?)?;
        Ok(if self.verbose {
            client.with_observer(print_call)
        } else {
            client
        })
    }

    /// A client holding the API key itself.
    pub fn with_api_key(&self) -> CliResult<Client> {
        Ok(self.anonymous()?.with_api_key(self.resolved.apikey()?.expose()))
    }

    /// A fresh token from the API key, cached.
    pub async fn login(&self) -> CliResult<(Client, goterra_client::auth::UserView)> {
        let answer = self.with_api_key()?.login_with_api_key().await?;
        let token = Sensitive::new(answer.token);
        self.remember(&token);
        Ok((self.anonymous()?.with_token(token.expose()), answer.user))
    }

    fn remember(&self, token: &Sensitive<String>) {
        let Some(fingerprint) = self.resolved.fingerprint() else {
            return;
        };
        let mut cache = TokenCache::load(&self.paths);
        cache.put(&self.resolved.profile, fingerprint, token, unix_now());
        if let Err(err) = cache.save(&self.paths) {
            eprintln!("warning: the token is not cached: {err}");
        }
    }

    /// A client with the cached token (renewed when old), or with a new one.
    pub async fn client(&self) -> CliResult<Client> {
        let Some((cached, obtained)) = self.cached_token() else {
            return Ok(self.login().await?.0);
        };
        let client = self.anonymous()?.with_token(cached.expose());
        if unix_now().saturating_sub(obtained) < RENEW_AFTER.as_secs() {
            return Ok(client);
        }
        match client.renew_token().await {
            Ok(renewed) => {
                let token = Sensitive::new(renewed.token);
                self.remember(&token);
                Ok(self.anonymous()?.with_token(token.expose()))
            }
            Err(goterra_client::ClientError::Unauthorized { .. }) => Ok(self.login().await?.0),
            Err(other) => Err(other.into()),
        }
    }

    fn cached_token(&self) -> Option<(Sensitive<String>, u64)> {
        let fingerprint = self.resolved.fingerprint()?;
        TokenCache::load(&self.paths).get(&self.resolved.profile, &fingerprint)
    }

    /// Runs `command` with a client; when the server refuses a cached token, logs in again and
    /// runs it once more (a 401 means the server did nothing).
    pub async fn run<T, F, Fut>(&self, command: F) -> CliResult<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = CliResult<T>>,
    {
        let had_cached = self.cached_token().is_some();
        let client = self.client().await?;
        match command(client).await {
            Err(CliError::Auth(_)) if had_cached => {
                if self.verbose {
                    eprintln!("the cached token was refused: logging in again");
                }
                let (client, _) = self.login().await?;
                command(client).await
            }
            other => other,
        }
    }
}

/// `--verbose`: method, URL, status and time of each call, on stderr. Headers (and so
/// credentials) are never printed; URLs never hold one.
fn print_call(call: &CallRecord) {
    let status = call
        .status
        .map_or_else(|| "no answer".to_string(), |status| status.to_string());
    let _ = writeln!(
        std::io::stderr(),
        "> {} {} -> {} ({} ms)",
        call.method,
        call.url,
        status,
        call.elapsed.as_millis()
    );
}
