//! The integration suite: one test binary, one module per area.

mod cli;
mod download;
mod hub;
mod support;
