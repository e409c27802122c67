//! The event envelope: CloudEvents 1.0 attributes and vigil's extensions.
//!
//! Why CloudEvents: it is the envelope external tools already speak (its
//! HTTP binding is how the tokio side will accept and serve events), and
//! its required attributes are exactly what a broker needs: an `id` unique
//! per `source` (the dedupe key), a `type` (what happened), and the spec
//! version. Extensions carry what CloudEvents leaves to the transport:
//! the lane (`priority`), the ordering key (`partitionkey`), the schema the
//! payload claims (`schemasubject`, `schemaversion`) and the trace context
//! (`traceparent`, W3C). Every field is checked when an envelope enters the
//! bus ([`EventEnvelope::validate`]); a bad one is refused with the field
//! and the rule, never accepted half-valid.

use crate::time::Instant;

/// The only CloudEvents version this bus speaks.
pub const SPEC_VERSION: &str = "1.0";

/// Longest `id`, `source`, `type`, `subject`, partition key or schema
/// subject, in bytes.
pub const MAX_ATTRIBUTE_LEN: usize = 256;

/// Largest payload, in bytes: an event is a fact, not a file.
pub const MAX_DATA_LEN: usize = 256 * 1024;

/// An event's lane: higher lanes are delivered first (see
/// [`super::lanes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Must not wait: a page, a circuit opening.
    Critical,
    /// vigil's own operations: health transitions, recovery decisions.
    Operational,
    /// Ordinary application events.
    Normal,
    /// Backfills, exports, anything that may wait.
    Bulk,
}

impl Priority {
    /// Every lane, highest first.
    pub const ALL: [Priority; 4] =
        [Priority::Critical, Priority::Operational, Priority::Normal, Priority::Bulk];

    /// The lane's index, 0 for the highest.
    pub fn lane(self) -> usize {
        self as usize
    }
}

/// One event as it travels through the bus.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventEnvelope {
    /// Unique per `source`: the dedupe key.
    pub id: String,
    /// Who produced it (a URI-reference, e.g. `/vigil/control`).
    pub source: String,
    /// What happened (reverse-DNS style, e.g. `io.vigil.health.status_changed`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Always [`SPEC_VERSION`].
    pub specversion: String,
    /// When it happened, as the producer's clock says.
    pub time: Option<Instant>,
    /// What it is about (e.g. an instance).
    pub subject: Option<String>,
    /// The payload's media type, e.g. `application/json`.
    pub datacontenttype: Option<String>,
    /// The lane.
    pub priority: Priority,
    /// Events with one key are delivered in publish order.
    pub partitionkey: Option<String>,
    /// The schema subject and version the payload claims.
    pub schema: Option<(String, u32)>,
    /// W3C trace context, filled by tracing.
    pub traceparent: Option<String>,
    /// The payload.
    pub data: Vec<u8>,
}

/// Why an envelope was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A required attribute is empty.
    #[error("`{field}` must not be empty")]
    Empty {
        /// The attribute.
        field: &'static str,
    },
    /// An attribute is longer than [`MAX_ATTRIBUTE_LEN`].
    #[error("`{field}` is {len} bytes; at most {max}")]
    TooLong {
        /// The attribute.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// An attribute holds a control character or a space where none may be.
    #[error("`{field}` holds a character not allowed at byte {at}: printable ASCII without spaces")]
    BadCharacter {
        /// The attribute.
        field: &'static str,
        /// Where.
        at: usize,
    },
    /// Another CloudEvents version.
    #[error("specversion `{0}` is not supported; this bus speaks {SPEC_VERSION}")]
    SpecVersion(String),
    /// The payload is larger than [`MAX_DATA_LEN`].
    #[error("the payload is {len} bytes; at most {max}")]
    DataTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A schema version 0 (versions count from 1).
    #[error("schema versions count from 1")]
    SchemaVersionZero,
}

impl EventEnvelope {
    /// A minimal envelope: `id`, `source`, `type`, normal priority, no data.
    pub fn new(id: impl Into<String>, source: impl Into<String>, kind: impl Into<String>) -> Self {
        EventEnvelope {
            id: id.into(),
            source: source.into(),
            kind: kind.into(),
            specversion: SPEC_VERSION.to_owned(),
            time: None,
            subject: None,
            datacontenttype: None,
            priority: Priority::Normal,
            partitionkey: None,
            schema: None,
            traceparent: None,
            data: Vec::new(),
        }
    }

    /// Check every attribute; the first problem found, by field order.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        token("id", &self.id, true)?;
        token("source", &self.source, true)?;
        token("type", &self.kind, true)?;
        if self.specversion != SPEC_VERSION {
            return Err(EnvelopeError::SpecVersion(self.specversion.clone()));
        }
        if let Some(subject) = &self.subject {
            token("subject", subject, true)?;
        }
        if let Some(ct) = &self.datacontenttype {
            token("datacontenttype", ct, true)?;
        }
        if let Some(key) = &self.partitionkey {
            token("partitionkey", key, true)?;
        }
        if let Some((subject, version)) = &self.schema {
            token("schemasubject", subject, true)?;
            if *version == 0 {
                return Err(EnvelopeError::SchemaVersionZero);
            }
        }
        if let Some(tp) = &self.traceparent {
            token("traceparent", tp, true)?;
        }
        if self.data.len() > MAX_DATA_LEN {
            return Err(EnvelopeError::DataTooLarge { len: self.data.len(), max: MAX_DATA_LEN });
        }
        Ok(())
    }

    /// The dedupe key: `id` within `source`.
    pub fn dedupe_key(&self) -> (&str, &str) {
        (&self.source, &self.id)
    }
}

fn token(field: &'static str, value: &str, required: bool) -> Result<(), EnvelopeError> {
    if value.is_empty() {
        return if required { Err(EnvelopeError::Empty { field }) } else { Ok(()) };
    }
    if value.len() > MAX_ATTRIBUTE_LEN {
        return Err(EnvelopeError::TooLong { field, len: value.len(), max: MAX_ATTRIBUTE_LEN });
    }
    match value.bytes().position(|b| !b.is_ascii_graphic()) {
        Some(at) => Err(EnvelopeError::BadCharacter { field, at }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_envelope_is_valid_and_each_bad_field_is_named() {
        let ok = EventEnvelope::new("e-1", "/vigil/control", "io.vigil.health.status_changed");
        assert_eq!(ok.validate(), Ok(()));
        let mut e = ok.clone();
        e.id.clear();
        assert_eq!(e.validate(), Err(EnvelopeError::Empty { field: "id" }));
        let mut e = ok.clone();
        e.kind = "has space".into();
        assert_eq!(e.validate(), Err(EnvelopeError::BadCharacter { field: "type", at: 3 }));
        let mut e = ok.clone();
        e.specversion = "0.3".into();
        assert!(matches!(e.validate(), Err(EnvelopeError::SpecVersion(v)) if v == "0.3"));
        let mut e = ok.clone();
        e.source = "s".repeat(MAX_ATTRIBUTE_LEN + 1);
        assert!(matches!(e.validate(), Err(EnvelopeError::TooLong { field: "source", .. })));
        let mut e = ok.clone();
        e.data = vec![0; MAX_DATA_LEN + 1];
        assert!(matches!(e.validate(), Err(EnvelopeError::DataTooLarge { .. })));
        let mut e = ok;
        e.schema = Some(("orders".into(), 0));
        assert_eq!(e.validate(), Err(EnvelopeError::SchemaVersionZero));
    }

    #[test]
    fn the_envelope_round_trips_through_json_with_the_cloudevents_names() {
        let mut e = EventEnvelope::new("e-1", "/vigil/control", "io.vigil.recovery.action");
        e.priority = Priority::Operational;
        e.partitionkey = Some("checkout/1".into());
        let json = serde_json::to_value(&e).expect("serialises");
        assert_eq!(json["type"], "io.vigil.recovery.action");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["priority"], "operational");
        let back: EventEnvelope = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, e);
    }
}
