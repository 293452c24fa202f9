//! Exit codes and the failure a command returns: a library error (its exit code follows its
//! kind) or a message with its own code.

use strata_model::{ErrorKind, RegistryError};

/// Exit codes, documented in the README.
pub mod code {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNKNOWN_MODEL: u8 = 3;
    pub const NOT_DOWNLOADED: u8 = 4;
    pub const NETWORK: u8 = 5;
    pub const INTEGRITY: u8 = 6;
    pub const STORAGE: u8 = 7;
    pub const CONFIG: u8 = 8;
    pub const UNSUPPORTED: u8 = 9;
    pub const BUSY: u8 = 10;
    /// `outdated`: a model's file changed or is gone where its branch points now.
    pub const OUTDATED: u8 = 11;
}

/// A failure: a library error, or a message with an exit code.
pub enum Failure {
    Registry(RegistryError),
    Message(String, u8),
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        Self::Registry(e)
    }
}

/// The exit code of a library error.
pub fn exit_code(e: &RegistryError) -> u8 {
    code_of_kind(e.kind())
}

/// The exit code of an error of kind `kind`.
pub fn code_of_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::UnknownModel => code::UNKNOWN_MODEL,
        ErrorKind::NotDownloaded => code::NOT_DOWNLOADED,
        ErrorKind::Network => code::NETWORK,
        ErrorKind::Integrity => code::INTEGRITY,
        ErrorKind::Storage => code::STORAGE,
        ErrorKind::Config => code::CONFIG,
        ErrorKind::Unsupported => code::UNSUPPORTED,
        ErrorKind::Busy => code::BUSY,
        _ => code::FAILURE,
    }
}
