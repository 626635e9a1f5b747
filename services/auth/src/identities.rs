//! The `auth_identities` table: accounts at OpenID Connect providers, keyed by (provider,
//! `sub`), each linked to one local user. A login through a provider finds its user here and
//! nowhere else: an identity is never matched to a user by uid or email.

use goterra_client::auth::IdentityView;
use goterra_db::{Db, is_unique_violation};
use sqlx::Row;

pub const MIGRATION: goterra_db::Migration = goterra_db::Migration {
    id: "auth-0003-identities",
    postgres: IDENTITIES_TABLE,
    sqlite: IDENTITIES_TABLE,
};

const IDENTITIES_TABLE: &str = "
CREATE TABLE auth_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX auth_identities_user ON auth_identities (user_id);
";

pub struct NewIdentity<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub issuer: &'a str,
    pub email: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("this identity is already linked to an account")]
    Taken,
    #[error(transparent)]
    Database(sqlx::Error),
}

#[derive(Clone)]
pub struct Identities {
    db: Db,
}

impl Identities {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The id (not the uid) of the user linked to this identity.
    pub async fn user_of(&self, provider: &str, subject: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT user_id FROM auth_identities WHERE provider = $1 AND subject = $2")
            .bind(provider)
            .bind(subject)
            .fetch_optional(self.db.pool())
            .await
    }

    pub async fn link(&self, user_id: &str, identity: NewIdentity<'_>) -> Result<(), LinkError> {
        let result = sqlx::query(
            "INSERT INTO auth_identities (provider, subject, user_id, issuer, email, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(identity.provider)
        .bind(identity.subject)
        .bind(user_id)
        .bind(identity.issuer)
        .bind(identity.email)
        .bind(i64::try_from(goterra_core::token::unix_now()).unwrap_or(i64::MAX))
        .execute(self.db.pool())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_unique_violation(&err) => Err(LinkError::Taken),
            Err(err) => Err(LinkError::Database(err)),
        }
    }

    pub async fn of_user(&self, user_id: &str) -> Result<Vec<IdentityView>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT provider, subject, email, created_at FROM auth_identities WHERE user_id = $1 ORDER BY provider, subject",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(IdentityView {
                    provider: row.try_get("provider")?,
                    subject: row.try_get("subject")?,
                    email: row.try_get("email")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Unlinks every identity of `provider` from the user; answers how many were.
    pub async fn unlink(&self, user_id: &str, provider: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM auth_identities WHERE user_id = $1 AND provider = $2")
            .bind(user_id)
            .bind(provider)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Called when the user is deleted: a later user of the same uid must not inherit them.
    pub async fn unlink_all(&self, user_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM auth_identities WHERE user_id = $1")
            .bind(user_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
