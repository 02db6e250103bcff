//! Pod volumes against a real API server: the agent's volume setup driven
//! directly with pods created through kubectl (what the pod worker calls),
//! checking the files, modes, tokens, tmpfs mounts, live updates and the
//! local-path provisioner on the host.

mod common;

use common::{eventually, Server};
use coracle_agent::volumes::{self, local_path};
use coracle_agent::{AgentConfig, Context};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// base64url without padding (JWT parts).
fn b64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    serde_json::from_slice(&b64(parts[1])).expect("JWT claims")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// An agent context on the server's API (admin credentials) with its own
/// data dir; no container runtime is needed to set volumes up.
async fn context(s: &Server, node: &str) -> Arc<Context> {
    let client = coracle_agent::client_from_kubeconfig(&s.kubeconfig).await.expect("client");
    let cfg = AgentConfig::new(node, s.dir.join("node"));
    let cri = coracle_agent::cri::Cri::new(&s.dir.join("no-runtime.sock")).expect("cri client");
    let health = tokio::sync::watch::channel(coracle_agent::containerd::Health::Running { pid: 0 }).1;
    Arc::new(Context { cfg, client, cri, runtime_health: health, started: std::time::Instant::now() })
}

fn get_pod(s: &Server, name: &str) -> Pod {
    serde_json::from_str(&s.ok(&["get", "pod", name, "-o", "json"])).expect("pod json")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fs_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.display().to_string();
    info.lines().find(|l| l.split(' ').nth(4) == Some(want.as_str())).and_then(|l| l.split(" - ").nth(1)).and_then(|r| r.split(' ').next()).map(str::to_string)
}

fn wait_for_default_account(s: &Server) {
    assert!(eventually(30, || s.kubectl(&["get", "sa", "default"]).status.success()
        && s.kubectl(&["get", "cm", "kube-root-ca.crt"]).status.success()));
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: vols, labels: {app: vols, tier: "front"}}
spec:
  nodeName: n1
  securityContext: {}
  containers:
  - name: c
    image: busybox
    env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /info}
    - {name: scratch, mountPath: /scratch, subPathExpr: "logs/$(POD)"}
    - {name: mem, mountPath: /mem}
    - {name: host, mountPath: /host, readOnly: true, mountPropagation: HostToContainer}
  volumes:
  - name: cfg
    configMap: {name: cfg, defaultMode: 0400, items: [{key: a, path: dir/a.txt}, {key: b, path: b.txt, mode: 0600}]}
  - name: sec
    secret: {secretName: sec, defaultMode: 0440}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: name, fieldRef: {fieldPath: metadata.name}}]}
  - {name: scratch, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
  - name: host
    hostPath: {path: HOSTDIR, type: DirectoryOrCreate}
"#;

#[test]
fn api_backed_volumes_are_written_updated_and_torn_down() {
    let s = Server::start("volumes-setup");
    wait_for_default_account(&s);
    s.ok(&["create", "configmap", "cfg", "--from-literal=a=one", "--from-literal=b=two"]);
    s.ok(&["create", "secret", "generic", "sec", "--from-literal=user=admin"]);
    let host_dir = s.dir.join("host-dir");
    s.ok_stdin(&["apply", "-f", "-"], &POD.replace("HOSTDIR", &host_dir.display().to_string()));
    let rt = rt();
    let ctx = rt.block_on(context(&s, "n1"));
    let pod = get_pod(&s, "vols");
    let uid = pod.metadata.uid.clone().expect("uid");
    let mut pv = rt.block_on(volumes::setup(&ctx, &pod)).expect("setup");
    // Idempotent.
    let pv2 = rt.block_on(volumes::setup(&ctx, &pod)).expect("setup again");
    let dir = ctx.cfg.pods_dir().join(&uid).join("volumes");

    // configMap with items and modes, in the ..data layout.
    let cfg = dir.join("kubernetes.io~configmap/cfg");
    assert_eq!(pv2.host_path("cfg"), Some(cfg.as_path()));
    assert_eq!(read(&cfg.join("dir/a.txt")), "one");
    assert_eq!(mode(&cfg.join("dir/a.txt")), 0o400);
    assert_eq!(mode(&cfg.join("b.txt")), 0o600);
    assert_eq!(std::fs::read_link(cfg.join("b.txt")).expect("link"), PathBuf::from("..data/b.txt"));
    let first_version = std::fs::read_link(cfg.join("..data")).expect("..data");
    // secret: tmpfs, defaultMode.
    let sec = dir.join("kubernetes.io~secret/sec");
    assert_eq!(read(&sec.join("user")), "admin");
    assert_eq!(mode(&sec.join("user")), 0o440);
    assert_eq!(fs_type(&sec).as_deref(), Some("tmpfs"));
    // downwardAPI labels.
    let info = dir.join("kubernetes.io~downward-api/info");
    assert_eq!(read(&info.join("labels")), "app=\"vols\"\ntier=\"front\"");
    assert_eq!(read(&info.join("name")), "vols");
    // emptyDirs: disk 0777, Memory on tmpfs.
    assert_eq!(mode(&dir.join("kubernetes.io~empty-dir/scratch")), 0o777);
    assert_eq!(fs_type(&dir.join("kubernetes.io~empty-dir/mem")).as_deref(), Some("tmpfs"));
    // hostPath made.
    assert!(host_dir.is_dir());
    // The API access volume the admission added: token, CA, namespace.
    let api_vol = pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).and_then(|v| v.iter().find(|v| v.name.starts_with("kube-api-access-")))
        .expect("kube-api-access volume").name.clone();
    let api_dir = dir.join("kubernetes.io~projected").join(&api_vol);
    let claims = jwt_claims(&read(&api_dir.join("token")));
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], uid.as_str());
    assert_eq!(read(&api_dir.join("namespace")), "default");
    let ca = s.ok(&["get", "cm", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"]);
    assert_eq!(read(&api_dir.join("ca.crt")), ca);
    assert_eq!(mode(&api_dir.join("token")), 0o644);

    // Mounts: read-only API volumes, subPathExpr, propagation, etc-hosts, termination log.
    pv.write_etc_hosts(&["10.42.0.9".to_string()]).expect("etc-hosts");
    let c = pod.spec.as_ref().map(|s| s.containers[0].clone()).expect("container");
    let mounts = pv.mounts_for(&c).expect("mounts");
    let m = |p: &str| mounts.iter().find(|m| m.container_path == p).unwrap_or_else(|| panic!("no mount {p}: {mounts:?}"));
    assert!(m("/cfg").readonly && m("/sec").readonly && m("/host").readonly && !m("/scratch").readonly);
    assert!(m("/scratch").host_path.ends_with("kubernetes.io~empty-dir/scratch/logs/vols"), "{:?}", m("/scratch"));
    assert_eq!(m("/host").propagation, 1);
    assert!(read(Path::new(&m("/etc/hosts").host_path)).contains("10.42.0.9\tvols\n"));
    let term = PathBuf::from(&m("/dev/termination-log").host_path);
    assert_eq!(mode(&term), 0o666);
    assert!(m("/var/run/secrets/kubernetes.io/serviceaccount").readonly);
    // The same mounts without keeping the PodVolumes (read back from disk).
    let again = volumes::mounts(&ctx, &pod, &c).expect("mounts from the record");
    assert_eq!(again.len(), mounts.len());
    assert_eq!(again.iter().find(|x| x.container_path == "/scratch").map(|x| &x.host_path), Some(&m("/scratch").host_path));

    // Live updates: the background task follows the ConfigMap and labels.
    let task = rt.spawn(volumes::run(ctx.clone()));
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: uno, b: two}\n");
    s.ok(&["label", "pod", "vols", "tier=back", "--overwrite"]);
    assert!(eventually(30, || std::fs::read_to_string(cfg.join("dir/a.txt")).ok().as_deref() == Some("uno")), "configMap not updated");
    assert!(eventually(30, || std::fs::read_to_string(info.join("labels")).ok().as_deref() == Some("app=\"vols\"\ntier=\"back\"")), "labels not updated");
    assert_ne!(std::fs::read_link(cfg.join("..data")).expect("..data"), first_version);
    assert_eq!(mode(&cfg.join("dir/a.txt")), 0o400);
    task.abort();

    // A missing, non-optional ConfigMap is upstream's FailedMount message.
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: missing}\nspec: {nodeName: n1, automountServiceAccountToken: false, containers: [{name: c, image: busybox}], volumes: [{name: v, configMap: {name: nope}}, {name: w, secret: {secretName: gone}}]}\n");
    let err = rt.block_on(volumes::setup(&ctx, &get_pod(&s, "missing"))).expect_err("missing configmap");
    assert_eq!(err.to_string(), "MountVolume.SetUp failed for volume \"v\" : configmap \"nope\" not found");
    assert_eq!(err.cause(), "configmap \"nope\" not found");
    assert!(!err.is_waiting());

    // Teardown unmounts the tmpfs and removes the pod's directory.
    rt.block_on(volumes::teardown(&ctx, &uid));
    assert!(!ctx.cfg.pods_dir().join(&uid).exists());
    assert!(fs_type(&sec).is_none());
}

#[test]
fn local_path_claims_are_provisioned_bound_kept_and_reclaimed() {
    let s = Server::start("volumes-localpath");
    wait_for_default_account(&s);
    let rt = rt();
    let ctx = rt.block_on(context(&s, "n1"));
    rt.block_on(local_path::ensure_class(&ctx.client)).expect("class");
    let sc = s.ok(&["get", "storageclass"]);
    assert!(sc.contains("local-path (default)") && sc.contains("rancher.io/local-path") && sc.contains("WaitForFirstConsumer"), "{sc}");
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {storageClassName: local-path, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n");
    let pod = |name: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{nodeName: n1, automountServiceAccountToken: false, containers: [{{name: c, image: busybox}}], volumes: [{{name: d, persistentVolumeClaim: {{claimName: data}}}}]}}\n")
    };
    // An unknown claim waits.
    s.ok_stdin(&["apply", "-f", "-"], &pod("p0").replace("claimName: data", "claimName: ghost"));
    let err = rt.block_on(volumes::setup(&ctx, &get_pod(&s, "p0"))).expect_err("no claim");
    assert!(err.is_waiting() && err.to_string().contains("persistentvolumeclaims \"ghost\" not found"), "{err}");

    s.ok_stdin(&["apply", "-f", "-"], &pod("p1"));
    let pv = rt.block_on(volumes::setup(&ctx, &get_pod(&s, "p1"))).expect("setup with claim");
    let path = pv.host_path("d").expect("claim path").to_path_buf();
    assert!(path.starts_with(s.dir.join("node/storage")) && path.is_dir(), "{}", path.display());
    assert_eq!(s.ok(&["get", "pvc", "data", "-o", "jsonpath={.status.phase}"]), "Bound");
    let pv_name = s.ok(&["get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}"]);
    assert!(pv_name.starts_with("pvc-"));
    assert_eq!(s.ok(&["get", "pv", &pv_name, "-o", "jsonpath={.status.phase}"]), "Bound");
    std::fs::write(path.join("kept"), "yes").expect("write data");

    // The pod goes, another comes: same directory, same data.
    s.ok(&["delete", "pod", "p1", "--force", "--grace-period=0"]);
    s.ok_stdin(&["apply", "-f", "-"], &pod("p2"));
    let pv2 = rt.block_on(volumes::setup(&ctx, &get_pod(&s, "p2"))).expect("setup again");
    assert_eq!(read(&pv2.host_path("d").expect("path").join("kept")), "yes");

    // Not reclaimed while a pod uses it; then the claim goes, and so do PV and data.
    s.ok(&["delete", "pvc", "data", "--wait=false"]);
    let p2 = Arc::new(get_pod(&s, "p2"));
    rt.block_on(local_path::reclaim(&ctx, &[p2])).expect("reclaim");
    assert!(path.is_dir());
    s.ok(&["delete", "pod", "p2", "--force", "--grace-period=0"]);
    rt.block_on(local_path::reclaim(&ctx, &[])).expect("reclaim");
    assert!(!path.exists());
    assert!(eventually(10, || !s.kubectl(&["get", "pv", &pv_name]).status.success()));
}

// ---- Real pods on a node (coracle server with its agent and containerd) ----

fn wait_ready(s: &Server, pod: &str) {
    let out = s.kubectl(&["wait", "--for=condition=Ready", &format!("pod/{pod}"), "--timeout=90s"]);
    assert!(
        out.status.success(),
        "pod {pod} not ready: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.kubectl(&["describe", "pod", pod]).stdout.iter().map(|b| *b as char).collect::<String>(),
        s.log().lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
}

/// A file the pod wrote into its hostPath `out` directory.
fn report(out: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(out.join(name)).ok().map(|s| s.trim_end().to_string())
}

/// What the containers see, written into the hostPath `out` (read by the
/// test on the host): files, modes, mounts, writability, then the
/// configMap and labels again every half second.
const REAL_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: vols, labels: {app: vols}}
spec:
  terminationGracePeriodSeconds: 1
  # Hosts with little free disk (CI) taint their node with disk pressure.
  tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
  containers:
  - name: main
    image: coracle.local/busybox:1
    command:
    - sh
    - -c
    - |
      echo hi > /shared/msg
      SA=/var/run/secrets/kubernetes.io/serviceaccount
      cp $SA/token /out/token; cp $SA/namespace /out/namespace; cp $SA/ca.crt /out/ca.crt
      cp /sec/user /out/sec
      stat -L -c %a /cfg/dir/a.txt > /out/cfg-mode
      stat -L -c %a /sec/user > /out/sec-mode
      if touch /cfg/new 2>/dev/null; then echo yes; else echo no; fi > /out/cfg-writable
      grep ' /mem ' /proc/mounts > /out/mem
      cp /etc/hosts /out/hosts
      while true; do
        cat /cfg/dir/a.txt > /out/cfg.tmp && mv /out/cfg.tmp /out/cfg
        cat /info/labels > /out/labels.tmp && mv /out/labels.tmp /out/labels
        sleep 0.5
      done
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /info}
    - {name: shared, mountPath: /shared}
    - {name: mem, mountPath: /mem}
    - {name: out, mountPath: /out}
  - name: side
    image: coracle.local/busybox:1
    command: ["sh", "-c", "until [ -s /from-main/msg ]; do sleep 0.2; done; cp /from-main/msg /out/side-saw; sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /from-main}, {name: out, mountPath: /out}]
  volumes:
  - name: cfg
    configMap: {name: cfg, defaultMode: 0400, items: [{key: a, path: dir/a.txt}]}
  - name: sec
    secret: {secretName: sec, defaultMode: 0440}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  - {name: shared, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - name: out
    hostPath: {path: HOSTDIR, type: DirectoryOrCreate}
"#;

#[test]
fn pods_read_and_share_their_volumes() {
    let s = Server::start_node("volpods", &[]);
    assert!(s.wait_image(common::node::BUSYBOX), "busybox not imported");
    wait_for_default_account(&s);
    s.ok(&["create", "configmap", "cfg", "--from-literal=a=one"]);
    s.ok(&["create", "secret", "generic", "sec", "--from-literal=user=admin"]);
    let out = s.dir.join("pod-out");
    s.ok_stdin(&["apply", "-f", "-"], &REAL_POD.replace("HOSTDIR", &out.display().to_string()));
    wait_ready(&s, "vols");
    // The hostPath was made; the pod writes its report into it.
    assert!(eventually(30, || report(&out, "labels").is_some() && report(&out, "side-saw").is_some()), "no report from the pod");

    assert_eq!(report(&out, "cfg").as_deref(), Some("one"));
    assert_eq!(report(&out, "cfg-mode").as_deref(), Some("400"));
    assert_eq!(report(&out, "sec").as_deref(), Some("admin"));
    assert_eq!(report(&out, "sec-mode").as_deref(), Some("440"));
    assert_eq!(report(&out, "labels").as_deref(), Some("app=\"vols\""));
    assert_eq!(report(&out, "cfg-writable").as_deref(), Some("no"), "configMap volumes are read-only");
    // The service account token is a JWT for the pod's account, with the CA and namespace.
    let claims = jwt_claims(&report(&out, "token").unwrap_or_default());
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "vols");
    assert_eq!(report(&out, "namespace").as_deref(), Some("default"));
    let ca = s.ok(&["get", "cm", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"]);
    assert_eq!(report(&out, "ca.crt").as_deref(), Some(ca.trim_end()));
    // emptyDir shared between containers; Memory emptyDir is a tmpfs of its size.
    assert_eq!(report(&out, "side-saw").as_deref(), Some("hi"));
    let mem = report(&out, "mem").unwrap_or_default();
    assert!(mem.starts_with("tmpfs /mem tmpfs") && mem.contains("size=8192k"), "{mem}");

    // The kubelet-managed /etc/hosts names the pod on its IP.
    let ip = s.ok(&["get", "pod", "vols", "-o", "jsonpath={.status.podIP}"]);
    let hosts = report(&out, "hosts").unwrap_or_default();
    assert!(hosts.starts_with("# Kubernetes-managed hosts file.") && hosts.contains(&format!("{ip}\tvols")), "{hosts}");

    // Termination messages: from the file, or the log's tail on failure.
    let term = |name: &str, policy: &str, script: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{restartPolicy: Never, automountServiceAccountToken: false, tolerations: [{{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}}], containers: [{{name: c, image: coracle.local/busybox:1, terminationMessagePolicy: {policy}, command: [sh, -c, \"{script}\"]}}]}}\n")
    };
    s.ok_stdin(&["apply", "-f", "-"], &term("by-file", "File", "echo bye > /dev/termination-log; exit 3"));
    s.ok_stdin(&["apply", "-f", "-"], &term("by-log", "FallbackToLogsOnError", "echo from-log; exit 2"));
    let message = |pod: &str| s.ok(&["get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state.terminated.message}"]);
    assert!(eventually(60, || message("by-file") == "bye\n"), "by-file: {:?}", message("by-file"));
    assert!(eventually(60, || message("by-log") == "from-log\n"), "by-log: {:?}", message("by-log"));

    // Updates reach the running pod.
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: two}\n");
    s.ok(&["label", "pod", "vols", "tier=back"]);
    assert!(eventually(60, || report(&out, "cfg").as_deref() == Some("two")), "configMap update not seen");
    assert!(eventually(60, || report(&out, "labels").as_deref() == Some("app=\"vols\"\ntier=\"back\"")), "labels update not seen");

    // Deleted: its directory goes (tmpfs unmounted).
    let uid = s.ok(&["get", "pod", "vols", "-o", "jsonpath={.metadata.uid}"]);
    s.ok(&["delete", "pod", "vols", "--timeout=60s"]);
    let pod_dir = s.dir.join("agent/pods").join(&uid);
    assert!(eventually(30, || !pod_dir.exists()), "{} left behind", pod_dir.display());
}

#[test]
fn local_path_claim_keeps_data_across_pods() {
    let s = Server::start_node("volpvc", &[]);
    assert!(s.wait_image(common::node::BUSYBOX), "busybox not imported");
    wait_for_default_account(&s);
    assert!(eventually(30, || s.ok(&["get", "storageclass"]).contains("local-path (default)")), "no default local-path class");
    s.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}\n");
    let pod = |name: &str, cmd: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{terminationGracePeriodSeconds: 1, tolerations: [{{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}}], containers: [{{name: c, image: coracle.local/busybox:1, command: [sh, -c, \"{cmd}\"], volumeMounts: [{{name: d, mountPath: /data}}]}}], volumes: [{{name: d, persistentVolumeClaim: {{claimName: data}}}}]}}\n")
    };
    s.ok_stdin(&["apply", "-f", "-"], &pod("writer", "echo kept > /data/f; sleep 3600"));
    wait_ready(&s, "writer");
    assert_eq!(s.ok(&["get", "pvc", "data", "-o", "jsonpath={.status.phase}"]), "Bound");
    let pv = s.ok(&["get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}"]);
    let path = PathBuf::from(s.ok(&["get", "pv", &pv, "-o", "jsonpath={.spec.hostPath.path}"]));
    assert!(path.starts_with(s.dir.join("storage")), "{}", path.display());
    assert!(eventually(10, || path.join("f").exists()));
    s.ok(&["delete", "pod", "writer", "--timeout=60s"]);
    s.ok_stdin(&["apply", "-f", "-"], &pod("reader", "echo seen-$(cat /data/f) > /data/seen; sleep 3600"));
    wait_ready(&s, "reader");
    assert!(eventually(10, || report(&path, "seen").as_deref() == Some("seen-kept")), "the second pod did not see the data");

    // Pod and claim gone: the volume and its data are deleted.
    s.ok(&["delete", "pod", "reader", "--timeout=60s"]);
    s.ok(&["delete", "pvc", "data", "--timeout=60s"]);
    assert!(eventually(60, || !s.kubectl(&["get", "pv", &pv]).status.success()), "PV {pv} not deleted");
    assert!(!path.exists(), "{} not deleted", path.display());
}
