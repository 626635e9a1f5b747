//! The HTTP edge of deploy's errors: storage and crypto failures become the JSON error body
//! here, once. A handler that knows better (a duplicate name is a 409 naming the field) matches
//! the [`StorageError`] itself before this fallback.

use crate::crypto::CryptoError;
use crate::storage::StorageError;
use goterra_core::ApiError;

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Missing(what) => ApiError::not_found(format!("{what} not found")),
            StorageError::Duplicate => ApiError::conflict("an object with this name already exists"),
            StorageError::Referenced => {
                ApiError::conflict("a referenced object was deleted meanwhile, or this one is still used")
            }
            err @ (StorageError::Corrupt(_) | StorageError::Database(_)) => ApiError::internal(err),
        }
    }
}

impl From<CryptoError> for ApiError {
    fn from(err: CryptoError) -> Self {
        ApiError::internal(err)
    }
}
