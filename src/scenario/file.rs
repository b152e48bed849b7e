//! Reading a scenario file: TOML into the raw shape of the file, with the position of every
//! field that validation may complain about.
//!
//! Where it sits: first step of `caplab scenario run|validate`. `toml` parses the text into
//! these structs (unknown fields and wrong types are refused here, with the line); the values
//! that need a closer look are wrapped in [`Spanned`] so [`super::validate`] can name the line
//! of a bad offset, proxy, toxic or metric. See README "Scenarios" for the format.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// One problem in a scenario file: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct FieldError {
    /// The file (as given).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The field (`workload.rate`, `step[2].proxy`, ...).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileErrors {
    /// It could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is malformed or invalid; every problem found, in line order.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

impl FileErrors {
    /// The problems (empty for an I/O error).
    pub fn problems(&self) -> &[FieldError] {
        match self {
            FileErrors::Io { .. } => &[],
            FileErrors::Invalid(v) => v,
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub targets: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub endpoints: RawEndpoints,
    pub workload: RawWorkload,
    #[serde(default, rename = "phase")]
    pub phases: Vec<RawPhase>,
    #[serde(default, rename = "step")]
    pub steps: Vec<RawStep>,
    #[serde(default, rename = "threshold")]
    pub thresholds: Vec<RawThreshold>,
}

/// `[endpoints]`: defaults when the command line names none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoints {
    pub cp: Option<String>,
    pub ap: Option<String>,
    pub toxiproxy: Option<String>,
}

/// `[workload]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub rate: Spanned<f64>,
    pub duration: Spanned<String>,
    #[serde(default)]
    pub read_ratio: Option<Spanned<f64>>,
    #[serde(default)]
    pub cas_ratio: Option<Spanned<f64>>,
    pub keys: Spanned<i64>,
    #[serde(default)]
    pub distribution: Option<Spanned<String>>,
    #[serde(default)]
    pub zipf_exponent: Option<Spanned<f64>>,
    #[serde(default)]
    pub value_size: Option<Spanned<i64>>,
    #[serde(default)]
    pub clients: Option<Spanned<i64>>,
    #[serde(default)]
    pub session_clients: Option<Spanned<i64>>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub final_reads: Option<bool>,
    #[serde(default)]
    pub settle: Option<Spanned<String>>,
    #[serde(default, rename = "stage")]
    pub stages: Vec<RawStage>,
}

/// `[[workload.stage]]`: the rate from an offset on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub at: Spanned<String>,
    pub rate: Spanned<f64>,
}

/// `[[phase]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub name: Spanned<String>,
    pub at: Spanned<String>,
}

/// `[[step]]`: one timeline step; which fields apply depends on `action` (and `toxic`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub at: Spanned<String>,
    pub action: Spanned<String>,
    pub proxy: Option<Spanned<String>>,
    pub node: Option<Spanned<String>>,
    pub toxic: Option<Spanned<String>>,
    pub stream: Option<Spanned<String>>,
    pub toxicity: Option<Spanned<f64>>,
    pub latency: Option<Spanned<i64>>,
    pub jitter: Option<Spanned<i64>>,
    pub rate: Option<Spanned<i64>>,
    pub delay: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<i64>>,
    pub average_size: Option<Spanned<i64>>,
    pub size_variation: Option<Spanned<i64>>,
    pub bytes: Option<Spanned<i64>>,
    /// Free text for readers of the file.
    pub note: Option<String>,
}

/// `[[threshold]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    pub target: Spanned<String>,
    pub phase: Option<Spanned<String>>,
    pub metric: Spanned<String>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    pub equals: Option<Spanned<bool>>,
    pub lesson: Spanned<String>,
}

/// Maps byte offsets of one file's text to 1-based lines.
#[derive(Debug, Clone)]
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    /// Indexes `text`.
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    /// The line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

/// Parses `text` (from `file`) into its raw shape; a syntax error, unknown field or wrong
/// type is one [`FieldError`] naming the line and the field.
pub fn parse(file: &str, text: &str) -> Result<RawScenario, FieldError> {
    toml::from_str::<RawScenario>(text).map_err(|e| {
        let lines = Lines::new(text);
        let offset = e.span().map_or(0, |s| s.start);
        let line = lines.line_of(offset);
        let message = e.message().trim().to_string();
        FieldError {
            file: file.to_string(),
            line,
            field: field_named(&message, text, offset),
            message,
        }
    })
}

/// The field an error is about: the one named in the message (`unknown field `x``, `missing
/// field `x``), else the key at the start of the error's line, else `(syntax)`.
fn field_named(message: &str, text: &str, offset: usize) -> String {
    for marker in ["unknown field `", "missing field `", "duplicate key `"] {
        if let Some(rest) = message.split(marker).nth(1)
            && let Some(name) = rest.split('`').next()
        {
            return name.to_string();
        }
    }
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() && !key.trim().starts_with('[') => {
            key.trim().to_string()
        }
        _ => "(syntax)".to_string(),
    }
}

/// Reads `path` as text.
pub fn read(path: &Path) -> Result<String, FileErrors> {
    std::fs::read_to_string(path).map_err(|source| FileErrors::Io {
        file: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let l = Lines::new("a\nbc\n\nd");
        assert_eq!(l.line_of(0), 1);
        assert_eq!(l.line_of(2), 2);
        assert_eq!(l.line_of(5), 3);
        assert_eq!(l.line_of(6), 4);
    }

    #[test]
    fn wrong_type_names_line_and_field() {
        let text = "name = \"x\"\ntargets = [\"cp\"]\n[workload]\nrate = \"fast\"\nduration = \"1s\"\nkeys = 3\n";
        let Err(e) = parse("f.toml", text) else {
            panic!("a string rate was accepted");
        };
        assert_eq!((e.line, e.field.as_str()), (4, "rate"), "{e}");
    }
}
