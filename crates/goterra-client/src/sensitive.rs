//! A wrapper for secrets so they cannot reach a log line or an error message by accident.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// Holds a secret value. `Debug` and `Display` print a fixed marker, never the value; the only
/// way to read it is [`Sensitive::expose`], which makes every use visible in review.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(***)")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Sensitive)
    }
}

/// Serializes [`Sensitive`] values as their plain content. Only for request bodies that carry a
/// secret to the server on purpose (a run spec, an endpoint password, secret run inputs);
/// `Sensitive` itself stays unserializable so a secret cannot slip into an API response by
/// deriving `Serialize`.
pub mod sensitive_serde {
    use super::Sensitive;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &Sensitive<T>, serializer: S) -> Result<S::Ok, S::Error> {
        value.expose().serialize(serializer)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Sensitive<T>, D::Error> {
        T::deserialize(deserializer).map(Sensitive::new)
    }

    /// The same for a map of secrets.
    pub mod map {
        use super::Sensitive;
        use serde::ser::SerializeMap;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};
        use std::collections::BTreeMap;

        pub fn serialize<T: Serialize, S: Serializer>(
            values: &BTreeMap<String, Sensitive<T>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(values.len()))?;
            for (name, value) in values {
                map.serialize_entry(name, value.expose())?;
            }
            map.end()
        }

        pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<BTreeMap<String, Sensitive<T>>, D::Error> {
            BTreeMap::<String, Sensitive<T>>::deserialize(deserializer)
        }
    }

    /// The same for an optional map of secrets (`null` when absent).
    pub mod option_map {
        use super::Sensitive;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};
        use std::collections::BTreeMap;

        pub fn serialize<T: Serialize, S: Serializer>(
            values: &Option<BTreeMap<String, Sensitive<T>>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let exposed: Option<BTreeMap<&String, &T>> = values
                .as_ref()
                .map(|values| values.iter().map(|(name, value)| (name, value.expose())).collect());
            exposed.serialize(serializer)
        }

        pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<BTreeMap<String, Sensitive<T>>>, D::Error> {
            Option::<BTreeMap<String, Sensitive<T>>>::deserialize(deserializer)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Sensitive::new("hunter2".to_string());
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }
}
