//! An event as read: borrowed from the line it was parsed from (or from an [`Event`]), so
//! reading a big history does not allocate a string per field.
//!
//! Where it sits: between the readers (JSON Lines in `parse.rs`, Jepsen's formats through
//! `jepsen.rs`) and the history builder ([`super::History`]), which interns what it keeps.
//! The `value` field is one string, `null`, or a cas's `[expected, new]`
//! ([`RawValue`]); its deserialiser borrows strings that have no escapes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::event::{Event, EventType, OpKind, ValueField};

/// A `value` field as read, borrowed where the input allows.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum RawValue<'a> {
    /// `null` or absent.
    #[default]
    Nil,
    /// One string.
    One(Cow<'a, str>),
    /// `[expected, new]`, either may be `null`.
    Pair(Option<Cow<'a, str>>, Option<Cow<'a, str>>),
}

impl<'a> RawValue<'a> {
    /// A read's or write's value; for a pair, its second element.
    pub(crate) fn single(&self) -> Option<&str> {
        match self {
            RawValue::Nil => None,
            RawValue::One(v) => Some(v),
            RawValue::Pair(_, v) => v.as_deref(),
        }
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawValue<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, null, or [expected, new] for a cas")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawValue<'de>, E> {
                Ok(RawValue::Nil)
            }
            fn visit_none<E: de::Error>(self) -> Result<RawValue<'de>, E> {
                Ok(RawValue::Nil)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue<'de>, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<RawValue<'de>, E> {
                Ok(RawValue::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue<'de>, E> {
                Ok(RawValue::One(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue<'de>, E> {
                Ok(RawValue::One(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue<'de>, A::Error> {
                let two = "[expected, new] (two elements)";
                let expected: Option<Text<'de>> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &two))?;
                let new: Option<Text<'de>> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &two))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &two));
                }
                Ok(RawValue::Pair(expected.map(|t| t.0), new.map(|t| t.0)))
            }
        }
        d.deserialize_any(V)
    }
}

/// An event borrowed from the line it was parsed from (or from an [`Event`]), so reading a
/// big history does not allocate a string per field; [`super::History`] interns them.
#[derive(Debug, Deserialize)]
pub(crate) struct RawEvent<'a> {
    pub index: u64,
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: OpKind,
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(default, borrow)]
    pub value: RawValue<'a>,
    pub time: u64,
    #[serde(default, borrow)]
    pub mode: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub session: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub node: Option<Cow<'a, str>>,
    /// Parsed so that a wrongly typed one is reported; kept for exports.
    #[serde(default)]
    pub version: Option<u64>,
    /// Parsed so that a wrongly typed one is reported; kept for exports.
    #[serde(default)]
    pub staleness_ms: Option<u64>,
    #[serde(default, borrow)]
    pub phase: Option<Cow<'a, str>>,
}

impl<'a> From<&'a Event> for RawEvent<'a> {
    fn from(e: &'a Event) -> RawEvent<'a> {
        let b = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        let value = match e.value_field() {
            ValueField::One(None) => RawValue::Nil,
            ValueField::One(Some(v)) => RawValue::One(Cow::Borrowed(v)),
            ValueField::Pair(x, v) => RawValue::Pair(x.map(Cow::Borrowed), v.map(Cow::Borrowed)),
        };
        RawEvent {
            index: e.index,
            process: e.process,
            kind: e.kind,
            f: e.f,
            key: Cow::Borrowed(&e.key),
            value,
            time: e.time,
            mode: b(&e.mode),
            session: b(&e.session),
            node: b(&e.node),
            version: e.version,
            staleness_ms: e.staleness_ms,
            phase: b(&e.phase),
        }
    }
}

impl RawEvent<'_> {
    /// The event, owned.
    pub(crate) fn to_event(&self) -> Event {
        let own = |s: &Option<Cow<'_, str>>| s.as_deref().map(str::to_string);
        let (expected, value) = match &self.value {
            RawValue::Nil => (None, None),
            RawValue::One(v) => (None, Some(v.to_string())),
            RawValue::Pair(e, v) => (own(e), own(v)),
        };
        Event {
            index: self.index,
            process: self.process,
            kind: self.kind,
            f: self.f,
            key: self.key.to_string(),
            value,
            expected,
            time: self.time,
            mode: own(&self.mode),
            session: own(&self.session),
            node: own(&self.node),
            version: self.version,
            staleness_ms: self.staleness_ms,
            phase: own(&self.phase),
        }
    }
}
