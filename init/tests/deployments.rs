//! Deployments and ReplicaSets as a user sees them through kubectl:
//! rollouts, `kubectl rollout status|history|undo|restart|pause|resume`,
//! `kubectl scale`, Recreate, revisionHistoryLimit, progress deadlines,
//! and a rollout surviving a kill -9 of the server. Pods run on fake nodes
//! (the template names the node until the scheduler is there).

mod common;

use common::fake_node::{FakeNode, NodeSpec};
use common::{eventually, Server};

fn deployment(name: &str, replicas: u32, node: &str, image: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, annotations: {{kubernetes.io/change-cause: \"image {image}\"}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {strategy}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{nodeName: {node}, terminationGracePeriodSeconds: 0, containers: [{{name: c, image: \"{image}\"}}]}}
"
    )
}

const ROLLING_1_0: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

fn get(s: &Server, args: &[&str]) -> String {
    s.ok(args).trim().to_string()
}

fn jp(s: &Server, what: &str, path: &str) -> String {
    get(s, &["get", what, "-o", &format!("jsonpath={path}")])
}

/// `name=replicas` for each ReplicaSet of app `app`, sorted.
fn sets(s: &Server, app: &str) -> Vec<(String, String)> {
    let out = get(s, &["get", "rs", "-l", &format!("app={app}"), "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}{\"\\n\"}{end}"]);
    let mut v: Vec<(String, String)> = out.lines().filter_map(|l| l.split_once('=')).map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

/// Pods of app `app`: (name, pod-template-hash, being deleted).
fn pods(s: &Server, app: &str) -> Vec<(String, String, bool)> {
    let out = get(
        s,
        &["get", "pods", "-l", &format!("app={app}"), "-o", "jsonpath={range .items[*]}{.metadata.name}|{.metadata.labels.pod-template-hash}|{.metadata.deletionTimestamp}{\"\\n\"}{end}"],
    );
    out.lines()
        .filter_map(|l| {
            let mut it = l.split('|');
            let (name, hash, deleting) = (it.next()?, it.next()?, it.next().unwrap_or(""));
            Some((name.to_string(), hash.to_string(), !deleting.is_empty()))
        })
        .collect()
}

/// Pods of app `app` not being deleted: (name, pod-template-hash).
fn live_pods(s: &Server, app: &str) -> Vec<(String, String)> {
    pods(s, app).into_iter().filter(|p| !p.2).map(|(n, h, _)| (n, h)).collect()
}

fn rollout_ok(s: &Server, name: &str) {
    let out = s.ok(&["rollout", "status", &format!("deploy/{name}"), "--timeout=60s"]);
    assert!(out.contains(&format!("deployment \"{name}\" successfully rolled out")), "{out}");
}

/// The events (reason|message) about object `name`.
fn events(s: &Server, name: &str) -> Vec<String> {
    let out = get(
        s,
        &["get", "events", "--field-selector", &format!("involvedObject.name={name}"), "-o", "jsonpath={range .items[*]}{.reason}|{.message}{\"\\n\"}{end}"],
    );
    out.lines().map(str::to_string).collect()
}

fn current_hash(s: &Server, name: &str) -> String {
    let rs = sets(s, name).into_iter().find(|(_, n)| n != "0").map(|(rs, _)| rs).unwrap_or_default();
    rs.trim_start_matches(&format!("{name}-")).to_string()
}

#[test]
fn a_deployment_rolls_out_updates_and_rolls_back() {
    let s = Server::start("deploy-rollout");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(&["apply", "-f", "-"], &deployment("web", 3, "n1", "nginx:1", ROLLING_1_0));
    rollout_ok(&s, "web");
    let row = get(&s, &["get", "deploy", "web", "--no-headers"]);
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[..4], ["web", "3/3", "3", "3"], "{row}");

    // One ReplicaSet <deploy>-<hash>, its pods <rs>-<5 chars>, labelled with the hash.
    let rs1 = sets(&s, "web");
    assert_eq!(rs1.len(), 1, "{rs1:?}");
    let (rs1, _) = rs1[0].clone();
    let hash1 = rs1.trim_start_matches("web-").to_string();
    assert_eq!(jp(&s, &format!("rs/{rs1}"), "{.metadata.labels.pod-template-hash}"), hash1);
    assert_eq!(jp(&s, &format!("rs/{rs1}"), "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"), "Deployment/web");
    let annotations = jp(&s, &format!("rs/{rs1}"), "{.metadata.annotations}");
    for want in ["\"deployment.kubernetes.io/revision\":\"1\"", "\"deployment.kubernetes.io/desired-replicas\":\"3\"", "\"deployment.kubernetes.io/max-replicas\":\"4\"", "\"kubernetes.io/change-cause\":\"image nginx:1\""] {
        assert!(annotations.contains(want), "{want} in {annotations}");
    }
    assert_eq!(jp(&s, "deploy/web", "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"), "1");
    let pods = live_pods(&s, "web");
    assert_eq!(pods.len(), 3, "{pods:?}");
    for (p, h) in &pods {
        assert!(p.starts_with(&format!("{rs1}-")) && p.len() == rs1.len() + 6 && *h == hash1, "{p} {h}");
    }
    let ev = events(&s, "web");
    assert!(ev.contains(&format!("ScalingReplicaSet|Scaled up replica set {rs1} from 0 to 3")), "{ev:?}");
    let ev = events(&s, &rs1);
    assert_eq!(ev.iter().filter(|e| e.starts_with("SuccessfulCreate|Created pod: ")).count(), 3, "{ev:?}");
    let conds = jp(&s, "deploy/web", "{range .status.conditions[*]}{.type}={.status}/{.reason};{end}");
    assert!(conds.contains("Available=True/MinimumReplicasAvailable") && conds.contains("Progressing=True/NewReplicaSetAvailable"), "{conds}");

    // An image update rolls to a second ReplicaSet (the change cause,
    // annotated afterwards as the Kubernetes docs do, goes to the new one).
    s.ok(&["set", "image", "deploy/web", "c=nginx:2"]);
    s.ok(&["annotate", "deploy/web", "kubernetes.io/change-cause=image nginx:2", "--overwrite"]);
    rollout_ok(&s, "web");
    let rs = sets(&s, "web");
    assert_eq!(rs.len(), 2, "{rs:?}");
    let rs2 = rs.iter().find(|(n, _)| *n != rs1).map(|(n, _)| n.clone()).unwrap_or_default();
    assert!(rs.contains(&(rs1.clone(), "0".into())) && rs.contains(&(rs2.clone(), "3".into())), "{rs:?}");
    assert!(eventually(20, || live_pods(&s, "web").iter().all(|(p, _)| p.starts_with(&rs2)) && live_pods(&s, "web").len() == 3));
    let ev = events(&s, "web");
    assert!(ev.contains(&format!("ScalingReplicaSet|Scaled down replica set {rs1} from 3 to 2")), "{ev:?}");
    let history = s.ok(&["rollout", "history", "deploy/web"]);
    assert!(history.contains("1         image nginx:1") && history.contains("2         image nginx:2"), "{history}");

    // Undo goes back to the first ReplicaSet, which becomes revision 3.
    let out = s.ok(&["rollout", "undo", "deploy/web"]);
    assert!(out.contains("rolled back"), "{out}");
    rollout_ok(&s, "web");
    let rs = sets(&s, "web");
    assert!(rs == vec![(rs1.clone(), "3".into()), (rs2.clone(), "0".into())] || rs == vec![(rs2.clone(), "0".into()), (rs1.clone(), "3".into())], "{rs:?}");
    assert_eq!(jp(&s, &format!("rs/{rs1}"), "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"), "3");
    assert_eq!(jp(&s, &format!("rs/{rs1}"), "{.metadata.annotations.deployment\\.kubernetes\\.io/revision-history}"), "1");
    assert_eq!(jp(&s, "deploy/web", "{.spec.template.spec.containers[0].image}"), "nginx:1");
    let history = s.ok(&["rollout", "history", "deploy/web"]);
    assert!(history.contains("2         image nginx:2") && history.contains("3         image nginx:1") && !history.contains("\n1 "), "{history}");

    // Restart makes a third ReplicaSet with the same image.
    s.ok(&["rollout", "restart", "deploy/web"]);
    rollout_ok(&s, "web");
    let rs = sets(&s, "web");
    assert_eq!(rs.len(), 3, "{rs:?}");
    let rs3 = current_hash(&s, "web");
    assert!(!rs3.is_empty() && rs3 != hash1, "{rs:?}");
    assert!(!jp(&s, "deploy/web", "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}").is_empty());
    assert!(eventually(20, || {
        let p = live_pods(&s, "web");
        p.len() == 3 && p.iter().all(|(_, h)| *h == rs3)
    }));
    let st = jp(&s, "deploy/web", "{.status.replicas}/{.status.updatedReplicas}/{.status.readyReplicas}/{.status.availableReplicas}/{.status.observedGeneration}");
    let generation = jp(&s, "deploy/web", "{.metadata.generation}");
    assert_eq!(st, format!("3/3/3/3/{generation}"));
}

#[test]
fn max_unavailable_holds_a_rollout_and_the_progress_deadline_is_reported() {
    let s = Server::start("deploy-stall");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    let n2 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n2"));
    n2.set_pods_ready(false);
    s.ok_stdin(&["apply", "-f", "-"], &deployment("api", 4, "n1", "nginx:1", "{type: RollingUpdate, rollingUpdate: {maxSurge: 2, maxUnavailable: 0}}"));
    rollout_ok(&s, "api");
    let old = current_hash(&s, "api");

    // New pods go to n2, where they never become ready: 2 surge pods, no old pod removed.
    s.ok(&["patch", "deploy/api", "-p", r#"{"spec":{"progressDeadlineSeconds":3,"template":{"spec":{"nodeName":"n2"}}}}"#]);
    let counts = || jp(&s, "deploy/api", "{.status.replicas}/{.status.updatedReplicas}/{.status.availableReplicas}/{.status.unavailableReplicas}");
    assert!(eventually(20, || counts() == "6/2/4/2"), "{}", counts());
    let rs = sets(&s, "api");
    assert!(rs.contains(&(format!("api-{old}"), "4".into())), "{rs:?}");
    assert_eq!(jp(&s, "deploy/api", "{.status.conditions[?(@.type==\"Available\")].status}"), "True");
    // No progress for 3 s: Progressing=False, and rollout status says so.
    let reason = || jp(&s, "deploy/api", "{.status.conditions[?(@.type==\"Progressing\")].status}/{.status.conditions[?(@.type==\"Progressing\")].reason}");
    assert!(eventually(20, || reason() == "False/ProgressDeadlineExceeded"), "{}", reason());
    let err = s.fails(&["rollout", "status", "deploy/api", "--timeout=20s"], None);
    assert!(err.contains("deployment \"api\" exceeded its progress deadline"), "{err}");
    let row = get(&s, &["get", "deploy", "api", "--no-headers"]);
    assert_eq!(&row.split_whitespace().collect::<Vec<_>>()[..4], ["api", "4/4", "2", "4"], "{row}");

    // Scaled mid-rollout: the sets grow in proportion (4 old, 2 new of 6 allowed; 10 allowed now).
    s.ok(&["scale", "deploy/api", "--replicas=8"]);
    let new = sets(&s, "api").into_iter().map(|(n, _)| n).find(|n| !n.ends_with(&old)).unwrap_or_default();
    assert!(
        eventually(20, || {
            let rs = sets(&s, "api");
            rs.contains(&(format!("api-{old}"), "7".into())) && rs.contains(&(new.clone(), "3".into()))
        }),
        "{:?}",
        sets(&s, "api")
    );

    // Once the new pods are ready the rollout finishes and recovers.
    n2.set_pods_ready(true);
    assert!(eventually(20, || reason() != "False/ProgressDeadlineExceeded"), "{}", reason());
    rollout_ok(&s, "api");
    assert_eq!(reason(), "True/NewReplicaSetAvailable");
    assert!(eventually(20, || live_pods(&s, "api").len() == 8));
    assert!(sets(&s, "api").contains(&(format!("api-{old}"), "0".into())));
}

#[test]
fn paused_deployments_only_scale_and_recreate_replaces_all_pods_at_once() {
    let s = Server::start("deploy-pause");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(&["apply", "-f", "-"], &deployment("web", 2, "n1", "nginx:1", ROLLING_1_0));
    rollout_ok(&s, "web");
    s.ok(&["rollout", "pause", "deploy/web"]);
    s.ok(&["set", "image", "deploy/web", "c=nginx:2"]);
    s.ok(&["scale", "deploy/web", "--replicas=4"]);
    let progressing = || jp(&s, "deploy/web", "{.status.conditions[?(@.type==\"Progressing\")].status}/{.status.conditions[?(@.type==\"Progressing\")].reason}");
    assert!(eventually(20, || progressing() == "Unknown/DeploymentPaused"), "{}", progressing());
    // Paused: the old ReplicaSet takes the new size, no new ReplicaSet.
    assert!(eventually(20, || live_pods(&s, "web").len() == 4), "{:?}", live_pods(&s, "web"));
    let gen = jp(&s, "deploy/web", "{.metadata.generation}");
    assert!(eventually(10, || jp(&s, "deploy/web", "{.status.observedGeneration}") == gen));
    assert_eq!(sets(&s, "web").len(), 1, "{:?}", sets(&s, "web"));
    s.ok(&["rollout", "resume", "deploy/web"]);
    rollout_ok(&s, "web");
    assert_eq!(sets(&s, "web").len(), 2);
    assert!(eventually(20, || live_pods(&s, "web").len() == 4));
    s.ok(&["scale", "deploy/web", "--replicas=1"]);
    rollout_ok(&s, "web");
    assert!(eventually(20, || live_pods(&s, "web").len() == 1));

    // Recreate: old pods are all gone before new ones exist; old sets
    // beyond revisionHistoryLimit are deleted.
    s.ok_stdin(&["apply", "-f", "-"], &deployment("batch", 3, "n1", "busybox:1", "{type: Recreate}"));
    s.ok(&["patch", "deploy/batch", "-p", r#"{"spec":{"revisionHistoryLimit":1}}"#]);
    rollout_ok(&s, "batch");
    let first = current_hash(&s, "batch");
    s.ok(&["set", "image", "deploy/batch", "c=busybox:2"]);
    let mut mixed = false;
    let done = eventually(30, || {
        let all = pods(&s, "batch");
        let hashes: std::collections::BTreeSet<&String> = all.iter().map(|(_, h, _)| h).collect();
        mixed |= hashes.len() > 1;
        all.len() == 3 && !hashes.contains(&first)
    });
    assert!(done && !mixed, "old and new pods side by side: {mixed}");
    rollout_ok(&s, "batch");
    let second = current_hash(&s, "batch");
    let ev = events(&s, "batch");
    let down = ev.iter().position(|e| e == &format!("ScalingReplicaSet|Scaled down replica set batch-{first} from 3 to 0"));
    let up = ev.iter().position(|e| e == &format!("ScalingReplicaSet|Scaled up replica set batch-{second} from 0 to 3"));
    assert!(down.is_some() && up.is_some() && down < up, "{ev:?}");
    s.ok(&["set", "image", "deploy/batch", "c=busybox:3"]);
    rollout_ok(&s, "batch");
    assert!(eventually(20, || sets(&s, "batch").len() == 2), "{:?}", sets(&s, "batch"));
    assert!(!sets(&s, "batch").iter().any(|(n, _)| n.ends_with(&first)), "the oldest set was cleaned up");
    let history = s.ok(&["rollout", "history", "deploy/batch"]);
    assert!(history.contains("\n2 ") && history.contains("\n3 ") && !history.contains("\n1 "), "{history}");
}

#[test]
fn a_rollout_survives_kill9_of_the_server_without_duplicate_pods() {
    let mut s = Server::start("deploy-kill9");
    let n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(&["apply", "-f", "-"], &deployment("web", 2, "n1", "nginx:1", "{type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}"));
    rollout_ok(&s, "web");
    // Kill the server while it is creating pods for a scale-up.
    s.ok(&["scale", "deploy/web", "--replicas=40"]);
    assert!(eventually(20, || sets(&s, "web").iter().any(|(_, n)| n == "40")));
    s.restart_after_kill9();
    rollout_ok(&s, "web");
    let rs = current_hash(&s, "web");
    assert_eq!(live_pods(&s, "web").len(), 40);
    let ev = events(&s, &format!("web-{rs}"));
    assert!(!ev.iter().any(|e| e.starts_with("SuccessfulDelete")), "no pod was created twice: {ev:?}");

    // Kill it again in the middle of an image update held by unready pods.
    n1.set_pods_ready(false);
    s.ok(&["set", "image", "deploy/web", "c=nginx:2"]);
    assert!(eventually(20, || !jp(&s, "deploy/web", "{.status.updatedReplicas}").is_empty()));
    s.restart_after_kill9();
    n1.set_pods_ready(true);
    rollout_ok(&s, "web");
    let new = current_hash(&s, "web");
    assert_ne!(new, rs);
    assert!(eventually(30, || {
        let p = live_pods(&s, "web");
        p.len() == 40 && p.iter().all(|(_, h)| *h == new)
    }));
    let ev = events(&s, &format!("web-{new}"));
    assert!(!ev.iter().any(|e| e.starts_with("SuccessfulDelete")), "no pod of the new set was created twice: {ev:?}");
    assert_eq!(jp(&s, "deploy/web", "{.status.replicas}/{.status.updatedReplicas}/{.status.availableReplicas}"), "40/40/40");
}

#[test]
fn a_replicaset_adopts_orphans_and_releases_pods_that_stop_matching() {
    let s = Server::start("rs-adopt");
    let _n1 = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    s.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: orphan, labels: {app: rs}}\nspec: {nodeName: n1, containers: [{name: c, image: nginx}]}\n",
    );
    s.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: rs}}\n  template:\n    metadata: {labels: {app: rs}}\n    spec: {nodeName: n1, terminationGracePeriodSeconds: 0, containers: [{name: c, image: nginx}]}\n",
    );
    assert!(eventually(20, || jp(&s, "rs/rs", "{.status.readyReplicas}") == "3"), "{}", jp(&s, "rs/rs", "{.status}"));
    assert_eq!(jp(&s, "pod/orphan", "{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}"), "rs/true");
    assert_eq!(live_pods(&s, "rs").len(), 3, "only two pods were created");
    let row = get(&s, &["get", "rs", "rs", "--no-headers"]);
    assert_eq!(&row.split_whitespace().collect::<Vec<_>>()[..4], ["rs", "3", "3", "3"], "{row}");

    // A pod that stops matching is released and replaced.
    s.ok(&["label", "pod/orphan", "app=other", "--overwrite"]);
    assert!(eventually(20, || jp(&s, "pod/orphan", "{.metadata.ownerReferences}").is_empty()));
    assert!(eventually(20, || live_pods(&s, "rs").len() == 3));
    // Scaling down removes pods; fullyLabeledReplicas and observedGeneration follow.
    s.ok(&["scale", "rs/rs", "--replicas=1"]);
    assert!(eventually(20, || live_pods(&s, "rs").len() == 1));
    let gen = jp(&s, "rs/rs", "{.metadata.generation}");
    assert!(eventually(20, || jp(&s, "rs/rs", "{.status.replicas}/{.status.fullyLabeledReplicas}/{.status.observedGeneration}") == format!("1/1/{gen}")));
    assert!(events(&s, "rs").iter().any(|e| e.starts_with("SuccessfulDelete|Deleted pod: rs-")));

    // With minReadySeconds a ready pod counts as available only later.
    s.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: slow}\nspec:\n  replicas: 1\n  minReadySeconds: 6\n  selector: {matchLabels: {app: slow}}\n  template:\n    metadata: {labels: {app: slow}}\n    spec: {nodeName: n1, containers: [{name: c, image: nginx}]}\n",
    );
    let counts = || jp(&s, "rs/slow", "{.status.readyReplicas}/{.status.availableReplicas}");
    assert!(eventually(20, || counts() == "1/"), "{}", counts());
    assert!(eventually(20, || counts() == "1/1"), "{}", counts());
}

/// A field of the ReplicaFailure condition of app `bad`'s ReplicaSet.
fn bad_rs(s: &Server, field: &str) -> String {
    get(s, &["get", "rs", "-l", "app=bad", "-o", &format!("jsonpath={{.items[0].status.conditions[?(@.type==\"ReplicaFailure\")].{field}}}")])
}

#[test]
fn a_deployment_whose_pods_are_refused_reports_it_and_others_go_on() {
    // Pods naming a ServiceAccount that does not exist are refused at
    // admission: the ReplicaSet says so (condition and event) and keeps
    // trying, while a good Deployment next to it rolls out, and the bad
    // one recovers once the account exists. No scheduler involved: the
    // templates name the node.
    let s = Server::start("deploy-bad");
    let _n = FakeNode::start(&s.kubeconfig, NodeSpec::new("n1"));
    let bad = deployment("bad", 2, "n1", "busybox:1", ROLLING_1_0).replace("spec: {nodeName: n1,", "spec: {nodeName: n1, serviceAccountName: robot,");
    s.ok_stdin(&["apply", "-f", "-"], &bad);
    s.ok_stdin(&["apply", "-f", "-"], &deployment("good", 2, "n1", "busybox:1", ROLLING_1_0));
    rollout_ok(&s, "good");
    assert!(
        eventually(30, || bad_rs(&s, "reason") == "FailedCreate"),
        "{}",
        s.ok(&["get", "rs", "-l", "app=bad", "-o", "yaml"])
    );
    let message = bad_rs(&s, "message");
    assert!(message.contains("error looking up service account default/robot: serviceaccount \"robot\" not found"), "{message}");
    assert!(
        eventually(20, || s.ok(&["get", "events", "--field-selector", "reason=FailedCreate"]).contains("robot")),
        "{}",
        s.ok(&["get", "events"])
    );
    assert_eq!(jp(&s, "deploy/good", "{.status.availableReplicas}"), "2");
    s.ok(&["create", "serviceaccount", "robot"]);
    rollout_ok(&s, "bad");
}
