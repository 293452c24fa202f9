//! One module per command: each takes the registry and the output settings, calls the
//! library, and renders the result as text or as its JSON document (see `json.rs`).

pub mod add;
pub mod alias;
pub mod catalog;
pub mod download;
pub mod info;
pub mod list;
pub mod mirror;
pub mod path;
pub mod pin;
pub mod prune;
pub mod register;
pub mod remove;
pub mod share;
pub mod sources;
pub mod unregister;
pub mod verify;
