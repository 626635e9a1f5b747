//! The first admin: created on first start so that a new platform can be used at once.

use crate::credentials::{MIN_API_KEY_LEN, api_key_hash, new_api_key};
use crate::users::{InsertError, NewUser, Users};
use anyhow::{Context, bail};
use goterra_core::Config;
use goterra_core::service::write_private_file;

pub const ADMIN_UID: &str = "admin";
pub const ADMIN_KEY_FILE: &str = "admin.apikey";

/// With no admin at all, creates `admin` with `GOT_ADMIN_APIKEY`, or with a random key that is
/// printed once and written to `<data-dir>/admin.apikey` (0600). Later starts do nothing.
pub async fn ensure_admin(users: &Users, config: &Config) -> anyhow::Result<()> {
    if users.count_admins().await.context("cannot count admins")? > 0 {
        return Ok(());
    }
    let (api_key, generated) = match &config.admin_apikey {
        Some(key) if key.expose().len() >= MIN_API_KEY_LEN => (key.clone(), false),
        Some(_) => bail!("GOT_ADMIN_APIKEY: must be at least {MIN_API_KEY_LEN} characters"),
        None => (new_api_key(), true),
    };
    let admin = NewUser {
        uid: ADMIN_UID.into(),
        email: String::new(),
        password_hash: None,
        apikey_hash: api_key_hash(api_key.expose()),
        admin: true,
        super_user: true,
        kind: String::new(),
        pub_key: String::new(),
    };
    match users.insert(admin).await {
        Ok(_) => {}
        Err(InsertError::Duplicate) => {
            // Another process won the race, or a non-admin user is called `admin`.
            tracing::warn!("no admin user exists and the uid `admin` is taken; create an admin with the API");
            return Ok(());
        }
        Err(InsertError::Database(err)) => return Err(err).context("cannot create the admin user"),
    }
    if generated {
        let path = config.data_dir.join(ADMIN_KEY_FILE);
        write_private_file(&path, &format!("{}\n", api_key.expose()))?;
        // Printed once, on purpose, on stdout and not in the log stream: this is the one way
        // a newcomer learns the key.
        println!(
            "Created user `admin`. Its API key (shown once, also saved to {}):\n\n    {}\n",
            path.display(),
            api_key.expose()
        );
    } else {
        tracing::info!("created user `admin` with the API key from GOT_ADMIN_APIKEY");
    }
    Ok(())
}
