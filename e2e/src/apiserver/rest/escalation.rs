//! Escalation prevention on writes of Roles, ClusterRoles and their bindings, where the real
//! server's RBAC storage applies it: the writer must hold what the role grants (or `escalate`)
//! and what a binding's role grants (or `bind`), else 403.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Target;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::rbac::escalation::{self, Write};
use crate::apiserver::rbac::{Policy, UserInfo};
use crate::apiserver::state::State;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn typed<T: DeserializeOwned>(obj: &Value) -> ApiResult<T> {
    serde_json::from_value(obj.clone()).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Whether `user` may write `obj` (replacing an existing object when `update`) to `target`.
pub(super) fn admit(
    st: &State,
    target: &Target,
    user: Option<&UserInfo>,
    obj: &Value,
    update: bool,
) -> ApiResult<()> {
    // The server's own writes, and the privileged group's, are never checked.
    let Some(user) = user.filter(|u| !crate::apiserver::identity::privileged(u)) else {
        return Ok(());
    };
    if target.rt.group != RBAC_GROUP || !target.subresource().is_empty() {
        return Ok(());
    }
    let write = if update { Write::Update } else { Write::Create };
    let policy = Policy::from_store(&st.store);
    match target.rt.plural.as_str() {
        "roles" => escalation::check_role_write(&policy, user, write, &typed(obj)?),
        "clusterroles" => escalation::check_cluster_role_write(&policy, user, write, &typed(obj)?),
        "rolebindings" => escalation::check_role_binding_write(&policy, user, &typed(obj)?),
        "clusterrolebindings" => {
            escalation::check_cluster_role_binding_write(&policy, user, &typed(obj)?)
        }
        _ => Ok(()),
    }
}
