//! The machine config as the builder sees it: checked by the `coracle`
//! binary itself (`coracle config check FILE`: one parser, the one PID 1
//! uses), baked as-is into `/etc/coracle/machine.yaml`. For a server whose
//! config carries the cluster CA (`cluster.caCert`/`caKey`), the builder
//! issues an admin client certificate and writes `DIR/kubeconfig`; `run`
//! adds a CA to configs without one (kept in `DIR/pki/`).
//! Must not: interpret any other field (PID 1 owns the schema).

use anyhow::{bail, Context};
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::process::Command;
use time::{Duration, OffsetDateTime};

/// Run `coracle config check` on `file`; the error carries its message.
pub fn check(coracle: &Path, file: &Path) -> anyhow::Result<()> {
    if !file.exists() {
        bail!("machine config {} does not exist (write one: see docs/machine-config.md and docs/examples/server.yaml)", file.display());
    }
    let out = Command::new(coracle).args(["config", "check"]).arg(file).output().with_context(|| format!("running {} config check", coracle.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim().trim_start_matches("error: ");
        bail!("the machine config is invalid: {err}\n  fix: correct it (docs/machine-config.md) and check it with `coracle config check {}`", file.display());
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster CA of a server config, when it has one.
pub fn ca_of(text: &str) -> anyhow::Result<Option<Ca>> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).context("parsing the machine config")?;
    let role = v.get("node").and_then(|n| n.get("role")).and_then(|r| r.as_str()).unwrap_or("server");
    if role != "server" {
        return Ok(None);
    }
    let cluster = v.get("cluster");
    let get = |k: &str| cluster.and_then(|c| c.get(k)).and_then(|x| x.as_str()).map(str::to_string);
    Ok(match (get("caCert"), get("caKey")) {
        (Some(cert_pem), Some(key_pem)) => Some(Ca { cert_pem, key_pem }),
        _ => None,
    })
}

/// The config with `ca` set as its cluster CA.
pub fn with_ca(text: &str, ca: &Ca) -> anyhow::Result<String> {
    let mut v: serde_yaml::Value = serde_yaml::from_str(text).context("parsing the machine config")?;
    let Some(map) = v.as_mapping_mut() else { bail!("the machine config is not a YAML mapping") };
    let cluster = map.entry("cluster".into()).or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    let Some(c) = cluster.as_mapping_mut() else { bail!("cluster: is not a mapping") };
    c.insert("caCert".into(), ca.cert_pem.clone().into());
    c.insert("caKey".into(), ca.key_pem.clone().into());
    Ok(format!("# Written by coracle-build run: the cluster CA is in {{out}}/pki.\n{}", serde_yaml::to_string(&v)?))
}

/// Load `DIR/ca.crt` + `ca.key`, or make a CA there.
pub fn load_or_create_ca(dir: &Path) -> anyhow::Result<Ca> {
    let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if crt.exists() && key.exists() {
        return Ok(Ca { cert_pem: std::fs::read_to_string(&crt)?, key_pem: std::fs::read_to_string(&key)? });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let kp = KeyPair::generate().context("generating the CA key")?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("coracle-ca@{}", OffsetDateTime::now_utc().unix_timestamp()));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(3650);
    let cert = p.self_signed(&kp).context("signing the CA")?;
    let ca = Ca { cert_pem: cert.pem(), key_pem: kp.serialize_pem() };
    std::fs::write(&crt, &ca.cert_pem)?;
    std::fs::write(&key, &ca.key_pem)?;
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(ca)
}

/// An admin kubeconfig (`system:admin`, group `system:masters`) for `server`.
pub fn admin_kubeconfig(ca: &Ca, server: &str) -> anyhow::Result<String> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).context("cluster.caKey is not a usable private key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca_key).context("cluster.caCert is not a usable CA certificate")?;
    let kp = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "system:admin");
    dn.push(DnType::OrganizationName, "system:masters");
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(365);
    let cert = p.signed_by(&kp, &issuer).context("issuing the admin certificate")?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: coracle\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: coracle\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: coracle\n  context:\n    cluster: coracle\n    user: coracle\ncurrent-context: coracle\npreferences: {{}}\n",
        b64(&ca.cert_pem),
        b64(&cert.pem()),
        b64(&kp.serialize_pem())
    ))
}

/// A `coracle` the host can run: the given one, else a host build in target/.
pub fn host_coracle(given: Option<&Path>, image_bin: Option<&Path>, image_arch: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = image_bin {
        if image_arch == crate::apt::host_arch() {
            return Ok(p.to_path_buf());
        }
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for p in [target.join("release/coracle"), target.join("debug/coracle")] {
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("no host `coracle` binary to check the machine config with: build one (cargo build -p coracle) or pass --host-coracle")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_is_added_found_and_used_for_an_admin_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("coracle-build-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ca = load_or_create_ca(&dir).expect("ca");
        assert_eq!(load_or_create_ca(&dir).expect("again").cert_pem, ca.cert_pem, "reused");
        let text = "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  role: server\n";
        assert!(ca_of(text).expect("parse").is_none());
        let with = with_ca(text, &ca).expect("with");
        let found = ca_of(&with).expect("parse").expect("has a CA");
        assert_eq!(found.cert_pem, ca.cert_pem);
        let agent = "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  role: agent\ncluster:\n  caCert: x\n  caKey: y\n";
        assert!(ca_of(agent).expect("parse").is_none(), "agents get no admin kubeconfig");
        let kc = admin_kubeconfig(&ca, "https://127.0.0.1:6443").expect("kubeconfig");
        assert!(kc.contains("server: https://127.0.0.1:6443") && kc.contains("client-key-data: "), "{kc}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
