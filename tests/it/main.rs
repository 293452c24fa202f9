//! The integration suite: one test binary, one module per area.

mod cli;
#[cfg(feature = "cloud")]
mod cloud;
mod conformance;
mod download;
mod hub;
mod support;
