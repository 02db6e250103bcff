//! The real kubectl against a real `coracle server --disable-agent`.

mod common;
use common::{eventually, kubectl_with, Server};

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: registry.local/app:1.0
        ports: [{containerPort: 8080}]
      - name: sidecar
        image: registry.local/sidecar:1.0
"#;

#[test]
fn unauthenticated_requests_get_401_but_health_is_open() {
    let s = Server::start("auth");
    let anon = s.dir.join("anon.yaml");
    let server_url = format!("https://127.0.0.1:{}", s.port);
    std::fs::write(
        &anon,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server_url}\", insecure-skip-tls-verify: true}}}}]\nusers: [{{name: u, user: {{token: not-a-valid-token}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    )
    .expect("write kubeconfig");
    let out = kubectl_with(&anon, &["get", "namespaces"], None, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unauthorized") || err.contains("logged in"), "{err}");
    let out = kubectl_with(&anon, &["get", "--raw", "/healthz"], None, &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let who = s.ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"]);
    assert!(who.starts_with("system:admin "), "{who}");
    assert!(who.contains("system:masters"), "{who}");
    assert_eq!(s.ok(&["auth", "can-i", "delete", "pods"]).trim(), "yes");
}

#[test]
fn discovery_lists_resources_short_names_and_categories() {
    let s = Server::start("discovery");
    let out = s.ok(&["api-resources"]);
    for needle in ["deployments", "deploy", "configmaps", "cm", "namespaces", "ns", "customresourcedefinitions", "leases", "endpointslices", "priorityclasses", "certificatesigningrequests"] {
        assert!(out.contains(needle), "api-resources lacks {needle}:\n{out}");
    }
    let versions = s.ok(&["api-versions"]);
    for gv in ["v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1", "policy/v1", "storage.k8s.io/v1"] {
        assert!(versions.lines().any(|l| l == gv), "api-versions lacks {gv}:\n{versions}");
    }
    let ns = s.ok(&["get", "ns", "-o", "name"]);
    for n in ["namespace/default", "namespace/kube-system", "namespace/kube-public", "namespace/kube-node-lease"] {
        assert!(ns.contains(n), "{ns}");
    }
}

#[test]
fn apply_twice_is_unchanged_and_image_edit_merges_by_container_name() {
    let s = Server::start("apply");
    let first = s.ok_stdin(&["apply", "-f", "-"], DEPLOY);
    assert!(first.contains("deployment.apps/web created"), "{first}");
    let second = s.ok_stdin(&["apply", "-f", "-"], DEPLOY);
    assert!(second.contains("deployment.apps/web unchanged"), "{second}");
    let edited = DEPLOY.replace("registry.local/sidecar:1.0", "registry.local/sidecar:2.0");
    let third = s.ok_stdin(&["apply", "-f", "-"], &edited);
    assert!(third.contains("configured"), "{third}");
    let images = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"]);
    assert_eq!(images, "registry.local/app:1.0 registry.local/sidecar:2.0");
    let generation = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.generation}"]);
    assert_eq!(generation, "2");
    // Defaults were filled in as upstream does.
    let policy = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.strategy.type} {.spec.template.spec.restartPolicy} {.spec.template.spec.containers[0].imagePullPolicy}"]);
    assert_eq!(policy, "RollingUpdate Always IfNotPresent");
    // kubectl diff sees the difference to a changed manifest, none to the live one.
    let out = s.kubectl_stdin(&["diff", "-f", "-"], Some(&edited));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let changed = edited.replace("replicas: 2", "replicas: 5");
    let out = s.kubectl_stdin(&["diff", "-f", "-"], Some(&changed));
    assert_eq!(out.status.code(), Some(1), "diff exit code, stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("+  replicas: 5"));
    let del = s.ok_stdin(&["delete", "-f", "-"], &edited);
    assert!(del.contains("deleted"), "{del}");
    let err = s.fails(&["get", "deploy", "web"], None);
    assert!(err.contains("deployments.apps \"web\" not found"), "{err}");
}

#[test]
fn patch_label_annotate_scale_and_server_side_apply() {
    let s = Server::start("patch");
    s.create_cm("cfg", "a: \"1\"");
    s.ok(&["patch", "configmap", "cfg", "--type=merge", "-p", r#"{"data":{"b":"2"}}"#]);
    s.ok(&["patch", "configmap", "cfg", "--type=json", "-p", r#"[{"op":"replace","path":"/data/a","value":"10"}]"#]);
    s.ok(&["patch", "configmap", "cfg", "--type=strategic", "-p", r#"{"data":{"c":"3"}}"#]);
    let data = s.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data.a},{.data.b},{.data.c}"]);
    assert_eq!(data, "10,2,3");
    let err = s.fails(&["patch", "configmap", "cfg", "--type=json", "-p", r#"[{"op":"test","path":"/data/a","value":"nope"}]"#], None);
    assert!(err.contains("test"), "{err}");
    s.ok(&["label", "cm", "cfg", "tier=db"]);
    let err = s.fails(&["label", "cm", "cfg", "tier=web"], None);
    assert!(err.contains("already has a value"), "{err}");
    s.ok(&["label", "cm", "cfg", "tier=web", "--overwrite"]);
    s.ok(&["annotate", "cm", "cfg", "note=x"]);
    s.ok(&["annotate", "cm", "cfg", "note=y", "--overwrite"]);
    let meta = s.ok(&["get", "cm", "cfg", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.note}"]);
    assert_eq!(meta, "web y");
    let selected = s.ok(&["get", "cm", "-l", "tier=web", "-o", "name"]);
    assert_eq!(selected.trim(), "configmap/cfg");
    let none = s.ok(&["get", "cm", "-l", "tier=db", "-o", "name"]);
    assert_eq!(none.trim(), "");

    s.ok_stdin(&["apply", "-f", "-"], DEPLOY);
    s.ok(&["scale", "deploy", "web", "--replicas=4"]);
    assert_eq!(s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]), "4");

    let ssa = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa, labels: {owner: me}}
data: {k: v}
"#;
    s.ok_stdin(&["apply", "--server-side", "-f", "-"], ssa);
    s.ok_stdin(&["apply", "--server-side", "-f", "-"], ssa);
    let managers = s.ok(&["get", "cm", "ssa", "-o", "jsonpath={.metadata.managedFields[*].manager}"]);
    assert_eq!(managers, "kubectl");
    // Another manager changing the same field conflicts unless forced.
    let other = ssa.replace("k: v", "k: other");
    let err = s.fails(&["apply", "--server-side", "--field-manager=intruder", "-f", "-"], Some(&other));
    assert!(err.contains("conflict"), "{err}");
    s.ok_stdin(&["apply", "--server-side", "--field-manager=intruder", "--force-conflicts", "-f", "-"], &other);
    assert_eq!(s.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.k}"]), "other");
}

#[test]
fn edit_wait_watch_and_raw() {
    let s = Server::start("edit");
    s.create_cm("ed", "a: \"1\"");
    let editor = s.dir.join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/a: \"1\"/a: \"edited\"/' \"$1\"\n").expect("editor");
    std::process::Command::new("chmod").arg("+x").arg(&editor).status().expect("chmod");
    let editor_s = editor.display().to_string();
    let out = kubectl_with(&s.kubeconfig, &["edit", "cm", "ed"], None, &[("EDITOR", editor_s.as_str()), ("KUBE_EDITOR", editor_s.as_str())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.ok(&["get", "cm", "ed", "-o", "jsonpath={.data.a}"]), "edited");

    // get -w sees a change made by another client.
    let mut watcher = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["get", "cm", "-w", "--output-watch-events", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl watch");
    std::thread::sleep(std::time::Duration::from_secs(2));
    s.create_cm("late", "x: \"z\"");
    s.ok(&["delete", "configmap", "late"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let _ = watcher.kill();
    let out = watcher.wait_with_output().expect("watch output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"ADDED\"") && text.contains("\"name\":\"late\""), "{text}");
    assert!(text.contains("\"DELETED\""), "{text}");

    // wait --for=delete returns once the object is gone.
    s.create_cm("doomed", "x: \"z\"");
    let path = s.kubeconfig.clone();
    let waiter = std::thread::spawn(move || kubectl_with(&path, &["wait", "--for=delete", "cm/doomed", "--timeout=30s"], None, &[]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.ok(&["delete", "cm", "doomed"]);
    let out = waiter.join().expect("waiter");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let raw = s.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps/ed"]);
    let v: serde_json::Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(v["data"]["a"], "edited");
    assert!(v["metadata"]["resourceVersion"].as_str().map(|r| !r.is_empty()).unwrap_or(false));
}

#[test]
fn custom_resources_end_to_end() {
    let s = Server::start("crd");
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crontabs.stable.example.com}
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              replicas: {type: integer, minimum: 1, maximum: 10}
"#;
    s.ok_stdin(&["apply", "-f", "-"], crd);
    s.ok(&["wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=30s"]);
    assert!(eventually(20, || s.ok(&["api-resources"]).contains("crontabs")));
    let cr = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: nightly}\nspec: {cronSpec: '0 3 * * *', replicas: 2}\n";
    s.ok_stdin(&["apply", "-f", "-"], cr);
    let table = s.ok(&["get", "ct"]);
    assert!(table.contains("nightly") && table.contains("0 3 * * *"), "{table}");
    let bad = cr.replace("replicas: 2", "replicas: 20");
    let err = s.fails(&["apply", "-f", "-"], Some(&bad));
    assert!(err.contains("spec.replicas"), "{err}");
    s.ok(&["delete", "crontab", "nightly"]);
}

#[test]
fn bad_input_is_rejected_with_a_clear_status_and_changes_nothing() {
    let s = Server::start("bad");
    let before = s.ok(&["get", "cm", "-A", "-o", "name"]);
    let dir = &s.dir;
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {").expect("write");
    let err = s.fails(&["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", broken.to_str().unwrap_or("")], None);
    assert!(err.contains("not valid JSON") || err.contains("BadRequest"), "{err}");
    let unknown = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict}\ndata: {a: b}\nbogus: 1\n";
    let err = s.fails(&["create", "-f", "-"], Some(unknown));
    assert!(err.contains("unknown field \"bogus\""), "{err}");
    // Without strict validation the unknown field is dropped, as upstream
    // does; --validate=warn says so.
    let out = s.kubectl_stdin(&["create", "--validate=warn", "-f", "-"], Some(unknown));
    assert!(out.status.success());
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("unknown field \"bogus\""), "{warned}");
    let stored = s.ok(&["get", "cm", "strict", "-o", "json"]);
    assert!(!stored.contains("bogus"), "{stored}");
    s.ok(&["delete", "cm", "strict"]);
    s.ok_stdin(&["create", "--validate=false", "-f", "-"], unknown);
    assert!(!s.ok(&["get", "cm", "strict", "-o", "json"]).contains("bogus"));
    s.ok(&["delete", "cm", "strict"]);
    let badname = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_Valid}\n";
    let err = s.fails(&["create", "-f", "-"], Some(badname));
    assert!(err.contains("is invalid") && err.contains("metadata.name"), "{err}");
    let selector_mismatch = DEPLOY.replace("template:\n    metadata:\n      labels: {app: web}", "template:\n    metadata:\n      labels: {app: other}");
    let err = s.fails(&["create", "-f", "-"], Some(&selector_mismatch));
    assert!(err.contains("`selector` does not match template `labels`"), "{err}");
    let wrong = dir.join("wrong.json");
    std::fs::write(&wrong, r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"}}"#).expect("write");
    let err = s.fails(&["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", wrong.to_str().unwrap_or("")], None);
    assert!(err.contains("does not match"), "{err}");
    let big = dir.join("big.json");
    let payload = "x".repeat(3 * 1024 * 1024 + 10);
    std::fs::write(&big, format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"a\":\"{payload}\"}}}}")).expect("write");
    let err = s.fails(&["create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", big.to_str().unwrap_or("")], None);
    assert!(err.contains("too large") || err.contains("RequestEntityTooLarge"), "{err}");
    let err = s.fails(&["get", "--raw", "/apis/nope.example.com/v1/things"], None);
    assert!(err.contains("NotFound") || err.contains("could not find"), "{err}");
    assert_eq!(s.ok(&["get", "cm", "-A", "-o", "name"]), before);
    assert!(!s.log().contains("panicked"), "server panicked:\n{}", s.log());
}

#[test]
fn get_all_and_tables() {
    let s = Server::start("tables");
    s.ok_stdin(&["apply", "-f", "-"], DEPLOY);
    s.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n");
    let all = s.ok(&["get", "all", "-A"]);
    assert!(all.contains("deployment.apps/web"), "{all}");
    assert!(all.contains("service/web"), "{all}");
    let deploy = s.ok(&["get", "deploy"]);
    let header: Vec<&str> = deploy.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let wide = s.ok(&["get", "deploy", "-o", "wide"]);
    assert!(wide.lines().next().unwrap_or("").contains("IMAGES"), "{wide}");
    let explain = s.ok(&["explain", "deployment.spec.strategy"]);
    assert!(explain.contains("rollingUpdate"), "{explain}");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut s = Server::start("kill9");
    let kubeconfig = s.kubeconfig.clone();
    // Four concurrent writers; the server is killed while they run.
    let mut workers = Vec::new();
    for w in 0..4 {
        let kc = kubeconfig.clone();
        workers.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            for i in 0..400 {
                let name = format!("w{w}-{i}");
                let manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: v}}\n");
                let out = kubectl_with(&kc, &["create", "-f", "-"], Some(&manifest), &[]);
                if out.status.success() {
                    acked.push(name);
                } else {
                    break;
                }
            }
            acked
        }));
    }
    std::thread::sleep(std::time::Duration::from_secs(6));
    s.kill9();
    let acked: Vec<String> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    assert!(!acked.is_empty(), "no write was acknowledged before the kill");
    s.restart_after_kill9();
    let s2 = &s;
    let names = s2.ok(&["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"]);
    let present: std::collections::HashSet<&str> = names.split_whitespace().collect();
    let lost: Vec<&String> = acked.iter().filter(|n| !present.contains(n.as_str())).collect();
    assert!(lost.is_empty(), "{} acknowledged objects lost after kill -9: {:?}", lost.len(), &lost[..lost.len().min(10)]);
}

/// kubectl's typed generators send protobuf bodies.
#[test]
fn imperative_create_commands_send_protobuf() {
    let s = Server::start("protobuf");
    s.ok(&["create", "namespace", "team"]);
    s.ok(&["-n", "team", "create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=two"]);
    s.ok(&["-n", "team", "create", "secret", "generic", "pw", "--from-literal=password=s3cret"]);
    s.ok(&["-n", "team", "create", "serviceaccount", "bot"]);
    s.ok(&["-n", "team", "create", "service", "nodeport", "web", "--tcp=80:8080"]);
    assert_eq!(s.ok(&["-n", "team", "get", "cm", "cfg", "-o", "jsonpath={.data.a},{.data.b}"]), "1,two");
    // base64 of "s3cret"
    assert_eq!(s.ok(&["-n", "team", "get", "secret", "pw", "-o", "jsonpath={.data.password}"]), "czNjcmV0");
    assert_eq!(s.ok(&["-n", "team", "get", "sa", "bot", "-o", "name"]).trim(), "serviceaccount/bot");
    assert_eq!(s.ok(&["-n", "team", "get", "svc", "web", "-o", "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort}"]), "NodePort 80 8080");
    s.ok(&["-n", "team", "create", "deployment", "d", "--image=registry.local/app:1", "--replicas=2", "--port=8080"]);
    assert_eq!(
        s.ok(&["-n", "team", "get", "deploy", "d", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort} {.spec.strategy.rollingUpdate.maxSurge}"]),
        "2 8080 25%"
    );
    s.ok(&["-n", "team", "run", "one", "--image=registry.local/app:1", "--env=MODE=test", "--labels=run=one"]);
    assert_eq!(s.ok(&["-n", "team", "get", "pod", "one", "-o", "jsonpath={.spec.containers[0].env[0].value} {.metadata.labels.run} {.spec.restartPolicy}"]), "test one Always");
    s.ok(&["-n", "team", "create", "job", "once", "--image=registry.local/app:1"]);
    s.ok(&["-n", "team", "create", "cronjob", "nightly", "--image=registry.local/app:1", "--schedule=0 3 * * *"]);
    assert_eq!(s.ok(&["-n", "team", "get", "cronjob", "nightly", "-o", "jsonpath={.spec.schedule}"]), "0 3 * * *");
    s.ok(&["-n", "team", "create", "role", "reader", "--verb=get", "--verb=list", "--resource=pods"]);
    s.ok(&["-n", "team", "create", "rolebinding", "bot-reads", "--role=reader", "--serviceaccount=team:bot"]);
    assert_eq!(s.ok(&["-n", "team", "get", "rolebinding", "bot-reads", "-o", "jsonpath={.roleRef.name} {.subjects[0].kind} {.subjects[0].name}"]), "reader ServiceAccount bot");
    s.ok(&["-n", "team", "create", "poddisruptionbudget", "pdb", "--selector=app=d", "--min-available=1"]);
    s.ok(&["-n", "team", "create", "ingress", "web", "--rule=example.com/*=web:80"]);
    assert_eq!(
        s.ok(&["-n", "team", "get", "ingress", "web", "-o", "jsonpath={.spec.rules[0].host} {.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.port.number}"]),
        "example.com Prefix 80"
    );
    // Kinds and nested messages without a protobuf table are refused with a
    // 415 naming them: see control/src/proto/decode.rs tests.
}
