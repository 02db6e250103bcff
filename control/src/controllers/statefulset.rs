//! The statefulset controller (not written yet).

use super::Context;

pub fn start(ctx: &Context) {
    let _ = ctx;
}
