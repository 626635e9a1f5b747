//! Who is calling: the identity claims every service authorizes on.

use serde::{Deserialize, Serialize};

/// An authenticated user, as seen by services other than auth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub uid: String,
    pub admin: bool,
    #[serde(rename = "super")]
    pub super_user: bool,
    pub email: String,
    pub kind: String,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// Admins and super users hold platform-wide rights such as freezing namespaces.
    pub fn is_privileged(&self) -> bool {
        self.admin || self.super_user
    }
}
