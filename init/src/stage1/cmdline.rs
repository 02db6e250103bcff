//! What stage 1 reads from the kernel command line.

/// `coracle.slot=a|b` (required), `coracle.disk=GUID` (the GPT disk GUID
/// of the boot disk, when several disks carry Coracle partitions),
/// `coracle.modules=a,b` (extra modules to load before looking for disks).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cmdline {
    pub slot: Option<String>,
    pub disk: Option<String>,
    pub modules: Vec<String>,
}

pub fn parse(text: &str) -> Cmdline {
    let mut c = Cmdline::default();
    for word in text.split_whitespace() {
        let Some((k, v)) = word.split_once('=') else { continue };
        match k {
            "coracle.slot" => c.slot = Some(v.to_string()),
            "coracle.disk" => c.disk = Some(v.to_ascii_lowercase()),
            "coracle.modules" => c.modules.extend(v.split(',').filter(|m| !m.is_empty()).map(str::to_string)),
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_coracle_words() {
        let c = super::parse("console=ttyS0 coracle.slot=b quiet coracle.disk=ABC-1 coracle.modules=virtio_blk,erofs");
        assert_eq!(c.slot.as_deref(), Some("b"));
        assert_eq!(c.disk.as_deref(), Some("abc-1"));
        assert_eq!(c.modules, vec!["virtio_blk", "erofs"]);
        assert_eq!(super::parse("root=/dev/sda").slot, None);
    }
}
