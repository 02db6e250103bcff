//! `coracle-build image`: the build steps in order. Everything that can be
//! refused (unknown board, missing BSP, bad config, package hash, disk too
//! small) is checked before the output directory is touched; the work
//! happens in `OUT/.work` and the outputs are moved into place at the end.
//!
//! The image: GPT with `esp` (systemd-boot, one UKI per slot), `root-a`
//! and `root-b` (the same EROFS root filesystem: the factory image can
//! fall back to either), `data` (the first-boot marker stage 1 formats).

use crate::apt::{self, Cache};
use crate::board::{self, Board, Boot};
use crate::disk::{self, Content, Part, MIB};
use crate::kmod::Kernel;
use crate::packages::{Lock, PackageSet, Source};
use crate::tree::{Node, Tree};
use crate::{bmap, cpio, esp, machine, rpi, uki, ImageArgs};
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Boot tries systemd-boot gives a slot before falling back.
pub const BOOT_TRIES: u32 = 3;

/// What a build produced.
#[derive(Debug)]
pub struct Built {
    pub disk: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub disk_guid: String,
}

struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn step(n: u32, what: &str) {
    eprintln!("coracle-build: [{n}/9] {what}");
}

fn human(bytes: u64) -> String {
    if bytes >= 10 * MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn report(what: &str, path: &Path) {
    let m = std::fs::metadata(path);
    let (size, used) = m.map(|m| (m.len(), std::os::unix::fs::MetadataExt::blocks(&m) * 512)).unwrap_or((0, 0));
    eprintln!("coracle-build:   {what}: {} ({}; {} on disk)", path.display(), human(size), human(used));
}

/// SOURCE_DATE_EPOCH, else the time of the last commit, else 0.
pub fn source_date_epoch() -> u64 {
    if let Some(v) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()) {
        return v;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new("git").args(["log", "-1", "--format=%ct"]).current_dir(repo).output().ok().and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn run_tool(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The cross toolchain a board's `coracle` needs on this host, or what to
/// install: `None` when the board is the host's architecture.
pub fn cross_toolchain(board: &Board) -> Result<Option<String>, String> {
    if board.rust_target.starts_with(std::env::consts::ARCH) {
        return Ok(None);
    }
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == board.rust_target)).unwrap_or(false);
    let linker = format!("{}-linux-gnu-gcc", board.rust_arch());
    let have_linker = Command::new(&linker).arg("--version").output().is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    if !installed {
        missing.push(format!("`rustup target add {}`", board.rust_target));
    }
    if !have_linker {
        missing.push(format!("`apt-get install gcc-{}-linux-gnu` (the cross linker {linker})", board.rust_arch()));
    }
    if missing.is_empty() {
        Ok(Some(linker))
    } else {
        Err(format!("board {} needs the `coracle` binary for {}: run {} (scripts/setup.sh does both), or pass --coracle-bin", board.name, board.rust_target, missing.join(" and ")))
    }
}

/// The `coracle` binary for the board: given, or built with cargo with
/// `profile` (`release`, or `dev` for a quicker debug build), cross-built
/// for boards of another architecture.
pub fn coracle_binary(board: &Board, given: Option<&Path>, profile: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--coracle-bin {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let dir = match profile {
        "release" => "release",
        "dev" | "debug" => "debug",
        other => bail!("--coracle-profile {other}: use release or dev"),
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "-p", "coracle"]).current_dir(&repo);
    if dir == "release" {
        cmd.arg("--release");
    }
    let bin = match cross_toolchain(board).map_err(|e| anyhow::anyhow!(e))? {
        None => repo.join("target").join(dir).join("coracle"),
        Some(linker) => {
            cmd.args(["--target", &board.rust_target]);
            cmd.env(format!("CARGO_TARGET_{}_LINKER", board.rust_target.to_uppercase().replace('-', "_")), linker);
            repo.join("target").join(&board.rust_target).join(dir).join("coracle")
        }
    };
    eprintln!("coracle-build: building coracle for {} (cargo build, profile {profile}; several minutes the first time)", board.rust_target);
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("cargo build of coracle failed");
    }
    Ok(bin)
}

fn hash_file(h: &mut Sha256, path: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    std::io::copy(&mut f, h)?;
    Ok(())
}

/// Everything that was checked before the work starts.
pub struct Plan {
    pub board: Board,
    pub runtime: board::Runtime,
    pub lock: Lock,
    pub coracle: PathBuf,
    pub config_text: String,
    pub epoch: u64,
    pub disk_size: u64,
    pub parts: Vec<(String, u64)>,
    /// Hash of every input: names the build, derives GUIDs.
    pub seed: Vec<u8>,
}

pub fn plan(a: &ImageArgs, config_override: Option<&str>) -> anyhow::Result<Plan> {
    let dir = board::boards_dir(a.common.boards.as_deref());
    let board = board::load(&dir, &a.common.board)?;
    let runtime = board::runtime(&dir)?;
    if board.needs_bsp {
        match &a.bsp {
            None => bail!("board {} needs its vendor kernel: pass --bsp DIR ({})", board.name, if board.bsp_help.is_empty() { "see docs/images.md" } else { &board.bsp_help }),
            Some(d) if !d.is_dir() => bail!("--bsp {}: not a directory", d.display()),
            Some(_) => bail!("board {}: images from a vendor BSP are not built yet (the board's layout is described in boards/{}/board.toml)", board.name, board.name),
        }
    }
    let parts = layout(&board);
    let need = disk::needed(&parts);
    let disk_size = match &a.disk_size {
        Some(s) => disk::parse_size(s)?,
        None => need,
    };
    if disk_size < need {
        bail!(
            "--disk-size {} ({} MiB) is too small for board {}'s partitions ({} MiB: {}); give at least {}M or shrink the partitions in boards/{}/board.toml",
            a.disk_size.as_deref().unwrap_or(""),
            disk_size / MIB,
            board.name,
            need / MIB,
            parts.iter().map(|(n, s)| format!("{n} {} MiB", s / MIB)).collect::<Vec<_>>().join(", "),
            need / MIB,
            board.name
        );
    }
    if disk_size % 512 != 0 {
        bail!("--disk-size must be a multiple of 512 bytes");
    }
    let lock = Lock::load(&board)?;
    let lock_text = std::fs::read_to_string(board.lock_path())?;
    let coracle = coracle_binary(&board, a.binary.coracle_bin.as_deref(), &a.binary.coracle_profile)?;
    let host = machine::host_coracle(a.binary.host_coracle.as_deref(), Some(&coracle), &board.arch)?;
    let config_text = match config_override {
        Some(t) => t.to_string(),
        None => {
            machine::check(&host, &a.config)?;
            std::fs::read_to_string(&a.config).with_context(|| format!("reading {}", a.config.display()))?
        }
    };
    let epoch = source_date_epoch();
    let mut h = Sha256::new();
    h.update(format!("coracle-build {}\nboard {}\nepoch {epoch}\nsize {disk_size}\n", env!("CARGO_PKG_VERSION"), board.name));
    h.update(std::fs::read(board.dir.join("board.toml"))?);
    h.update(std::fs::read(dir.join("runtime.toml"))?);
    h.update(lock_text.as_bytes());
    h.update(config_text.as_bytes());
    hash_file(&mut h, &coracle)?;
    for p in &a.preload {
        hash_file(&mut h, p)?;
    }
    if let Some(b) = &a.bsp {
        h.update(b.to_string_lossy().as_bytes());
    }
    Ok(Plan { board, runtime, lock, coracle, config_text, epoch, disk_size, parts, seed: h.finalize().to_vec() })
}

fn layout(b: &Board) -> Vec<(String, u64)> {
    let d = &b.disk;
    let mut parts = Vec::new();
    match b.boot {
        Boot::Uefi => parts.push((coracle_ota::disk::ESP.to_string(), d.boot_mib * MIB)),
        Boot::Rpi => {
            // The firmware reads autoboot.txt from the first partition; the
            // FAT partitions come first (the firmware's advice for A/B).
            parts.push((coracle_ota::disk::ESP.to_string(), d.select_mib * MIB));
            parts.push((rpi::BOOT_A.to_string(), d.boot_mib * MIB));
            parts.push((rpi::BOOT_B.to_string(), d.boot_mib * MIB));
        }
    }
    parts.push((coracle_ota::disk::ROOT_A.into(), d.root_mib * MIB));
    parts.push((coracle_ota::disk::ROOT_B.into(), d.root_mib * MIB));
    parts.push((coracle_ota::disk::DATA.into(), d.data_mib * MIB));
    parts
}

/// GPT partition type of `name`: the ESP, the Raspberry Pi's FAT boot
/// partitions (basic data, which its firmware reads), Linux data.
fn part_type(boot: Boot, name: &str) -> uuid::Uuid {
    match (boot, name) {
        (Boot::Uefi, coracle_ota::disk::ESP) => disk::esp_type(),
        (Boot::Rpi, coracle_ota::disk::ESP | rpi::BOOT_A | rpi::BOOT_B) => coracle_ota::disk::gpt::types::BASIC_DATA,
        _ => disk::linux_type(),
    }
}

/// The contents of the boot partitions, by partition name.
#[allow(clippy::too_many_arguments)]
fn boot_partitions(set: &PackageSet, p: &Plan, kernel: &Kernel, kernel_root: &Path, initrd: &[u8], disk_guid: &str, version: &str) -> anyhow::Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let volume_id = |what: &str| -> anyhow::Result<u32> { Ok(u32::from_le_bytes(disk::derived_uuid(&p.seed, what).as_bytes()[..4].try_into()?)) };
    let mut out = std::collections::BTreeMap::new();
    match p.board.boot {
        Boot::Uefi => {
            let esp_tree = uefi_boot(set, p, kernel, kernel_root, initrd, disk_guid, version)?;
            out.insert(coracle_ota::disk::ESP.to_string(), esp::build(&esp_tree, p.board.disk.boot_mib * MIB, volume_id("esp")?, "ESP", p.epoch)?);
        }
        Boot::Rpi => {
            let (a, b) = (rpi::number(&p.parts, rpi::BOOT_A)?, rpi::number(&p.parts, rpi::BOOT_B)?);
            out.insert(coracle_ota::disk::ESP.to_string(), esp::build(&rpi::select_tree(a, b), p.board.disk.select_mib * MIB, volume_id("esp")?, "ESP", p.epoch)?);
            let image = kernel.image(kernel_root)?;
            for (slot, name) in [("a", rpi::BOOT_A), ("b", rpi::BOOT_B)] {
                let t = rpi::boot_tree(set, &p.board, kernel_root, &kernel.version, &image, initrd, slot, disk_guid, version)?;
                out.insert(name.to_string(), esp::build(&t, p.board.disk.boot_mib * MIB, volume_id(name)?, &format!("BOOT-{}", slot.to_uppercase()), p.epoch)?);
            }
        }
    }
    Ok(out)
}

pub fn release_version(epoch: u64) -> String {
    format!("{}-{epoch}", env!("CARGO_PKG_VERSION"))
}

/// Strip debug info and the symbol table from a binary (a debug `coracle`
/// is hundreds of MiB; symbols add a fifth to a release one, three times
/// per image). A panic still prints its message and source location.
fn stripped(bin: &Path, arch: &str, work: &Path) -> anyhow::Result<PathBuf> {
    let out = work.join("coracle");
    let tool = if arch == apt::host_arch() { "strip".to_string() } else { format!("{}-linux-gnu-strip", if arch == "arm64" { "aarch64" } else { arch }) };
    let ok = Command::new(&tool).arg("--strip-all").arg("-o").arg(&out).arg(bin).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        std::fs::copy(bin, &out).with_context(|| format!("copying {}", bin.display()))?;
    }
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(out)
}

pub fn image(a: &ImageArgs) -> anyhow::Result<Built> {
    image_with(a, None)
}

/// Build; `config_override` replaces the config file's text (`run` adds a CA).
pub fn image_with(a: &ImageArgs, config_override: Option<&str>) -> anyhow::Result<Built> {
    let started = Instant::now();
    step(1, "checking the board, config and inputs");
    let p = plan(a, config_override)?;
    eprintln!("coracle-build:   board {}: {}", p.board.name, p.board.description);
    let cache = Cache::new(&crate::packages::cache_dir(a.common.cache.as_deref()))?;
    step(2, &format!("fetching {} pinned packages (checking SHA-256)", p.lock.packages.len()));
    let mut set = PackageSet::from_lock(&p.lock, &cache, &p.board.arch)?;

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let work = WorkDir(a.out.join(".work"));
    let _ = std::fs::remove_dir_all(&work.0);
    std::fs::create_dir_all(&work.0)?;
    let w = work.0.clone();
    let version = release_version(p.epoch);
    let disk_guid = disk::derived_uuid(&p.seed, "disk");

    step(3, "assembling the root filesystem");
    let kernel_pkg = set.require(&p.lock.kernel)?.clone();
    let kernel = Kernel::open(&kernel_pkg.root)?;
    let coracle = stripped(&p.coracle, &p.board.arch, &w)?;
    let mut root = Tree::new();
    root.base_layout();
    set.add_files(&mut root, &p.runtime.rootfs, &mut Source::Locked)?;
    root.insert("usr/bin/coracle", Node::File { mode: 0o755, src: coracle.clone() });
    set.add_libraries(&mut root, vec![("usr/bin/coracle".into(), coracle.clone(), "coracle".into())], &mut Source::Locked)?;
    ca_bundle(&mut root)?;
    kernel.install(&mut root, &kernel.select(&p.board.modules)?)?;
    firmware(&mut root, &set, &p.board)?;
    etc_files(&mut root, &p, &version);
    for (i, archive) in a.preload.iter().enumerate() {
        let name = archive.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| format!("image-{i}.tar"));
        root.insert(&format!("usr/share/coracle/images/{name}"), Node::File { mode: 0o644, src: archive.clone() });
    }
    let rootfs_dir = w.join("rootfs");
    root.write_dir(&rootfs_dir)?;
    let erofs = w.join("root.erofs");
    step(4, "making the EROFS root filesystem");
    run_tool(
        Command::new("mkfs.erofs")
            .arg("-zlz4hc")
            .arg(format!("-T{}", p.epoch))
            .arg(format!("-U{}", disk::derived_uuid(&p.seed, "rootfs")))
            .arg("--all-root")
            .arg("-x-1")
            .arg("--quiet")
            .arg(&erofs)
            .arg(&rootfs_dir),
        "mkfs.erofs (apt-get install erofs-utils)",
    )?;
    let _ = std::fs::remove_dir_all(&rootfs_dir);
    eprintln!("coracle-build:   root filesystem: {} of files, {} as EROFS", human(root.content_size()), human(std::fs::metadata(&erofs)?.len()));

    step(5, "making the initramfs (stage 1)");
    let initrd = initramfs(&mut set, &p, &kernel, &coracle, &w)?;
    eprintln!("coracle-build:   initramfs: {}", human(initrd.len() as u64));

    step(6, "making the boot files");
    let mut boot = boot_partitions(&set, &p, &kernel, &kernel_pkg.root, &initrd, &disk_guid.to_string(), &version)?;

    step(7, "writing the disk image");
    let mut parts = Vec::new();
    for (name, size) in &p.parts {
        let content = match name.as_str() {
            coracle_ota::disk::ROOT_A | coracle_ota::disk::ROOT_B => Content::File(erofs.clone()),
            coracle_ota::disk::DATA => Content::Bytes(coracle_ota::disk::DATA_FIRST_BOOT_MARKER.to_vec()),
            _ => Content::Bytes(boot.remove(name).with_context(|| format!("no contents for partition {name}"))?),
        };
        parts.push(Part { name: name.clone(), type_guid: part_type(p.board.boot, name), size: *size, content });
    }
    let img = w.join("disk.img");
    disk::write(&img, disk_guid, &p.seed, p.disk_size, &parts)?;

    step(8, "writing the block map and the compressed image");
    let map = bmap::compute(&img)?;
    std::fs::write(w.join("disk.img.bmap"), bmap::render(&map))?;
    if !a.no_zst {
        run_tool(Command::new("zstd").args(["-q", "-f", "-T0", "-15", "--long=27"]).arg(&img).arg("-o").arg(w.join("disk.img.zst")), "zstd (apt-get install zstd)")?;
    }

    step(9, "moving the outputs into place");
    let mut outputs = vec!["disk.img", "disk.img.bmap"];
    if !a.no_zst {
        outputs.push("disk.img.zst");
    } else {
        let _ = std::fs::remove_file(a.out.join("disk.img.zst"));
    }
    for o in &outputs {
        std::fs::rename(w.join(o), a.out.join(o)).with_context(|| format!("moving {o} into {}", a.out.display()))?;
    }
    std::fs::write(a.out.join("build.sha256"), format!("{}\n", apt::hex(&p.seed)))?;
    let mut kubeconfig = None;
    if let Some(ca) = machine::ca_of(&p.config_text)? {
        let path = a.out.join("kubeconfig");
        std::fs::write(&path, machine::admin_kubeconfig(&ca, "https://127.0.0.1:6443")?)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        kubeconfig = Some(path);
    }
    eprintln!("coracle-build: board {} release {version} (disk {disk_guid}) in {:.0}s:", p.board.name, started.elapsed().as_secs_f64());
    for o in &outputs {
        report(o, &a.out.join(o));
    }
    eprintln!("coracle-build:   mapped: {} of {}", human(map.mapped_blocks() * map.block_size), human(map.image_size));
    if let Some(k) = &kubeconfig {
        eprintln!("coracle-build:   kubeconfig: {} (server https://127.0.0.1:6443)", k.display());
    }
    Ok(Built { disk: a.out.join("disk.img"), kubeconfig, disk_guid: disk_guid.to_string() })
}

/// Whether the outputs in `out` are from exactly these inputs.
pub fn up_to_date(out: &Path, p: &Plan) -> bool {
    let want = format!("{}\n", apt::hex(&p.seed));
    std::fs::read_to_string(out.join("build.sha256")).is_ok_and(|s| s == want) && out.join("disk.img").exists()
}

/// /etc/ssl/certs/ca-certificates.crt from ca-certificates' files.
fn ca_bundle(root: &mut Tree) -> anyhow::Result<()> {
    let prefix = "usr/share/ca-certificates/";
    let certs: Vec<(String, Node)> = root.nodes.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut bundle = Vec::new();
    for (path, node) in &certs {
        if path.ends_with(".crt") {
            bundle.extend(crate::tree::read_node(node)?);
            if !bundle.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
        root.nodes.remove(path);
    }
    root.nodes.remove("usr/share/ca-certificates");
    if !bundle.is_empty() {
        root.add_data("etc/ssl/certs/ca-certificates.crt", 0o644, bundle);
    }
    Ok(())
}

fn firmware(root: &mut Tree, set: &PackageSet, board: &Board) -> anyhow::Result<()> {
    for f in &board.firmware {
        let mut found = false;
        for name in &board.packages {
            let Some(pkg) = set.get(name) else { continue };
            for base in ["lib/firmware", "usr/lib/firmware"] {
                let rel = format!("{base}/{f}");
                if std::fs::symlink_metadata(pkg.root.join(rel.trim_end_matches('/'))).is_ok() {
                    root.add_from(&pkg.root, &rel, &format!("usr/lib/firmware/{f}"))?;
                    found = true;
                }
            }
        }
        if !found {
            bail!("board {}: firmware {f} is in none of the board's packages ({})", board.name, board.packages.join(", "));
        }
    }
    Ok(())
}

fn etc_files(root: &mut Tree, p: &Plan, version: &str) {
    root.add_data("etc/coracle/machine.yaml", 0o600, p.config_text.clone());
    root.add_data("etc/coracle-release", 0o644, format!("NAME=coracle\nVERSION={version}\nBOARD={}\nBUILD_EPOCH={}\n", p.board.name, p.epoch));
    root.add_data(
        "usr/lib/os-release",
        0o644,
        format!("NAME=\"Coracle\"\nID=coracle\nPRETTY_NAME=\"Coracle {version}\"\nVERSION_ID={version}\nIMAGE_ID=coracle\nIMAGE_VERSION={version}\nVARIANT_ID={}\n", p.board.name),
    );
    root.insert("etc/os-release", Node::Symlink { target: "../usr/lib/os-release".into() });
    root.add_data("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    root.add_data("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n");
    root.add_data("etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nhosts: files dns\n");
    root.add_data("etc/hosts", 0o644, "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
    // Written by PID 1 at boot (the root is read-only).
    root.insert("etc/resolv.conf", Node::Symlink { target: "../run/coracle/resolv.conf".into() });
    root.insert("etc/hostname", Node::Symlink { target: "../run/coracle/hostname".into() });
    root.insert("etc/machine-id", Node::Symlink { target: "../var/lib/coracle/machine-id".into() });
    root.mkdir_p("root");
    root.mkdir_p("mnt");
    root.mkdir_p("usr/lib/modules");
}

fn initramfs(set: &mut PackageSet, p: &Plan, kernel: &Kernel, coracle: &Path, work: &Path) -> anyhow::Result<Vec<u8>> {
    let mut t = Tree::new();
    t.base_layout();
    t.insert("usr/bin/coracle", Node::File { mode: 0o755, src: coracle.to_path_buf() });
    t.insert("init", Node::Symlink { target: "usr/bin/coracle".into() });
    t.add_data("coracle-stage1", 0o644, Vec::new());
    t.insert("dev/console", Node::CharDev { mode: 0o600, major: 5, minor: 1 });
    t.insert("dev/null", Node::CharDev { mode: 0o666, major: 1, minor: 3 });
    set.add_files(&mut t, &p.runtime.initramfs, &mut Source::Locked)?;
    set.add_libraries(&mut t, vec![("usr/bin/coracle".into(), coracle.to_path_buf(), "coracle".into())], &mut Source::Locked)?;
    // The kernel starts init without PATH, so programs are found in the
    // default /bin:/usr/bin only: fold sbin into bin.
    let moved: Vec<(String, Node)> = t.nodes.iter().filter(|(k, _)| k.starts_with("usr/sbin/")).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in moved {
        t.nodes.remove(&k);
        t.insert(&format!("usr/bin/{}", &k["usr/sbin/".len()..]), v);
    }
    t.nodes.insert("usr/sbin".into(), Node::Symlink { target: "bin".into() });
    let modules = kernel.select(&p.board.initramfs_modules)?;
    kernel.install(&mut t, &modules)?;
    t.add_data("etc/coracle/modules", 0o644, kernel.names_in_order(&p.board.initramfs_modules).join("\n") + "\n");
    let archive = cpio::write(&t, p.epoch)?;
    let raw = work.join("initramfs.cpio");
    std::fs::write(&raw, &archive)?;
    let config = std::fs::read_to_string(kernel.dir.join("../../../boot").join(format!("config-{}", kernel.version))).unwrap_or_default();
    let compressed = work.join("initramfs.cpio.z");
    if config.contains("CONFIG_RD_ZSTD=y") {
        run_tool(Command::new("zstd").args(["-q", "-f", "-T0", "-10"]).arg(&raw).arg("-o").arg(&compressed), "zstd")?;
    } else {
        let out = Command::new("gzip").args(["-n", "-9", "-c"]).arg(&raw).output().context("running gzip")?;
        if !out.status.success() {
            bail!("gzip failed");
        }
        std::fs::write(&compressed, out.stdout)?;
    }
    Ok(std::fs::read(&compressed)?)
}

fn uefi_boot(set: &PackageSet, p: &Plan, kernel: &Kernel, kernel_root: &Path, initrd: &[u8], disk_guid: &str, version: &str) -> anyhow::Result<Tree> {
    let efi = p.board.efi_arch();
    let sdboot = set.require("systemd-boot-efi")?;
    let dir = sdboot.root.join("usr/lib/systemd/boot/efi");
    let stub = std::fs::read(dir.join(format!("linux{efi}.efi.stub"))).with_context(|| format!("systemd-boot-efi has no linux{efi}.efi.stub"))?;
    let loader = dir.join(format!("systemd-boot{efi}.efi"));
    let linux = std::fs::read(kernel.image(kernel_root)?)?;
    let mut t = Tree::new();
    let boot_name = p.board.qemu.as_ref().and_then(|q| q.efi_boot_name.clone()).unwrap_or_else(|| format!("BOOT{}.EFI", efi.to_uppercase()));
    t.insert(&format!("EFI/BOOT/{boot_name}"), Node::File { mode: 0o644, src: loader.clone() });
    t.insert(&format!("EFI/systemd/systemd-boot{efi}.efi"), Node::File { mode: 0o644, src: loader });
    // No `default`: systemd-boot then picks the first entry in its order —
    // entries with tries left before exhausted ones, newest version first —
    // which is what makes a failing slot fall back to the other.
    t.add_data("loader/loader.conf", 0o644, "timeout 0\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n");
    for slot in ["a", "b"] {
        let cmdline = format!("{} coracle.slot={slot} coracle.disk={disk_guid}", p.board.cmdline);
        // The factory image holds the same release in both slots; slot b's
        // version sorts lower (`~`), so slot a boots first.
        let v = if slot == "a" { version.to_string() } else { format!("{version}~factory") };
        let osrel = uki::os_release(&v, slot);
        let image = uki::build(&stub, &[(".osrel", osrel.as_bytes()), (".cmdline", cmdline.as_bytes()), (".initrd", initrd), (".linux", &linux)])?;
        t.add_data(&format!("EFI/Linux/coracle-{slot}+{BOOT_TRIES}.efi"), 0o644, image);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cross_toolchain_says_what_to_install() {
        let mut b = board::load(&board::boards_dir(None), "qemu-aarch64").expect("board");
        b.rust_target = "riscv64gc-unknown-linux-gnu".into();
        let e = cross_toolchain(&b).expect_err("no riscv64 toolchain here");
        assert!(e.contains("rustup target add riscv64gc-unknown-linux-gnu") && e.contains("apt-get install gcc-riscv64gc-linux-gnu") && e.contains("--coracle-bin"), "{e}");
        b.rust_target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        assert_eq!(cross_toolchain(&b), Ok(None), "the host's architecture needs nothing");
        assert!(coracle_binary(&b, None, "fast").expect_err("bad profile").to_string().contains("use release or dev"));
    }

    #[test]
    fn every_board_lays_out_its_boot_partitions_first_and_the_slots_by_name() {
        let dir = board::boards_dir(None);
        let names = |b: &str| layout(&board::load(&dir, b).expect("board")).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names("qemu-aarch64"), ["esp", "root-a", "root-b", "data"]);
        assert_eq!(names("rpi4"), ["esp", "boot-a", "boot-b", "root-a", "root-b", "data"]);
        assert_eq!(part_type(Boot::Rpi, "esp"), coracle_ota::disk::gpt::types::BASIC_DATA);
        assert_eq!(part_type(Boot::Uefi, "esp"), disk::esp_type());
        assert_eq!(part_type(Boot::Rpi, "root-a"), disk::linux_type());
    }
}
