//! A panic in PID 1 must not hang the machine (the kernel panics when init
//! exits): log it on the console, sync, wait a moment so it can be read,
//! and reboot, so the boot loader can fall back if it keeps happening.

use std::time::Duration;

pub fn install(delay: Duration) {
    std::panic::set_hook(Box::new(move |info| {
        let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        eprintln!("coracle: PID 1 panicked at {place}: {msg}; rebooting in {}s", delay.as_secs());
        tracing::error!(place, message = msg, "PID 1 panicked; rebooting");
        rustix::fs::sync();
        std::thread::sleep(delay);
        let err = super::shutdown::reboot_now(super::shutdown::Kind::Reboot);
        eprintln!("coracle: reboot failed after panic: {err}");
        std::process::exit(70);
    }));
}
