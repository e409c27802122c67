//! What can go wrong with the registry: bad settings, and bad requests.

use crate::id::{InstanceId, ServiceId};
use crate::time::Duration;

/// A registry configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryConfigError {
    /// A limit or duration of zero would make the registry useless.
    #[error("`{which}` must be greater than zero")]
    Zero {
        /// The offending setting.
        which: &'static str,
    },
    /// A limit beyond what the registry's ids can address.
    #[error("`{which}` must be at most {max}")]
    TooLarge {
        /// The offending setting.
        which: &'static str,
        /// The largest value accepted.
        max: usize,
    },
    /// `max_ttl` below `min_ttl`.
    #[error("`max_ttl` ({max_ttl:?}) must be at least `min_ttl` ({min_ttl:?})")]
    TtlRange {
        /// The shortest lease accepted.
        min_ttl: Duration,
        /// The longest lease accepted.
        max_ttl: Duration,
    },
    /// `default_ttl` outside `[min_ttl, max_ttl]`.
    #[error("`default_ttl` ({default_ttl:?}) must lie within [{min_ttl:?}, {max_ttl:?}]")]
    DefaultTtlOutOfRange {
        /// The default lease.
        default_ttl: Duration,
        /// The shortest lease accepted.
        min_ttl: Duration,
        /// The longest lease accepted.
        max_ttl: Duration,
    },
}

/// A request the registry refused. The catalog is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// An instance id beyond what the catalog's dense table allows.
    #[error("instance id {id} exceeds the supported maximum {max}")]
    IdTooLarge {
        /// The id given.
        id: InstanceId,
        /// The largest id accepted.
        max: u32,
    },
    /// A required name or value is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// Which field.
        field: &'static str,
    },
    /// A name or value longer than the configured limit.
    #[error("{field} is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character a field does not allow.
    #[error("{field} {value:?} has an invalid character at byte {at}: {rule}")]
    InvalidChar {
        /// Which field.
        field: &'static str,
        /// The value as given (truncated to the field's limit).
        value: String,
        /// Byte offset of the first bad character.
        at: usize,
        /// What the field allows.
        rule: &'static str,
    },
    /// A weight of zero: the instance could never be picked.
    #[error("weight must be at least 1 (use health or deregistration to take an instance out of rotation)")]
    ZeroWeight,
    /// More tags or endpoints than the configured limit.
    #[error("{field}: {count} given; the limit is {max}")]
    TooMany {
        /// Which collection.
        field: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two endpoints with the same name.
    #[error("endpoint {0:?} is listed twice")]
    DuplicateEndpoint(String),
    /// A lease outside the configured range.
    #[error("ttl {ttl:?} must lie within [{min_ttl:?}, {max_ttl:?}]")]
    TtlOutOfRange {
        /// The lease asked for.
        ttl: Duration,
        /// The shortest lease accepted.
        min_ttl: Duration,
        /// The longest lease accepted.
        max_ttl: Duration,
    },
    /// The id is already registered for another service: ids are unique
    /// across the catalog. Deregister it first to move it.
    #[error("{id} is already registered for service {existing_name:?} ({existing}); deregister it first")]
    DuplicateInstance {
        /// The id.
        id: InstanceId,
        /// The service it belongs to.
        existing: ServiceId,
        /// That service's name.
        existing_name: String,
    },
    /// The catalog already holds `max_instances`.
    #[error("the catalog is full ({max} instances)")]
    CatalogFull {
        /// The limit.
        max: usize,
    },
    /// `max_services` services are known and every one has an instance or
    /// a watch, so none can be forgotten to make room.
    #[error(
        "too many services: all {max} known services have instances or watches \
         (raise `max_services`, or deregister a service's instances)"
    )]
    TooManyServices {
        /// The limit.
        max: usize,
    },
    /// `max_watches` watches are open.
    #[error("too many watches ({max}); unwatch some first")]
    TooManyWatches {
        /// The limit.
        max: usize,
    },
    /// No instance with this id is registered.
    #[error("{0} is not registered")]
    UnknownInstance(InstanceId),
    /// No open watch with this id.
    #[error("watch {0} is not open")]
    UnknownWatch(u64),
}
