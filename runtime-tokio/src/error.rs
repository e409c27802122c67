//! Errors of the driver handle.

/// Why a [`DriverHandle`](crate::DriverHandle) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The driver task is no longer running (it was shut down or aborted,
    /// or it panicked), so it cannot take commands. Spawn a new driver.
    #[error("the driver task is no longer running")]
    DriverGone,
    /// The driver task panicked: a bug in the machine or in the driver (a
    /// breach of the machine contract panics on purpose). The message is the
    /// panic's.
    #[error("the driver task panicked: {0}")]
    Panicked(String),
    /// [`MAX_PENDING_CALLS`](crate::MAX_PENDING_CALLS) calls were already
    /// waiting for their outcome: back off and call again.
    #[error("too many calls waiting for their outcome")]
    TooManyCalls,
}
