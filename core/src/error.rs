//! The core's error type. Each variant carries Pyroscope's message text; the
//! adapters map [`ErrorKind`] to a wire status in exactly one place.

use alloc::string::String;

use crate::kv::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request or its payload is wrong (bad profile, bad selector, limits).
    #[error("{0}")]
    InvalidArgument(String),
    /// A limit on size or rate was hit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A feature Pyroscope also refuses (e.g. async queries).
    #[error("{0}")]
    Unimplemented(String),
    /// The request names no tenant, or an invalid one.
    #[error("{0}")]
    Unauthenticated(String),
    /// The key-value store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

/// What kind of failure, in the vocabulary of Connect error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    ResourceExhausted,
    Unimplemented,
    Unauthenticated,
    Unavailable,
    DataLoss,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::ResourceExhausted(_) => ErrorKind::ResourceExhausted,
            Error::Unimplemented(_) => ErrorKind::Unimplemented,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::Store(_) => ErrorKind::Unavailable,
            Error::Corrupt(_) => ErrorKind::DataLoss,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

pub type Result<T, E = Error> = core::result::Result<T, E>;
