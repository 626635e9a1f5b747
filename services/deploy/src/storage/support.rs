//! What every repository shares: the error, paging, row decoding, the clock.

use sqlx::Row;
use sqlx::any::AnyRow;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The row does not exist (`what` names it: "run", "namespace"...).
    #[error("{0} not found")]
    Missing(&'static str),
    /// A unique constraint refused the write (a duplicate name, say).
    #[error("a row with the same key already exists")]
    Duplicate,
    /// A foreign key refused the write: a referenced row is gone, or the row is still used.
    #[error("a referenced row is missing or the row is still referenced")]
    Referenced,
    /// A stored value cannot be decoded (or a value cannot be encoded for storage).
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        if goterra_db::is_unique_violation(&err) {
            Self::Duplicate
        } else if goterra_db::is_foreign_key_violation(&err) {
            Self::Referenced
        } else {
            Self::Database(err)
        }
    }
}

impl From<serde_json::Error> for StorageError {
    fn from(err: serde_json::Error) -> Self {
        Self::Corrupt(err.to_string())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A page of a list: both bound as parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub skip: i64,
    pub limit: i64,
}

impl Page {
    /// Everything (lists that are not paged).
    pub const ALL: Page = Page {
        skip: 0,
        limit: i32::MAX as i64,
    };

    pub fn new((skip, limit): (i64, i64)) -> Self {
        Self { skip, limit }
    }
}

/// A column of a row, decoding errors as [`StorageError::Database`].
pub(super) fn column<T>(row: &AnyRow, name: &str) -> StorageResult<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    Ok(row.try_get(name)?)
}

/// A text column holding an id, typed.
pub(super) fn id_column<I: goterra_client::ids::TypedId>(row: &AnyRow, name: &str) -> StorageResult<I> {
    Ok(I::from_trusted(column::<String>(row, name)?))
}

/// `$from, $from+1, ...` for `count` values bound in a list.
pub(super) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Unix seconds, for the time columns.
pub fn now() -> i64 {
    i64::try_from(goterra_core::token::unix_now()).unwrap_or(i64::MAX)
}
