//! What a key and a value may be.

use goterra_core::ApiError;

pub const MAX_KEY_LEN: usize = 256;
/// Longest wait a reader may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 600;

/// Keys are 1 to 256 characters of `[A-Za-z0-9_.:@-]`.
pub fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(format!(
            "key: must be 1 to {MAX_KEY_LEN} characters long"
        )));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')))
    {
        return Err(ApiError::bad_request(format!(
            "key: character {bad:?} is not allowed; use letters, digits and _ . : @ -"
        )));
    }
    Ok(())
}

/// Values are strings of at most `max_len` bytes, without NUL characters (which not every
/// backend can store; binary data is sent base64-encoded, as `goterra-cli` does).
pub fn validate_value(key: &str, value: &str, max_len: usize) -> Result<(), ApiError> {
    if value.len() > max_len {
        return Err(ApiError::too_large(format!(
            "value of key {key:?} is {} bytes, the limit is {max_len} bytes (GOT_STORE_MAX_VALUE)",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "value of key {key:?} contains a NUL character; send binary data base64-encoded"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in ["a", "status_app_x_host-1", "user@host:1.2", &"k".repeat(256)] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", "k?", &"k".repeat(257)] {
            assert!(matches!(validate_key(bad), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }

    #[test]
    fn values() {
        assert!(validate_value("k", "", 4).is_ok());
        assert!(validate_value("k", "abcd", 4).is_ok());
        assert!(matches!(validate_value("k", "abcde", 4), Err(ApiError::TooLarge(_))));
        assert!(matches!(validate_value("k", "a\0b", 4), Err(ApiError::BadRequest(_))));
    }
}
