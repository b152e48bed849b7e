//! Reading API request bodies the way Toxiproxy's Go decoder does: any content type, the first
//! JSON value only, missing fields keep their defaults, unknown fields are ignored.
//!
//! Control plane only: the registry ([`super::registry`]) calls these before it changes state,
//! so a bad body changes nothing.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::model::{Stream, ToxicKind};

/// Reads the first JSON value of a body. An empty body is Go's `EOF`.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        None => Err(ApiError::BadRequestBody("EOF".into())),
        Some(Err(e)) => Err(ApiError::BadRequestBody(e.to_string())),
        Some(Ok(v)) => Ok(v),
    }
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| {
        ApiError::BadRequestBody(format!("{what} must be a JSON object, got {value}"))
    })
}

fn string_field(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::BadRequestBody(format!(
            "field {name:?} must be a string, got {other}"
        ))),
    }
}

fn bool_field(map: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::BadRequestBody(format!(
            "field {name:?} must be a boolean, got {other}"
        ))),
    }
}

fn float_field(map: &Map<String, Value>, name: &str) -> Result<Option<f32>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(|f| Some(f as f32)).ok_or_else(|| {
            ApiError::BadRequestBody(format!("field {name:?} must be a number, got {v}"))
        }),
    }
}

/// The fields of a proxy in a create, populate or update body; absent ones are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyInput {
    /// `name`.
    pub name: Option<String>,
    /// `listen`.
    pub listen: Option<String>,
    /// `upstream`.
    pub upstream: Option<String>,
    /// `enabled`.
    pub enabled: Option<bool>,
}

impl ProxyInput {
    /// Reads one proxy object.
    pub fn from_value(value: &Value) -> Result<ProxyInput, ApiError> {
        let map = object(value, "a proxy")?;
        Ok(ProxyInput {
            name: string_field(map, "name")?,
            listen: string_field(map, "listen")?,
            upstream: string_field(map, "upstream")?,
            enabled: bool_field(map, "enabled")?,
        })
    }

    /// The name, or Toxiproxy's missing-field error (`at` names the populate position).
    pub fn required_name(&self, at: &str) -> Result<String, ApiError> {
        match &self.name {
            Some(n) if !n.is_empty() => Ok(n.clone()),
            _ => Err(ApiError::MissingField(format!("name{at}"))),
        }
    }

    /// The upstream, or Toxiproxy's missing-field error.
    pub fn required_upstream(&self, at: &str) -> Result<String, ApiError> {
        match &self.upstream {
            Some(u) if !u.is_empty() => Ok(u.clone()),
            _ => Err(ApiError::MissingField(format!("upstream{at}"))),
        }
    }
}

/// Reads a populate body: a JSON array of proxies.
pub fn populate_list(body: &[u8]) -> Result<Vec<ProxyInput>, ApiError> {
    let value = parse_body(body)?;
    let items = value.as_array().ok_or_else(|| {
        ApiError::BadRequestBody(format!(
            "populate takes a JSON array of proxies, got {value}"
        ))
    })?;
    items.iter().map(ProxyInput::from_value).collect()
}

/// A toxic as a create body describes it, with Toxiproxy's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToxic {
    /// Given, or `<type>_<stream>`.
    pub name: String,
    /// Type and attributes.
    pub kind: ToxicKind,
    /// Direction; defaults to downstream.
    pub stream: Stream,
    /// Defaults to 1.0.
    pub toxicity: f32,
}

/// Reads a toxic create body, checking in Toxiproxy's order: JSON, stream, type (the duplicate
/// name check is the registry's), then attributes.
pub fn new_toxic(body: &[u8]) -> Result<(NewToxic, Value), ApiError> {
    let value = parse_body(body)?;
    let map = object(&value, "a toxic")?;
    let type_name = string_field(map, "type")?.unwrap_or_default();
    let stream_name = string_field(map, "stream")?.unwrap_or_else(|| "downstream".into());
    let toxicity = float_field(map, "toxicity")?.unwrap_or(1.0);
    let name = string_field(map, "name")?.filter(|n| !n.is_empty());
    let stream = Stream::parse(&stream_name).ok_or(ApiError::InvalidStream)?;
    let name = name.unwrap_or_else(|| format!("{type_name}_{}", stream.as_str()));
    let kind = ToxicKind::zeroed(&type_name).map_err(|_| ApiError::InvalidToxicType)?;
    let attributes = map.get("attributes").cloned().unwrap_or(Value::Null);
    Ok((
        NewToxic {
            name,
            kind,
            stream,
            toxicity,
        },
        attributes,
    ))
}

/// Applies a toxic update body (`attributes`, `toxicity`) over the current values.
pub fn toxic_update(body: &[u8], kind: &mut ToxicKind, toxicity: &mut f32) -> Result<(), ApiError> {
    let value = parse_body(body)?;
    let map = object(&value, "a toxic")?;
    let mut updated = *kind;
    if let Some(attrs) = map.get("attributes") {
        updated
            .merge(attrs)
            .map_err(|e| ApiError::BadRequestBody(e.to_string()))?;
    }
    let new_toxicity = float_field(map, "toxicity")?.unwrap_or(*toxicity);
    *kind = updated;
    *toxicity = new_toxicity;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn bodies_are_read_like_gos_decoder() -> TestResult {
        assert!(matches!(parse_body(b""), Err(ApiError::BadRequestBody(m)) if m == "EOF"));
        assert!(parse_body(b"{\"a\":1} trailing").is_ok());
        assert!(matches!(
            parse_body(b"{nope"),
            Err(ApiError::BadRequestBody(_))
        ));
        let (t, _) = new_toxic(br#"{"type":"latency"}"#)?;
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.stream, Stream::Downstream);
        assert_eq!(t.toxicity, 1.0);
        assert!(matches!(
            new_toxic(br#"{"type":"latency","stream":"sideways"}"#),
            Err(ApiError::InvalidStream)
        ));
        assert!(matches!(
            new_toxic(br#"{"type":"boom"}"#),
            Err(ApiError::InvalidToxicType)
        ));
        assert!(matches!(
            ProxyInput::from_value(&serde_json::json!({"enabled": "yes"})),
            Err(ApiError::BadRequestBody(_))
        ));
        Ok(())
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name() -> TestResult {
        let mut kind = ToxicKind::Latency {
            latency: 100,
            jitter: 5,
        };
        let mut toxicity = 0.5;
        toxic_update(
            br#"{"attributes":{"latency":300}}"#,
            &mut kind,
            &mut toxicity,
        )?;
        assert_eq!(
            kind,
            ToxicKind::Latency {
                latency: 300,
                jitter: 5
            }
        );
        assert_eq!(toxicity, 0.5);
        assert!(
            toxic_update(
                br#"{"attributes":{"latency":"x"}}"#,
                &mut kind,
                &mut toxicity
            )
            .is_err()
        );
        assert_eq!(
            kind,
            ToxicKind::Latency {
                latency: 300,
                jitter: 5
            }
        );
        Ok(())
    }
}
