//! The integration suite: one test binary, one module per area.

mod add;
mod add_oci;
#[cfg(feature = "tokio")]
mod async_ensure;
mod beyond;
mod cli;
#[cfg(feature = "cloud")]
mod cloud;
mod conformance;
mod connect;
mod degraded;
mod download;
mod environment;
mod error_predicates;
mod faults;
mod group;
mod headers;
mod hostile;
mod locks;
mod logs;
mod many;
mod multifile;
mod multifile_edges;
mod oci;
mod oci_layout;
mod outdated;
mod resolver;
mod share;
mod snapshots;
mod support;
mod tls;
mod update;
mod update_edges;
mod xet_break;
mod xet_env;
mod xet_lookalike;
mod xet_update;
