//! The `auth_users` table.

use goterra_core::Identity;
use goterra_core::revocation::UserStatus;
use goterra_db::{Db, flag, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

pub const MIGRATIONS: &[goterra_db::Migration] = &[
    goterra_db::Migration {
        id: "auth-0001-users",
        postgres: USERS_TABLE,
        sqlite: USERS_TABLE,
    },
    goterra_db::Migration {
        id: "auth-0002-tokens-not-before",
        postgres: TOKENS_NOT_BEFORE,
        sqlite: TOKENS_NOT_BEFORE,
    },
    crate::identities::MIGRATION,
];

/// Tokens of a user issued at or before this unix second are revoked on every service.
const TOKENS_NOT_BEFORE: &str = "ALTER TABLE auth_users ADD COLUMN tokens_not_before BIGINT NOT NULL DEFAULT 0;";

const USERS_TABLE: &str = "
CREATE TABLE auth_users (
    id TEXT PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    apikey_hash TEXT UNIQUE,
    admin BIGINT NOT NULL DEFAULT 0,
    super_user BIGINT NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT '',
    pub_key TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX auth_users_admin ON auth_users (admin);
";

const COLUMNS: &str = "id, uid, email, password_hash, admin, super_user, kind, pub_key, tokens_not_before";

/// A stored user. The password hash stays inside this crate and never reaches a response.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: String,
    pub uid: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub admin: bool,
    pub super_user: bool,
    pub kind: String,
    pub pub_key: String,
    /// Tokens issued at or before this unix second are revoked.
    pub tokens_not_before: u64,
}

impl UserRecord {
    /// What other services' revocation maps hold about this user.
    pub fn status(&self) -> UserStatus {
        UserStatus {
            uid: self.uid.clone(),
            exists: true,
            admin: self.admin,
            super_user: self.super_user,
            tokens_not_before: self.tokens_not_before,
        }
    }

    pub fn identity(&self) -> Identity {
        Identity {
            uid: self.uid.clone(),
            admin: self.admin,
            super_user: self.super_user,
            email: self.email.clone(),
            kind: self.kind.clone(),
        }
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            uid: row.try_get("uid")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            admin: row.try_get::<i64, _>("admin")? != 0,
            super_user: row.try_get::<i64, _>("super_user")? != 0,
            kind: row.try_get("kind")?,
            pub_key: row.try_get("pub_key")?,
            tokens_not_before: u64::try_from(row.try_get::<i64, _>("tokens_not_before")?).unwrap_or(0),
        })
    }
}

pub struct NewUser {
    pub uid: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub apikey_hash: String,
    pub admin: bool,
    pub super_user: bool,
    pub kind: String,
    pub pub_key: String,
}

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChange {
    pub email: Option<String>,
    pub pub_key: Option<String>,
    pub admin: Option<bool>,
    pub super_user: Option<bool>,
    pub kind: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("user already exists")]
    Duplicate,
    #[error(transparent)]
    Database(sqlx::Error),
}

#[derive(Clone)]
pub struct Users {
    db: Db,
}

fn now() -> i64 {
    i64::try_from(goterra_core::token::unix_now()).unwrap_or(i64::MAX)
}

impl Users {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn insert(&self, user: NewUser) -> Result<String, InsertError> {
        let id = goterra_core::new_id();
        let now = now();
        let result = sqlx::query(
            "INSERT INTO auth_users (id, uid, email, password_hash, apikey_hash, admin, super_user, kind, pub_key, created_at, updated_at, tokens_not_before)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(&user.uid)
        .bind(&user.email)
        .bind(user.password_hash.as_deref())
        .bind(&user.apikey_hash)
        .bind(flag(user.admin))
        .bind(flag(user.super_user))
        .bind(&user.kind)
        .bind(&user.pub_key)
        .bind(now)
        .bind(now)
        // Tokens of an earlier, deleted user of the same uid stay revoked (those issued in the
        // very second of the new user's creation excepted, so that a token made right after
        // creation, by auth or a test, is valid).
        .bind(now.saturating_sub(1))
        .execute(self.db.pool())
        .await;
        match result {
            Ok(_) => Ok(id),
            Err(err) if is_unique_violation(&err) => Err(InsertError::Duplicate),
            Err(err) => Err(InsertError::Database(err)),
        }
    }

    pub async fn by_uid(&self, uid: &str) -> Result<Option<UserRecord>, sqlx::Error> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM auth_users WHERE uid = $1"))
            .bind(uid)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(UserRecord::from_row).transpose()
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<UserRecord>, sqlx::Error> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM auth_users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(UserRecord::from_row).transpose()
    }

    pub async fn by_api_key(&self, api_key: &str) -> Result<Option<UserRecord>, sqlx::Error> {
        if api_key.is_empty() {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM auth_users WHERE apikey_hash = $1"))
            .bind(crate::credentials::api_key_hash(api_key))
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(UserRecord::from_row).transpose()
    }

    pub async fn list(&self, skip: i64, limit: i64) -> Result<Vec<UserRecord>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM auth_users ORDER BY uid LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(skip)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(UserRecord::from_row).collect()
    }

    pub async fn count_admins(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM auth_users WHERE admin = 1")
            .fetch_one(self.db.pool())
            .await
    }

    /// Applies `change` and returns the user after it, or `None` when there is no such user.
    pub async fn update_profile(&self, uid: &str, change: ProfileChange) -> Result<Option<UserRecord>, sqlx::Error> {
        sqlx::query(
            "UPDATE auth_users SET
                email = COALESCE($1, email),
                pub_key = COALESCE($2, pub_key),
                admin = COALESCE($3, admin),
                super_user = COALESCE($4, super_user),
                kind = COALESCE($5, kind),
                updated_at = $6
             WHERE uid = $7",
        )
        .bind(change.email)
        .bind(change.pub_key)
        .bind(change.admin.map(flag))
        .bind(change.super_user.map(flag))
        .bind(change.kind)
        .bind(now())
        .bind(uid)
        .execute(self.db.pool())
        .await?;
        self.by_uid(uid).await
    }

    pub async fn set_password_hash(&self, uid: &str, hash: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE auth_users SET password_hash = $1, updated_at = $2, tokens_not_before = $2 WHERE uid = $3",
        )
        .bind(hash)
        .bind(now())
        .bind(uid)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_api_key_hash(&self, uid: &str, hash: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE auth_users SET apikey_hash = $1, updated_at = $2, tokens_not_before = $2 WHERE uid = $3",
        )
        .bind(hash)
        .bind(now())
        .bind(uid)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The status of each of `uids`, unknown ones as deleted, in the order asked.
    pub async fn statuses(&self, uids: &[String]) -> Result<Vec<UserStatus>, sqlx::Error> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        // The list holds numbered placeholders only; every uid is bound.
        let placeholders: Vec<String> = (1..=uids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM auth_users WHERE uid IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for uid in uids {
            query = query.bind(uid.as_str());
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let found: Vec<UserRecord> = rows.iter().map(UserRecord::from_row).collect::<Result<_, _>>()?;
        Ok(uids
            .iter()
            .map(|uid| {
                found
                    .iter()
                    .find(|user| &user.uid == uid)
                    .map(UserRecord::status)
                    .unwrap_or_else(|| UserStatus::deleted(uid))
            })
            .collect())
    }

    pub async fn delete(&self, uid: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM auth_users WHERE uid = $1")
            .bind(uid)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
