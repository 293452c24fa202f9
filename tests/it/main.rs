//! The integration suite: one test binary, one module per area.

mod add;
mod beyond;
mod cli;
#[cfg(feature = "cloud")]
mod cloud;
mod conformance;
mod degraded;
mod download;
mod faults;
mod headers;
mod hostile;
mod oci;
mod resolver;
mod share;
mod snapshots;
mod support;
