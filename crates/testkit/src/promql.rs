//! The metric names a PromQL expression reads, for tests that check a dashboard or an alert
//! against a real scrape.
//!
//! Owns a tokenizer that knows just enough PromQL to tell a metric name from everything else an
//! identifier can be: a function or aggregation (followed by `(`), a keyword (`by`, `on`,
//! `offset`, `and`, ...), a label name (inside `{...}` or the label list after `by`,
//! `without`, `on`, `ignoring`, `group_left`, `group_right`), a duration (`5m`), or a Grafana
//! template variable (`$route`, `${route}`, `[[route]]`, `$__rate_interval`). A name given as
//! `{__name__="..."}` counts too. It does not evaluate or fully validate the expression: Prometheus
//! does that (`/api/v1/query`); it fails only on text it cannot tokenize (an unterminated
//! string, unbalanced brackets).

use std::collections::BTreeSet;

use anyhow::{Context, bail};

/// Words that are never metric names where they appear as identifiers: aggregation operators
/// (which may be followed by `by (...)` rather than `(`), binary and set operators,
/// modifiers, and the literals `inf` and `nan`.
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
    "atan2",
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
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Every metric name `expression` selects, sorted.
///
/// # Errors
///
/// On an unterminated string or unbalanced brackets, naming where.
pub fn metric_names(expression: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut scanner = Scanner {
        text: expression.as_bytes(),
        at: 0,
    };
    let mut names = BTreeSet::new();
    scanner.expression(&mut names, None)?;
    Ok(names)
}

/// A cursor over the expression's bytes (PromQL's syntax is ASCII; other bytes appear only in
/// strings and comments, which are skipped whole).
struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    /// Scans until `close` (consumed) or, when `close` is `None`, the end of the text.
    fn expression(
        &mut self,
        names: &mut BTreeSet<String>,
        close: Option<u8>,
    ) -> anyhow::Result<()> {
        while let Some(byte) = self.peek() {
            match byte {
                b'"' | b'\'' | b'`' => {
                    self.string()?;
                }
                b'#' => self.comment(),
                b'$' => self.variable()?,
                b'{' => {
                    self.at += 1;
                    self.label_matchers(names)?;
                }
                b'[' => self.range()?,
                b'(' => {
                    self.at += 1;
                    self.expression(names, Some(b')'))?;
                }
                b')' | b'}' | b']' => {
                    if close == Some(byte) {
                        self.at += 1;
                        return Ok(());
                    }
                    bail!("unexpected {:?} at byte {}", char::from(byte), self.at);
                }
                b'0'..=b'9' | b'.' => self.number(),
                byte if is_identifier_start(byte) => {
                    let word = self.identifier();
                    self.word(word, names)?;
                }
                _ => self.at += 1,
            }
        }
        match close {
            Some(close) => bail!("missing {:?} at the end", char::from(close)),
            None => Ok(()),
        }
    }

    /// What an identifier outside a label set is: a metric name unless it is a keyword or is
    /// called (followed by `(`).
    fn word(&mut self, word: String, names: &mut BTreeSet<String>) -> anyhow::Result<()> {
        let lower = word.to_ascii_lowercase();
        if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
            self.skip_space();
            if self.peek() == Some(b'(') {
                self.at += 1;
                self.label_list()?;
            }
            return Ok(());
        }
        if KEYWORDS.contains(&lower.as_str()) {
            return Ok(());
        }
        self.skip_space();
        if self.peek() != Some(b'(') {
            names.insert(word);
        }
        Ok(())
    }

    /// The inside of `{...}` after the `{`: label names, operators and quoted values. A
    /// `__name__="x"` (or `=~` with a plain name) matcher names metric `x`.
    fn label_matchers(&mut self, names: &mut BTreeSet<String>) -> anyhow::Result<()> {
        let mut label = String::new();
        let mut operator = String::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => bail!("missing '}}' at the end"),
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'"' | b'\'' | b'`') => {
                    let value = self.string()?;
                    let is_exact = operator == "=" || (operator == "=~" && is_name(&value));
                    if label == "__name__" && is_exact {
                        names.insert(value);
                    }
                    label.clear();
                    operator.clear();
                }
                Some(b',') => {
                    self.at += 1;
                    label.clear();
                    operator.clear();
                }
                Some(b'$') => self.variable()?,
                Some(byte) if is_identifier_start(byte) => label = self.identifier(),
                Some(byte) => {
                    operator.push(char::from(byte));
                    self.at += 1;
                }
            }
        }
    }

    /// The label names of `by (...)` and its kin, after the `(`.
    fn label_list(&mut self) -> anyhow::Result<()> {
        loop {
            match self.peek() {
                None => bail!("missing ')' after a label list"),
                Some(b')') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'"' | b'\'' | b'`') => {
                    self.string()?;
                }
                _ => self.at += 1,
            }
        }
    }

    /// A range or subquery (`[5m]`, `[$__rate_interval]`, `[1h:1m]`): no names inside.
    /// `[[var]]` (a Grafana variable) is skipped the same way.
    fn range(&mut self) -> anyhow::Result<()> {
        let start = self.at;
        let mut depth = 0usize;
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        bail!("missing ']' for the '[' at byte {start}")
    }

    /// A Grafana variable: `$name`, `${name}`, `${name:format}`.
    fn variable(&mut self) -> anyhow::Result<()> {
        let start = self.at;
        self.at += 1;
        if self.peek() == Some(b'{') {
            let end = self.text[self.at..]
                .iter()
                .position(|&byte| byte == b'}')
                .with_context(|| format!("missing '}}' for the variable at byte {start}"))?;
            self.at += end + 1;
        } else {
            self.identifier();
        }
        Ok(())
    }

    /// A quoted string (after which the cursor is past its closing quote); returns its text
    /// with `\` escapes resolved naively (enough for names).
    fn string(&mut self) -> anyhow::Result<String> {
        let start = self.at;
        let quote = self.text[start];
        self.at += 1;
        let mut value = Vec::new();
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'\\' if quote != b'`' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.at += 1;
                    }
                }
                _ if byte == quote => return Ok(String::from_utf8_lossy(&value).into_owned()),
                _ => value.push(byte),
            }
        }
        bail!("unterminated string at byte {start}")
    }

    /// A `#` comment, to the end of the line.
    fn comment(&mut self) {
        while let Some(byte) = self.peek() {
            self.at += 1;
            if byte == b'\n' {
                break;
            }
        }
    }

    /// A number or duration (`0.99`, `1e3`, `0x1f`, `5m`, `1h30m`).
    fn number(&mut self) {
        while let Some(byte) = self.peek() {
            let is_part = byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'_';
            let is_exponent_sign = matches!(byte, b'+' | b'-')
                && self.at > 0
                && matches!(self.text[self.at - 1], b'e' | b'E')
                && self.text[..self.at - 1]
                    .last()
                    .is_some_and(u8::is_ascii_digit);
            if !(is_part || is_exponent_sign) {
                break;
            }
            self.at += 1;
        }
    }

    fn identifier(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_identifier_part) {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }
}

fn is_identifier_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b':'
}

fn is_identifier_part(byte: u8) -> bool {
    is_identifier_start(byte) || byte.is_ascii_digit()
}

/// Whether `text` is a plain metric name (no regex metacharacters).
fn is_name(text: &str) -> bool {
    text.bytes().next().is_some_and(is_identifier_start) && text.bytes().all(is_identifier_part)
}

#[cfg(test)]
mod tests;
