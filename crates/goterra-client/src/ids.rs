//! Typed ids, so that a run id cannot be passed where a namespace id is expected, and the
//! generator of new ids.
//!
//! Every id is a string on the wire (`#[serde(transparent)]`). New ids are shaped like MongoDB
//! ObjectIDs — 24 lowercase hex characters: a 4-byte big-endian unix time and 8 random bytes
//! from the OS generator — because the original Go clients (built on goterra-lib) decode ids as
//! ObjectIDs and see empty lists when given anything else. Ids created before (32 hex
//! characters), names the original let users choose (`Uid`) and deployment ids reported by a
//! template stay valid: parsing only refuses what cannot be an id in a URL path segment.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest id accepted (ids are path segments and database keys, never documents).
pub const MAX_ID_LEN: usize = 128;

/// A new id: 24 lowercase hex characters, 4-byte big-endian unix time then 8 random bytes.
pub fn new_object_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    // ObjectIDs hold the time in 32 bits; past 2106 it wraps, as in the original.
    let time = (seconds & u64::from(u32::MAX)) as u32;
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&time.to_be_bytes());
    rand::rngs::OsRng.fill_bytes(&mut bytes[4..]);
    hex::encode(bytes)
}

/// True for ids shaped like an ObjectID (24 lowercase hex characters).
pub fn is_object_id(text: &str) -> bool {
    text.len() == 24 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a text is not an id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id cannot be empty")]
    Empty,
    #[error("an id is at most {MAX_ID_LEN} characters long")]
    TooLong,
    #[error("an id cannot contain {0:?}")]
    BadCharacter(char),
}

fn check(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    if text.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    match text
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%' | '\\'))
    {
        Some(bad) => Err(IdError::BadCharacter(bad)),
        None => Ok(()),
    }
}

/// What every typed id offers, for code generic over the kind of object (the catalogue).
pub trait TypedId:
    Clone + fmt::Debug + fmt::Display + AsRef<str> + FromStr<Err = IdError> + Send + Sync + 'static
{
    /// Wraps a text known to be an id (read back from storage or from an answer).
    fn from_trusted(text: impl Into<String>) -> Self;

    fn as_str(&self) -> &str {
        self.as_ref()
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id (see [`new_object_id`]).
            pub fn generate() -> Self {
                Self(new_object_id())
            }

            /// Wraps a text known to be an id (read back from storage or from an answer).
            pub fn from_trusted(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TypedId for $name {
            fn from_trusted(text: impl Into<String>) -> Self {
                Self(text.into())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                check(text)?;
                Ok(Self(text.to_string()))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

typed_id!(
    /// A namespace's id (`_id` of a namespace).
    NamespaceId
);
typed_id!(
    /// A run's id.
    RunId
);
typed_id!(
    /// A user's id: the login name.
    Uid
);
typed_id!(
    /// A store deployment's id (a run's `deployment`).
    DeploymentId
);
typed_id!(
    /// An endpoint's id.
    EndpointId
);
typed_id!(
    /// A recipe's id.
    RecipeId
);
typed_id!(
    /// A template's id.
    TemplateId
);
typed_id!(
    /// An application's id.
    ApplicationId
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn new_ids_are_object_ids_with_the_current_time_first() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let id = RunId::generate();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(is_object_id(id.as_str()), "{id}");
        let time = u64::from(u32::from_str_radix(&id.as_str()[..8], 16).unwrap());
        assert!((before..=after).contains(&time), "{time} not in {before}..={after}");
        assert_ne!(RunId::generate(), RunId::generate(), "8 random bytes differ");
    }

    #[test]
    fn older_ids_and_names_still_parse_and_bad_text_does_not() {
        let old = "0123456789abcdef0123456789abcdef";
        assert_eq!(old.parse::<NamespaceId>().unwrap().as_str(), old);
        assert!(!is_object_id(old));
        assert_eq!("alice".parse::<Uid>().unwrap().to_string(), "alice");
        assert_eq!("".parse::<RunId>(), Err(IdError::Empty));
        assert_eq!("a/b".parse::<RunId>(), Err(IdError::BadCharacter('/')));
        assert_eq!("a b".parse::<RunId>(), Err(IdError::BadCharacter(' ')));
        assert_eq!("x".repeat(MAX_ID_LEN + 1).parse::<RunId>(), Err(IdError::TooLong));
    }

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id: DeploymentId = serde_json::from_str("\"d-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"d-1\"");
        assert_eq!(id.as_ref(), "d-1");
    }
}
