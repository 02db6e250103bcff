//! The power button: with no logind or acpid on the device, PID 1 reads
//! the input devices that have a power key (`/dev/input/event*`; the ACPI
//! button and evdev drivers are loaded by the `modules` step) and turns a
//! press into SIGTERM to itself, the same ordered power-off as a signal
//! from the hypervisor or a container runtime. Must not: act on other keys.

use std::io::Read;
use std::path::{Path, PathBuf};

/// `KEY_POWER` in linux/input-event-codes.h.
const KEY_POWER: usize = 116;
const EV_KEY: u16 = 1;
/// `struct input_event` on 64-bit: timeval (16 bytes), type, code, value.
const EVENT_SIZE: usize = 24;

/// Whether a `capabilities/key` bitmap (hex words, most significant
/// first, each a `long`) has `key`.
pub fn has_key(bitmap: &str, key: usize) -> bool {
    let words: Vec<&str> = bitmap.split_whitespace().collect();
    let bits = usize::BITS as usize;
    let index = key / bits;
    let Some(word) = words.len().checked_sub(1 + index).and_then(|i| words.get(i)) else { return false };
    u64::from_str_radix(word, 16).is_ok_and(|w| w >> (key % bits) & 1 == 1)
}

/// Event devices with a power key.
pub fn power_keys(class: &Path, dev: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(class) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("event"))
        .filter(|e| std::fs::read_to_string(e.path().join("device/capabilities/key")).is_ok_and(|b| has_key(&b, KEY_POWER)))
        .map(|e| dev.join(e.file_name()))
        .collect();
    out.sort();
    out
}

/// Whether a raw event is a power key press.
pub fn is_power_press(ev: &[u8; EVENT_SIZE]) -> bool {
    let kind = u16::from_ne_bytes([ev[16], ev[17]]);
    let code = u16::from_ne_bytes([ev[18], ev[19]]);
    let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
    kind == EV_KEY && code as usize == KEY_POWER && value == 1
}

/// Watch every power key; a press sends SIGTERM to this process.
pub fn watch() {
    let devices = power_keys(Path::new("/sys/class/input"), Path::new("/dev/input"));
    if devices.is_empty() {
        tracing::info!(step = "power-button", ok = true, "no power button found (SIGTERM still powers off)");
        return;
    }
    tracing::info!(step = "power-button", ok = true, devices = ?devices, "watching the power button");
    for dev in devices {
        std::thread::spawn(move || {
            let mut f = match std::fs::File::open(&dev) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(device = %dev.display(), error = %e, "cannot open the power button");
                    return;
                }
            };
            let mut ev = [0u8; EVENT_SIZE];
            while f.read_exact(&mut ev).is_ok() {
                if is_power_press(&ev) {
                    tracing::info!(device = %dev.display(), "power button pressed: powering off");
                    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_power_key_bit_is_found_in_the_bitmap() {
        // The ACPI power button: KEY_POWER only.
        assert!(has_key("10000000000000 0", KEY_POWER));
        // A keyboard without it; an empty device.
        assert!(!has_key("ffefffffffffffff fffffffffffffffe", KEY_POWER));
        assert!(has_key("fff0000000000000 0", KEY_POWER));
        assert!(!has_key("0", KEY_POWER));
        assert!(has_key("1", 0));
        assert!(!has_key("garbage 0", KEY_POWER));
    }

    #[test]
    fn only_a_power_press_counts() {
        let mut ev = [0u8; EVENT_SIZE];
        ev[16..18].copy_from_slice(&EV_KEY.to_ne_bytes());
        ev[18..20].copy_from_slice(&(KEY_POWER as u16).to_ne_bytes());
        ev[20..24].copy_from_slice(&1i32.to_ne_bytes());
        assert!(is_power_press(&ev));
        ev[20..24].copy_from_slice(&0i32.to_ne_bytes());
        assert!(!is_power_press(&ev), "release");
        ev[18..20].copy_from_slice(&30u16.to_ne_bytes());
        ev[20..24].copy_from_slice(&1i32.to_ne_bytes());
        assert!(!is_power_press(&ev), "another key");
    }
}
