//! The metric names a PromQL expression reads: enough of a PromQL lexer for that (strings,
//! label matchers, ranges, numbers, functions, aggregations, keywords and label lists skipped).
//! Whether an expression parses at all is promtool's job (see `dashboard.rs`, `rules.rs`);
//! this only has to find names, and `metric_names.rs` checks what it finds against
//! prometheus/metric-names.txt in both directions, so a name it missed or a word it wrongly
//! took for one makes that test fail.

use std::collections::BTreeSet;

/// Aggregation operators, binary and modifier keywords: never metric names.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Index just past the string literal that starts at `i`.
fn skip_string(c: &[char], i: usize) -> usize {
    let quote = c[i];
    let mut j = i + 1;
    while j < c.len() && c[j] != quote {
        if c[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// Index just past the `close` that ends the group opened at `i`, strings inside skipped.
fn skip_group(c: &[char], i: usize, close: char) -> usize {
    let mut j = i + 1;
    while j < c.len() && c[j] != close {
        if matches!(c[j], '"' | '\'' | '`') {
            j = skip_string(c, j);
        } else {
            j += 1;
        }
    }
    j + 1
}

fn next_non_space(c: &[char], mut j: usize) -> Option<(usize, char)> {
    while j < c.len() && c[j].is_whitespace() {
        j += 1;
    }
    c.get(j).map(|&ch| (j, ch))
}

fn is_word(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'
}

/// The metric names (and recording-rule names) `expr` selects.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let c: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, '"' | '\'' | '`') {
            i = skip_string(&c, i);
        } else if ch == '{' {
            assert!(
                !c[i..]
                    .iter()
                    .collect::<String>()
                    .trim_start_matches('{')
                    .trim_start()
                    .starts_with("__name__"),
                "selecting by __name__ hides the metric name from this check: `{expr}`"
            );
            i = skip_group(&c, i, '}');
        } else if ch == '[' {
            i = skip_group(&c, i, ']');
        } else if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            // Numbers and durations: 0.99, 1e3, 0x1f, 5m.
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let next = next_non_space(&c, i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if let Some((j, '(')) = next {
                    i = skip_group(&c, j, ')');
                }
            } else if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                // an operator or modifier
            } else if matches!(next, Some((_, '('))) {
                // a function call
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    fn names(e: &str) -> Vec<String> {
        metric_names(e).into_iter().collect()
    }

    #[test]
    fn finds_selected_names_only() {
        assert_eq!(names("up"), ["up"]);
        assert_eq!(
            names(
                r#"sum by (mode, le) (rate(app_request_latency_seconds_bucket{mode="cp",x=~"a}b"}[1m]))"#
            ),
            ["app_request_latency_seconds_bucket"]
        );
        assert_eq!(
            names("histogram_quantile(0.99, sum(rate(a_bucket[5m])) by (le)) > 0.5"),
            ["a_bucket"]
        );
        assert_eq!(
            names(
                "a:b:rate1m / on (mode) group_left () (sum without (instance) (c_total offset 5m) > 0) or vector(1e3)"
            ),
            ["a:b:rate1m", "c_total"]
        );
        assert_eq!(
            names(r#"ALERTS{alertstate="firing"} and ignoring(x) count(up == 0)"#),
            ["ALERTS", "up"]
        );
        assert_eq!(
            names("max_over_time(x[1m:5s]) # a comment naming y\n + z"),
            ["x", "z"]
        );
    }

    #[test]
    #[should_panic(expected = "__name__")]
    fn refuses_name_matchers() {
        metric_names(r#"{__name__=~"app_.*"}"#);
    }
}
