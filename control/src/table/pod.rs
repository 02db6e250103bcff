//! The Pod table: READY, the aggregate STATUS derived from the phase, init
//! containers and container states, RESTARTS with the time of the last
//! restart, and the wide IP / NODE / NOMINATED NODE / READINESS GATES.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::age::{age, since, time_at};
use super::columns::{col, name, wide, Col, Printer, Row, AGE, NAME};
use super::value::{arr_at, bool_at, get, int_at, opt_bool, str_at};

const COLUMNS: &[Col] = &[
    NAME,
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", "The IP address allocated to the pod."),
    wide("Node", "string", "The node the pod is scheduled onto."),
    wide("Nominated Node", "string", "The node the scheduler nominated while preempting other pods for this one."),
    wide("Readiness Gates", "string", "The pod's readiness gates that are satisfied, out of all of them."),
];

pub(super) const PRINTER: Printer = Printer::new(COLUMNS, row);

/// The status shown for a pod together with its ready and restart counts.
struct Summary {
    ready: usize,
    total: usize,
    status: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

fn row(pod: &Value, now: Timestamp) -> Row {
    let s = summarize(pod);
    let restarts = match s.last_restart {
        Some(t) if s.restarts != 0 => format!("{} ({} ago)", s.restarts, since(Some(t), now)),
        _ => s.restarts.to_string(),
    };

    let pod_ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|p| str_at(p, &["ip"]))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| str_at(pod, &["status", "podIP"]));
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr_at(pod, &["status", "conditions"]);
        let satisfied = gates
            .iter()
            .filter(|gate| {
                let wanted = str_at(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == wanted)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{satisfied}/{}", gates.len())
    };

    let mut r = Row::new(vec![
        json!(name(pod)),
        json!(format!("{}/{}", s.ready, s.total)),
        json!(s.status),
        json!(restarts),
        json!(age(pod, now)),
        json!(or_none(pod_ip)),
        json!(or_none(str_at(pod, &["spec", "nodeName"]))),
        json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ]);
    r.conditions = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => Some(completed_condition(
            "Succeeded",
            "The pod has completed successfully.",
        )),
        "Failed" => Some(completed_condition("Failed", "The pod failed.")),
        _ => None,
    };
    r
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

fn completed_condition(reason: &str, message: &str) -> Value {
    json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}])
}

fn has_condition(pod: &Value, type_: &str) -> bool {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == type_ && str_at(c, &["status"]) == "True")
}

/// `lastState.terminated.finishedAt` of a container status.
fn last_finished(status: &Value) -> Option<Timestamp> {
    time_at(status, &["lastState", "terminated", "finishedAt"])
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// "Signal:N" / "ExitCode:N" for a terminated state without a reason.
fn exit_text(terminated: &Value) -> String {
    let signal = int_at(terminated, &["signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!("ExitCode:{}", int_at(terminated, &["exitCode"]))
    }
}

fn summarize(pod: &Value) -> Summary {
    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    // Sidecars: init containers that keep running (restartPolicy Always).
    let sidecars: HashSet<&str> = init_specs
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .map(|c| str_at(c, &["name"]))
        .collect();
    let sidecar_count = init_specs
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();
    let total = arr_at(pod, &["spec", "containers"]).len() + sidecar_count;

    let phase = str_at(pod, &["status", "phase"]);
    let pod_reason = str_at(pod, &["status", "reason"]);
    let mut status = if pod_reason.is_empty() {
        phase.to_string()
    } else {
        pod_reason.to_string()
    };
    let gated = arr_at(pod, &["status", "conditions"]).iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    });
    if gated {
        status = "SchedulingGated".to_string();
    }

    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut last_restart = None;
    let mut sidecar_restarts = 0i64;
    let mut sidecar_last_restart = None;
    let mut initializing = false;

    for (i, c) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        restarts += int_at(c, &["restartCount"]);
        last_restart = later(last_restart, last_finished(c));
        let is_sidecar = sidecars.contains(str_at(c, &["name"]));
        if is_sidecar {
            sidecar_restarts += int_at(c, &["restartCount"]);
            sidecar_last_restart = later(sidecar_last_restart, last_finished(c));
        }
        let terminated = get(c, &["state", "terminated"]);
        let waiting_reason = str_at(c, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && opt_bool(c, &["started"]) == Some(true) {
            if bool_at(c, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let reason = str_at(t, &["reason"]);
            status = if reason.is_empty() {
                format!("Init:{}", exit_text(t))
            } else {
                format!("Init:{reason}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            status = format!("Init:{waiting_reason}");
        } else {
            status = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for c in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(c, &["restartCount"]);
            last_restart = later(last_restart, last_finished(c));
            let waiting_reason = str_at(c, &["state", "waiting", "reason"]);
            let terminated = get(c, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                status = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let reason = str_at(t, &["reason"]);
                status = if reason.is_empty() {
                    exit_text(t)
                } else {
                    reason.to_string()
                };
            } else if bool_at(c, &["ready"]) && get(c, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A container still running means the pod is not "Completed" yet.
        if status == "Completed" && has_running {
            status = if has_condition(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if get(pod, &["metadata", "deletionTimestamp"]).is_some() {
        if pod_reason == "NodeLost" {
            status = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            status = "Terminating".to_string();
        }
    }

    Summary {
        ready,
        total,
        status,
        restarts,
        last_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support::now;


    fn cells(pod: Value) -> Vec<Value> {
        row(&pod, now()).cells
    }

    fn status_of(pod: Value) -> String {
        cells(pod)[2].as_str().unwrap_or("?").to_string()
    }

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:00:00Z"}, "spec": spec, "status": status})
    }

    fn one_container() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}]})
    }

    #[test]
    fn pending_unscheduled() {
        let p = pod(one_container(), json!({"phase": "Pending"}));
        let c = cells(p);
        assert_eq!(
            c[..5],
            [
                json!("p"),
                json!("0/1"),
                json!("Pending"),
                json!("0"),
                json!("60m")
            ]
        );
        assert_eq!(
            c[5..],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn container_creating() {
        let p = pod(
            one_container(),
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}),
        );
        assert_eq!(status_of(p), "ContainerCreating");
    }

    #[test]
    fn running_ready() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"}),
            json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T11:00:05Z"}}},
                {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}
            ]}),
        );
        let c = cells(p);
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "Running");
        assert_eq!(c[5], "10.0.0.5");
        assert_eq!(c[6], "n1");
    }

    #[test]
    fn crash_loop_with_restart_age() {
        let p = pod(
            one_container(),
            json!({"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:58:00Z"}}
            }]}),
        );
        let c = cells(p);
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], "5 (2m ago)");
    }

    #[test]
    fn restarts_take_latest_finish_across_containers() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T10:00:00Z"}}},
                {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:30:00Z"}}}
            ]}),
        );
        assert_eq!(cells(p)[3], "3 (30m ago)");
        // Restarts without a recorded finish time print the bare count.
        let p = pod(
            one_container(),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 4, "state": {"running": {}}}
            ]}),
        );
        assert_eq!(cells(p)[3], "4");
    }

    #[test]
    fn err_image_pull() {
        let p = pod(
            one_container(),
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "ErrImagePull"}}}
            ]}),
        );
        assert_eq!(status_of(p), "ErrImagePull");
    }

    #[test]
    fn completed_pod_has_completed_row_condition() {
        let p = pod(
            one_container(),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]}),
        );
        let r = row(&p, now());
        assert_eq!(r.cells[1], "0/1");
        assert_eq!(r.cells[2], "Completed");
        assert_eq!(
            r.conditions,
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                         "message": "The pod has completed successfully."}])
            )
        );
    }

    #[test]
    fn terminated_without_reason() {
        let p = pod(
            one_container(),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 137}}}
            ]}),
        );
        assert_eq!(status_of(p), "ExitCode:137");
        let p = pod(
            one_container(),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 0, "signal": 9}}}
            ]}),
        );
        assert_eq!(status_of(p), "Signal:9");
    }

    #[test]
    fn completed_but_still_running_container() {
        let status = |conds: Value| {
            pod(
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({"phase": "Running", "conditions": conds, "containerStatuses": [
                    {"name": "a", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "ready": true, "state": {"running": {}}}
                ]}),
            )
        };
        assert_eq!(
            status_of(status(json!([{"type": "Ready", "status": "True"}]))),
            "Running"
        );
        assert_eq!(
            status_of(status(json!([{"type": "Ready", "status": "False"}]))),
            "NotReady"
        );
    }

    #[test]
    fn terminating() {
        let mut p = pod(
            one_container(),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": true, "state": {"running": {}}}
            ]}),
        );
        p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        assert_eq!(status_of(p.clone()), "Terminating");
        // A finished pod being deleted keeps its final status.
        p["status"]["phase"] = json!("Succeeded");
        p["status"]["containerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        assert_eq!(status_of(p.clone()), "Completed");
        // Deleted while its node is unreachable.
        p["status"]["phase"] = json!("Running");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(status_of(p), "Unknown");
    }

    #[test]
    fn init_progress() {
        let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "app"}]});
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "i2", "state": {"running": {}}}
            ], "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}),
        );
        let c = cells(p);
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "Init:1/2");

        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}},
                {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}),
        );
        assert_eq!(status_of(p), "Init:0/2");
    }

    #[test]
    fn init_failures() {
        let spec = json!({"initContainers": [{"name": "i1"}], "containers": [{"name": "app"}]});
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:00Z"}}}
            ]}),
        );
        let c = cells(p);
        assert_eq!(c[2], "Init:CrashLoopBackOff");
        assert_eq!(c[3], "3 (60s ago)");
        let p = pod(
            spec.clone(),
            json!({"phase": "Failed", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 2}}}
            ]}),
        );
        assert_eq!(status_of(p), "Init:ExitCode:2");
        let p = pod(
            spec,
            json!({"phase": "Failed", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ]}),
        );
        assert_eq!(status_of(p), "Init:Error");
    }

    #[test]
    fn sidecar_counts_toward_ready_and_total() {
        let spec = json!({
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}]
        });
        let p = pod(
            spec,
            json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [
                {"name": "proxy", "started": true, "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:50:00Z"}}}
            ],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 1, "state": {"running": {}}}
            ]}),
        );
        let c = cells(p);
        assert_eq!(c[1], "2/2");
        assert_eq!(c[2], "Running");
        assert_eq!(c[3], "3 (10m ago)");
    }

    #[test]
    fn scheduling_gated_and_evicted() {
        let p = pod(
            one_container(),
            json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
            ]}),
        );
        assert_eq!(status_of(p), "SchedulingGated");
        let p = pod(
            one_container(),
            json!({"phase": "Failed", "reason": "Evicted"}),
        );
        assert_eq!(status_of(p), "Evicted");
    }

    #[test]
    fn readiness_gates() {
        let p = pod(
            json!({"containers": [], "readinessGates": [{"conditionType": "a/x"}, {"conditionType": "b/y"}]}),
            json!({"conditions": [{"type": "a/x", "status": "True"}, {"type": "b/y", "status": "False"}]}),
        );
        assert_eq!(cells(p)[8], "1/2");
    }
}
