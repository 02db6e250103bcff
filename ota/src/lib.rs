//! Coracle's updates and the disk they are written to.
//!
//! Owns: the disk layout (GPT partition tables: read, write, grow; finding
//! the slots by partition label), and — as the OTA work lands — the bundle
//! format, its signatures, the slot writer and boot-slot control.
//! Must not: talk to Kubernetes, or know about boards beyond what a slot is.

pub mod disk;
