//! Profiles (`$XDG_CONFIG_HOME/goterra/config.toml`) and the token cache
//! (`$XDG_CACHE_HOME/goterra/tokens.toml`), both written with mode 0600.
//!
//! ```toml
//! active = "default"
//!
//! [profiles.default]
//! url = "https://goterra.example.org"
//! apikey = "..."
//! ```
//!
//! `GOT_URL` and `GOT_APIKEY` (or `--url`/`--apikey`) override the profile. Tokens are cached
//! per profile with a fingerprint of the URL and key they were obtained with, so a changed key
//! or server never reuses an old token.

use super::error::{CliError, CliResult, failed};
use goterra_client::Sensitive;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_PROFILE: &str = "default";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// The profile used without `--profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub apikey: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .field("apikey", &"***")
            .finish()
    }
}

/// Where the files are (overridable by the XDG variables, as tests do).
#[derive(Clone, Debug)]
pub struct Paths {
    pub config: PathBuf,
    pub tokens: PathBuf,
}

impl Paths {
    pub fn locate() -> CliResult<Self> {
        let config_dir = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(dirs::config_dir)
            .ok_or_else(|| failed("cannot find a configuration directory: set XDG_CONFIG_HOME or HOME"))?;
        let cache_dir = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(dirs::cache_dir)
            .unwrap_or_else(|| config_dir.clone());
        Ok(Self {
            config: config_dir.join("goterra").join("config.toml"),
            tokens: cache_dir.join("goterra").join("tokens.toml"),
        })
    }
}

fn read_toml<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> CliResult<T> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|err| failed(format!("{} is not valid: {err}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(err) => Err(failed(format!("cannot read {}: {err}", path.display()))),
    }
}

/// Writes `value` to `path` with mode 0600 (the directory 0700), through a temporary file so
/// a crash never leaves half a file.
fn write_toml<T: Serialize>(path: &Path, value: &T) -> CliResult<()> {
    let text =
        toml::to_string_pretty(value).map_err(|err| failed(format!("cannot encode {}: {err}", path.display())))?;
    let cannot = |err: std::io::Error| failed(format!("cannot write {}: {err}", path.display()));
    let dir = path
        .parent()
        .ok_or_else(|| failed(format!("{} has no directory", path.display())))?;
    std::fs::create_dir_all(dir).map_err(cannot)?;
    let temporary = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(0o600);
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let mut file = options.open(&temporary).map_err(cannot)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(cannot)?;
        }
        file.write_all(text.as_bytes()).map_err(cannot)?;
        file.sync_all().map_err(cannot)?;
    }
    std::fs::rename(&temporary, path).map_err(cannot)
}

impl ConfigFile {
    pub fn load(paths: &Paths) -> CliResult<Self> {
        read_toml(&paths.config)
    }

    pub fn save(&self, paths: &Paths) -> CliResult<()> {
        write_toml(&paths.config, self)
    }

    /// `--profile`, else the active profile, else `default`.
    pub fn profile_name(&self, requested: Option<&str>) -> String {
        requested
            .map(str::to_string)
            .or_else(|| self.active.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_string())
    }
}

/// The URL and key a command uses, and where each came from (for `config`).
#[derive(Clone, Debug)]
pub struct Resolved {
    pub profile: String,
    pub url: Option<String>,
    pub url_from: &'static str,
    pub apikey: Option<Sensitive<String>>,
    pub apikey_from: &'static str,
}

impl Resolved {
    /// Flags and environment (`--url`/`GOT_URL`, `--apikey`/`GOT_APIKEY`, read by clap) win
    /// over the profile.
    pub fn new(file: &ConfigFile, profile: String, url: Option<&str>, apikey: Option<&str>) -> Self {
        let stored = file.profiles.get(&profile);
        let non_empty = |value: Option<&str>| value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let (url, url_from) = match non_empty(url) {
            Some(url) => (Some(url), "--url or GOT_URL"),
            None => (non_empty(stored.map(|p| p.url.as_str())), "profile"),
        };
        let (apikey, apikey_from) = match non_empty(apikey) {
            Some(key) => (Some(key), "--apikey or GOT_APIKEY"),
            None => (non_empty(stored.map(|p| p.apikey.as_str())), "profile"),
        };
        Self {
            profile,
            url,
            url_from,
            apikey: apikey.map(Sensitive::new),
            apikey_from,
        }
    }

    pub fn url(&self) -> CliResult<&str> {
        self.url.as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "no server URL for profile {:?}: run `goterra-cli login --url URL`, or set GOT_URL",
                self.profile
            ))
        })
    }

    pub fn apikey(&self) -> CliResult<&Sensitive<String>> {
        self.apikey.as_ref().ok_or_else(|| {
            CliError::Auth(format!(
                "no API key for profile {:?}: run `goterra-cli login`, or set GOT_APIKEY",
                self.profile
            ))
        })
    }

    /// Identifies the (URL, key) pair a cached token belongs to, without storing the key.
    pub fn fingerprint(&self) -> Option<String> {
        let url = self.url.as_deref()?;
        let key = self.apikey.as_ref()?;
        let mut digest = Sha256::new();
        digest.update(url.trim_end_matches('/').as_bytes());
        digest.update([0]);
        digest.update(key.expose().as_bytes());
        Some(hex::encode(&digest.finalize()[..16]))
    }
}

/// Cached user tokens, per profile.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenCache {
    pub tokens: BTreeMap<String, CachedToken>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CachedToken {
    pub fingerprint: String,
    pub token: String,
    /// When the token was obtained (unix seconds).
    pub obtained: u64,
}

impl TokenCache {
    pub fn load(paths: &Paths) -> Self {
        // A damaged cache only costs a login.
        read_toml(&paths.tokens).unwrap_or_default()
    }

    pub fn save(&self, paths: &Paths) -> CliResult<()> {
        write_toml(&paths.tokens, self)
    }

    /// The profile's token, if it was obtained with the same URL and key, and when.
    pub fn get(&self, profile: &str, fingerprint: &str) -> Option<(Sensitive<String>, u64)> {
        self.tokens
            .get(profile)
            .filter(|cached| cached.fingerprint == fingerprint && !cached.token.is_empty())
            .map(|cached| (Sensitive::new(cached.token.clone()), cached.obtained))
    }

    pub fn put(&mut self, profile: &str, fingerprint: String, token: &Sensitive<String>, obtained: u64) {
        self.tokens.insert(
            profile.to_string(),
            CachedToken {
                fingerprint,
                token: token.expose().clone(),
                obtained,
            },
        );
    }

    pub fn forget(&mut self, profile: &str) -> bool {
        self.tokens.remove(profile).is_some()
    }
}
