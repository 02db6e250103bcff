//! The rollout arithmetic of the deployment controller, without I/O:
//! maxSurge/maxUnavailable (surge rounds up, unavailable down), how far
//! the new ReplicaSet may grow, how far old ones may shrink, and the
//! proportional scaling of all active sets when a deployment is resized
//! in the middle of a rollout. Each plan says which set goes to which
//! size; the caller writes them.

use super::annotations;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::cmp::Ordering;

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().map(|s| s.replicas.unwrap_or(1)).unwrap_or(0)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

pub fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

pub fn is_rolling(d: &Deployment) -> bool {
    !is_recreate(d)
}

/// An int, or a percentage of `total` rounded up or down.
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        None => Ok(0),
        Some(IntOrString::Int(n)) => Ok(*n),
        Some(IntOrString::String(s)) => {
            let Some(p) = s.strip_suffix('%') else {
                return Err(format!("invalid value for IntOrString: invalid type: string is not a percentage: {s:?}"));
            };
            let p: i64 = p.parse().map_err(|_| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let product = p * i64::from(total);
            let v = if round_up { product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0) } else { product.div_euclid(100) };
            Ok(i32::try_from(v).unwrap_or(i32::MAX))
        }
    }
}

/// maxSurge and maxUnavailable as numbers for `desired` replicas; both
/// zero would stall a rollout, so maxUnavailable is then 1.
pub fn resolve_fenceposts(surge: Option<&IntOrString>, unavailable: Option<&IntOrString>, desired: i32) -> Result<(i32, i32), String> {
    let s = scaled_value(surge, desired, true)?;
    let u = scaled_value(unavailable, desired, false)?;
    Ok(if s == 0 && u == 0 { (0, 1) } else { (s, u) })
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(ru.and_then(|r| r.max_surge.as_ref()), ru.and_then(|r| r.max_unavailable.as_ref()), replicas(d)).unwrap_or((0, 0))
}

pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

pub fn sum_replicas<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(rs_replicas).sum()
}

/// Older first; same time by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |r: &ReplicaSet| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b)).then_with(|| rs_name(a).cmp(rs_name(b)))
}

/// Sets with replicas.
pub fn active<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> Vec<&'a ReplicaSet> {
    sets.into_iter().filter(|r| rs_replicas(r) > 0).collect()
}

/// The size the new ReplicaSet may have now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    if !is_rolling(d) {
        return replicas(d);
    }
    let current = sum_replicas(all.iter().copied());
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return rs_replicas(new);
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new));
    rs_replicas(new) + up
}

/// How many old pods may go now without going under the minimum
/// available (counting the new set's unavailable pods as unavailable).
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new) - rs_available(new);
    sum_replicas(all.iter().copied()) - min_available - new_unavailable
}

/// Scale down the unhealthy (not available) pods of old sets first, the
/// oldest sets first, at most `max_cleanup` in all.
pub fn cleanup_unhealthy_plan(old: &[&ReplicaSet], max_cleanup: i32) -> Vec<(String, i32)> {
    let mut sorted = old.to_vec();
    sorted.sort_by(|a, b| by_creation(a, b));
    let mut total = 0;
    let mut plan = Vec::new();
    for rs in sorted {
        if total >= max_cleanup {
            break;
        }
        let (n, avail) = (rs_replicas(rs), rs_available(rs));
        if n == 0 || n <= avail {
            continue;
        }
        let down = (max_cleanup - total).min(n - avail);
        plan.push((rs_name(rs).to_string(), n - down));
        total += down;
    }
    plan
}

/// Scale down old sets, oldest first, as far as the available pods above
/// the minimum allow.
pub fn scale_down_old_plan(d: &Deployment, all: &[&ReplicaSet], old: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let min_available = replicas(d) - max_unavailable(d);
    let available: i32 = all.iter().map(|r| rs_available(r)).sum();
    if available <= min_available {
        return Vec::new();
    }
    let wanted = available - min_available;
    let mut sorted = old.to_vec();
    sorted.sort_by(|a, b| by_creation(a, b));
    let mut total = 0;
    let mut plan = Vec::new();
    for rs in sorted {
        if total >= wanted {
            break;
        }
        let n = rs_replicas(rs);
        if n == 0 {
            continue;
        }
        let down = n.min(wanted - total);
        plan.push((rs_name(rs).to_string(), n - down));
        total += down;
    }
    plan
}

/// The only active set, or the newest when none is active; None when
/// several are active.
pub fn find_active_or_latest<'a>(new: Option<&'a ReplicaSet>, old: &[&'a ReplicaSet]) -> Option<&'a ReplicaSet> {
    if new.is_none() && old.is_empty() {
        return None;
    }
    let mut newest_first = old.to_vec();
    newest_first.sort_by(|a, b| by_creation(b, a));
    let all: Vec<&ReplicaSet> = newest_first.iter().copied().chain(new).filter(|r| rs_replicas(r) > 0).collect();
    match all.len() {
        0 => new.or_else(|| newest_first.first().copied()),
        1 => Some(all[0]),
        _ => None,
    }
}

/// The new set has all the replicas, all available.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let want = replicas(d);
    annotations::desired_replicas(rs) == Some(want) && rs_replicas(rs) == want && rs_available(rs) == want
}

/// Go's RoundToInt32: half away from zero.
fn round(v: f64) -> i32 {
    if v < 0.0 {
        (v - 0.5) as i32
    } else {
        (v + 0.5) as i32
    }
}

fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = annotations::max_replicas(rs).unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated <= 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    round(size) - rs_replicas(rs)
}

fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let f = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        f.min(allowed)
    } else {
        f.max(allowed)
    }
}

/// New sizes for all active sets when the deployment was resized with
/// several sets active: the difference is shared in proportion to each
/// set's size (larger sets first; newer first when growing, older first
/// when shrinking), leftovers to the first.
pub fn proportional_plan(d: &Deployment, new: Option<&ReplicaSet>, old: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let mut all = active(old.iter().copied().chain(new));
    let current = sum_replicas(all.iter().copied());
    let allowed = if replicas(d) > 0 { replicas(d) + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    match to_add.cmp(&0) {
        Ordering::Greater => all.sort_by(|a, b| rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(b, a))),
        Ordering::Less => all.sort_by(|a, b| rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(a, b))),
        Ordering::Equal => {}
    }
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &all {
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added);
            sizes.push((rs_name(rs).to_string(), rs_replicas(rs) + p));
            added += p;
        } else {
            sizes.push((rs_name(rs).to_string(), rs_replicas(rs)));
        }
    }
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn deploy(replicas: i32, surge: Value, unavailable: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}},
        }))
        .expect("deployment")
    }

    fn rs(name: &str, created: &str, replicas: i32, available: i32, max: Option<i32>) -> ReplicaSet {
        let mut annotations = json!({});
        if let Some(m) = max {
            annotations[annotations::MAX_REPLICAS] = json!(m.to_string());
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "availableReplicas": available},
        }))
        .expect("rs")
    }

    fn is(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        assert_eq!(scaled_value(Some(&is("25%")), 3, true), Ok(1));
        assert_eq!(scaled_value(Some(&is("25%")), 3, false), Ok(0));
        assert_eq!(scaled_value(Some(&is("25%")), 10, true), Ok(3));
        assert_eq!(scaled_value(Some(&is("25%")), 10, false), Ok(2));
        assert_eq!(scaled_value(Some(&is("100%")), 7, false), Ok(7));
        assert_eq!(scaled_value(Some(&IntOrString::Int(2)), 10, false), Ok(2));
        assert_eq!(scaled_value(None, 10, false), Ok(0));
        assert!(scaled_value(Some(&is("25")), 10, false).is_err());
        assert_eq!(resolve_fenceposts(Some(&is("0%")), Some(&is("10%")), 3), Ok((0, 1)), "both zero: one may be unavailable");
        let d = deploy(3, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = deploy(2, json!(0), json!(5));
        assert_eq!(max_unavailable(&d), 2, "never more than the replicas");
        let d = deploy(0, json!(1), json!(1));
        assert_eq!(max_unavailable(&d), 0);
    }

    #[test]
    fn the_new_set_grows_within_max_surge() {
        let d = deploy(10, json!("25%"), json!("25%"));
        let old = rs("old", "2025-01-01T00:00:00Z", 10, 10, None);
        let new = rs("new", "2025-01-02T00:00:00Z", 0, 0, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3, "10 + ceil(2.5) = 13 pods at most");
        let new = rs("new", "2025-01-02T00:00:00Z", 3, 0, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3, "at the surge limit");
        let old = rs("old", "2025-01-01T00:00:00Z", 2, 2, None);
        let new = rs("new", "2025-01-02T00:00:00Z", 9, 9, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 10, "never above the desired count");
    }

    #[test]
    fn old_sets_shrink_only_down_to_the_minimum_available() {
        let d = deploy(10, json!("25%"), json!("25%"));
        let old = rs("old", "2025-01-01T00:00:00Z", 10, 10, None);
        let new = rs("new", "2025-01-02T00:00:00Z", 3, 0, None);
        // 13 pods, min available 8, 3 new unavailable: 2 may go.
        assert_eq!(max_scaled_down(&d, &[&old, &new], &new), 2);
        assert!(cleanup_unhealthy_plan(&[&old], 2).is_empty(), "all old pods are healthy");
        assert_eq!(scale_down_old_plan(&d, &[&old, &new], &[&old]), [("old".to_string(), 8)]);
        // Unhealthy old pods go first, within the limit.
        let sick = rs("sick", "2025-01-01T00:00:00Z", 5, 1, None);
        let older = rs("older", "2024-01-01T00:00:00Z", 2, 0, None);
        assert_eq!(cleanup_unhealthy_plan(&[&sick, &older], 3), [("older".to_string(), 0), ("sick".to_string(), 4)]);
        // maxUnavailable 0, nothing available above the minimum: stall.
        let d = deploy(3, json!(1), json!(0));
        let old = rs("old", "2025-01-01T00:00:00Z", 3, 3, None);
        let new = rs("new", "2025-01-02T00:00:00Z", 1, 0, None);
        assert!(scale_down_old_plan(&d, &[&old, &new], &[&old]).is_empty());
        let new = rs("new", "2025-01-02T00:00:00Z", 1, 1, None);
        assert_eq!(scale_down_old_plan(&d, &[&old, &new], &[&old]), [("old".to_string(), 2)]);
    }

    #[test]
    fn only_one_active_set_takes_the_whole_size() {
        let a = rs("a", "2025-01-01T00:00:00Z", 0, 0, None);
        let b = rs("b", "2025-01-02T00:00:00Z", 3, 3, None);
        let c = rs("c", "2025-01-03T00:00:00Z", 0, 0, None);
        assert_eq!(find_active_or_latest(Some(&c), &[&a, &b]).map(rs_name), Some("b"));
        assert_eq!(find_active_or_latest(None, &[&a, &c]).map(rs_name), Some("c"), "the newest when none is active");
        let c = rs("c", "2025-01-03T00:00:00Z", 1, 0, None);
        assert_eq!(find_active_or_latest(Some(&c), &[&a, &b]).map(rs_name), None);
    }

    #[test]
    fn resizing_mid_rollout_scales_sets_proportionally() {
        // Upstream's example: 10 replicas, surge 3, scaled to 15 during a
        // rollout with 8 old and 5 new pods.
        let d = deploy(15, json!(3), json!(2));
        let old = rs("old", "2025-01-01T00:00:00Z", 8, 8, Some(13));
        let new = rs("new", "2025-01-02T00:00:00Z", 5, 0, Some(13));
        let plan = proportional_plan(&d, Some(&new), &[&old]);
        // 18 allowed, 13 there: 5 to add, 8*18/13=11.08 -> +3, 5*18/13=6.9 -> +2.
        assert_eq!(plan, [("old".to_string(), 11), ("new".to_string(), 7)]);
        // Scaling down shares the cut the same way.
        let d = deploy(5, json!(3), json!(2));
        let plan = proportional_plan(&d, Some(&new), &[&old]);
        let total: i32 = plan.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 8, "5 + surge 3");
        assert_eq!(plan, [("old".to_string(), 5), ("new".to_string(), 3)]);
        // To zero: everything goes.
        let d = deploy(0, json!(3), json!(2));
        assert_eq!(proportional_plan(&d, Some(&new), &[&old]), [("old".to_string(), 0), ("new".to_string(), 0)]);
    }
}
