//! Create-only "review" resources: who am I, and may I.

use super::status::ApiError;
use super::{ApiServer, User};
use crate::registry::Resource;
use serde_json::{json, Value};

pub async fn create(server: &ApiServer, res: &Resource, mut obj: Value, user: &User) -> Result<Value, ApiError> {
    obj["kind"] = json!(res.kind);
    obj["apiVersion"] = json!(res.api_version());
    let user_info = || {
        let mut u = json!({"username": user.name, "groups": user.groups});
        if let Some(uid) = &user.uid {
            u["uid"] = json!(uid);
        }
        u
    };
    match res.kind.as_str() {
        "SelfSubjectReview" => {
            obj["status"] = json!({"userInfo": user_info()});
            Ok(obj)
        }
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            // Until RBAC: cluster admins may do everything, nobody else anything.
            let allowed = if res.kind == "SelfSubjectAccessReview" {
                user.is_admin()
            } else {
                obj.pointer("/spec/groups").and_then(Value::as_array).map(|g| g.iter().any(|x| x == "system:masters")).unwrap_or(false)
            };
            obj["status"] = json!({"allowed": allowed});
            Ok(obj)
        }
        "SelfSubjectRulesReview" => {
            let rules = if user.is_admin() {
                json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
            } else {
                json!([])
            };
            obj["status"] = json!({"resourceRules": rules, "nonResourceRules": [], "incomplete": false});
            Ok(obj)
        }
        "TokenReview" => {
            crate::auth::authenticate::review(server, &mut obj).await;
            Ok(obj)
        }
        other => Err(ApiError::method_not_allowed(format!("{other} is not supported by this server yet"))),
    }
}
