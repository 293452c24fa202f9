//! Downloads: the [`Resolver`] turns a catalog entry into a verified file (lock, reuse,
//! sources in order, verification, install); the transfer engine moves the bytes of one
//! source over one or more connections; [`retry`](self) decides how long to wait after a
//! transient failure; reuse looks in other tools' caches first.

mod base;
mod budget;
mod delta;
mod limiter;
mod partial;
mod plan;
mod resolver;
mod retry;
mod reuse;
mod stop;
mod transfer;
mod unit;

pub(crate) use base::{prepare as prepare_delta, Base, OldId};
pub(crate) use budget::share_out;
pub use resolver::{auto_connections, Resolver};
pub(crate) use reuse::candidates;
pub(crate) use stop::Cancel;
