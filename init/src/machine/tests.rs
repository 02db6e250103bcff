use super::*;

const FULL: &str = r#"apiVersion: coracle.dev/v1alpha1
kind: MachineConfig
node:
  role: server
  name: edge-1
  labels:
    site: north
  taints: ["dedicated=edge:NoSchedule"]
cluster:
  serviceCIDR: 10.43.0.0/16
  tlsSans: [edge-1.local]
network:
  hostname: edge-1
  interfaces:
    - name: eth0
      dhcp: true
    - name: eth1
      addresses: [192.168.7.2/24]
      gateway: 192.168.7.1
  nameservers: [1.1.1.1]
time:
  ntpServers: [time.example.org]
fleet:
  url: https://fleet.example.org
  enrollmentToken: abc
boot:
  healthDeadlineSeconds: 300
manifests:
  hello.yaml: |
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: hello}
"#;

#[test]
fn a_full_example_parses() {
    let c = parse(FULL, "m.yaml").expect("valid");
    assert_eq!(c.node.role, Role::Server);
    assert_eq!(c.network.interfaces[1].addresses, vec!["192.168.7.2/24".to_string()]);
    assert_eq!(c.network.interfaces[1].dhcp, Some(false), "static interfaces do not run DHCP");
    assert_eq!(c.boot.health_deadline_seconds, Some(300));
    assert!(c.manifests.contains_key("hello.yaml"));
}

#[test]
fn a_minimal_config_gets_defaults() {
    let c = parse("apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\n", "m.yaml").expect("valid");
    assert_eq!(c.node.role, Role::Server);
    assert_eq!(c.network.interfaces.len(), 1);
    assert_eq!(c.network.interfaces[0].name, "*");
    assert_eq!(c.network.interfaces[0].dhcp, Some(true));
    assert!(!c.time.ntp_servers.is_empty());
    assert_eq!(c.boot.health_deadline_seconds, Some(DEFAULT_HEALTH_DEADLINE));
}

#[test]
fn the_shipped_examples_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("docs/examples exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2, "examples found in {}", dir.display());
}

fn err(text: &str) -> ConfigError {
    parse(text, "m.yaml").expect_err("must be refused")
}

const HEAD: &str = "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\n";

#[test]
fn an_unknown_field_names_its_line_and_field() {
    let e = err(&format!("{HEAD}network:\n  interfaces:\n    - name: eth0\n      dchp: true\n"));
    assert_eq!(e.line(), Some(6), "{e}");
    assert!(e.to_string().contains("unknown field `dchp`"), "{e}");
    assert!(e.field().is_some_and(|f| f.starts_with("network.interfaces")), "{e}");
}

#[test]
fn a_wrong_type_names_its_line_and_field() {
    let e = err(&format!("{HEAD}boot:\n  healthDeadlineSeconds: soon\n"));
    assert_eq!(e.line(), Some(4), "{e}");
    assert_eq!(e.field(), Some("boot.healthDeadlineSeconds"), "{e}");
    let e = err(&format!("{HEAD}network:\n  nameservers: [1.1.1.1, dns.example]\n"));
    assert_eq!(e.line(), Some(4), "{e}");
}

#[test]
fn an_unknown_role_is_refused() {
    let e = err(&format!("{HEAD}node:\n  role: master\n"));
    assert_eq!(e.line(), Some(4), "{e}");
    assert!(e.to_string().contains("unknown variant `master`"), "{e}");
}

#[test]
fn semantic_mistakes_name_their_line_and_field() {
    let cases: &[(&str, usize, &str, &str)] = &[
        ("apiVersion: v1\nkind: MachineConfig\n", 1, "apiVersion", "not supported"),
        (&format!("{HEAD}node:\n  role: agent\n"), 4, "cluster.server", "needs the URL"),
        (&format!("{HEAD}node:\n  role: agent\ncluster:\n  server: https://s:6443\n"), 6, "cluster.token", "join token"),
        (&format!("{HEAD}network:\n  interfaces:\n    - name: eth0\n    - name: eth1\n      addresses: [10.0.0.300]\n"), 7, "network.interfaces[1].addresses[0]", "prefix length"),
        (&format!("{HEAD}network:\n  interfaces:\n    - name: eth0\n      dhcp: true\n      addresses: [10.0.0.3/24]\n"), 6, "network.interfaces[0].dhcp", "either"),
        (&format!("{HEAD}time:\n  ntpServers: [\"not a host\"]\n"), 4, "time.ntpServers[0]", "neither"),
        (&format!("{HEAD}fleet:\n  url: http://fleet\n  enrollmentToken: x\n"), 4, "fleet.url", "https://"),
        (&format!("{HEAD}boot:\n  healthDeadlineSeconds: 5\n"), 4, "boot.healthDeadlineSeconds", "too short"),
        (&format!("{HEAD}node:\n  taints: [\"a=b\"]\n"), 4, "node.taints[0]", "Effect"),
        (&format!("{HEAD}manifests:\n  x.yaml: \"a: [\"\n"), 4, "manifests[\"x.yaml\"]", "not valid YAML"),
        (&format!("{HEAD}cluster:\n  caCert: \"-----BEGIN CERTIFICATE-----\"\n"), 4, "cluster.caKey", "give both"),
    ];
    for (text, line, field, words) in cases {
        let e = err(text);
        assert_eq!(e.field(), Some(*field), "{text}\n=> {e}");
        assert_eq!(e.line(), Some(*line), "{text}\n=> {e}");
        assert!(e.to_string().contains(words), "{text}\n=> {e}");
        assert!(e.to_string().starts_with(&format!("m.yaml:{line}: {field}: ")), "{e}");
    }
}

#[test]
fn malformed_yaml_names_its_line() {
    let e = err(&format!("{HEAD}node:\n  role: server\n  labels: {{a: b\nnetwork: {{}}\n"));
    assert_eq!(e.line(), Some(6), "{e}");
}
