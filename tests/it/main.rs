//! The integration suite: one test binary, one module per area.

mod add;
mod beyond;
mod cli;
#[cfg(feature = "cloud")]
mod cloud;
mod conformance;
mod connect;
mod degraded;
mod download;
mod environment;
mod faults;
mod group;
mod headers;
mod hostile;
mod locks;
mod oci;
mod resolver;
mod share;
mod snapshots;
mod support;
mod tls;
