//! Who may do what (reference §5, with the holes of §10 closed):
//! - members (owners ∪ members) read and write their namespace's objects;
//! - owners also manage the namespace itself; admins may do everything;
//! - public recipes, templates, applications and endpoints are readable by any logged user and
//!   usable from any namespace;
//! - an object is only reachable under its own namespace's URL: another namespace in the URL is
//!   404, never a way around a check.
//!
//! The rules themselves are [`NamespaceRecord`]'s methods; this module applies them to requests.

use crate::state::AppState;
use goterra_client::ids::{NamespaceId, Uid};
use goterra_core::{ApiError, Identity};

pub use crate::storage::namespaces::NamespaceRecord;

/// The caller's uid, typed.
pub fn uid_of(user: &Identity) -> Uid {
    Uid::from_trusted(user.uid.clone())
}

pub fn not_a_member() -> ApiError {
    ApiError::forbidden("not a member of this namespace")
}

/// The namespace, when the caller may use its catalogue: 404 when it does not exist, 403 when
/// the caller is not a member.
pub async fn require_member(state: &AppState, id: &NamespaceId, user: &Identity) -> Result<NamespaceRecord, ApiError> {
    let namespace = state.namespaces().load(id).await?;
    if namespace.can_use(user) {
        Ok(namespace)
    } else {
        Err(not_a_member())
    }
}

/// The namespace, when the caller may change or delete it: 403 naming why for a member.
pub async fn require_manager(
    state: &AppState,
    id: &NamespaceId,
    user: &Identity,
    what: &str,
) -> Result<NamespaceRecord, ApiError> {
    let namespace = state.namespaces().load(id).await?;
    if namespace.can_manage(user) {
        Ok(namespace)
    } else if namespace.is_member(&uid_of(user)) {
        Err(ApiError::forbidden(format!(
            "only the namespace's owners may {what} it"
        )))
    } else {
        Err(not_a_member())
    }
}
