//! The Prometheus text exposition format (version 0.0.4) of the metrics, for readers that do
//! not take OpenMetrics: `promtool check metrics`, `curl`, and any scraper that does not ask
//! for `application/openmetrics-text` (the admin server negotiates on `Accept`).
//!
//! Rewrites the OpenMetrics text of [`crate::Metrics::encode`] line by line rather than
//! encoding the registry a second way, so both formats always carry the same series. What
//! differs between the two formats, and so what changes:
//!
//! - a counter family is named with its `_total` suffix (OpenMetrics names the family without
//!   it, 0.0.4 names it like its samples);
//! - `# UNIT` and `# EOF` lines are dropped (0.0.4 has neither);
//! - exemplars are dropped (0.0.4 has none: they exist only in OpenMetrics), and so are sample
//!   timestamps (OpenMetrics writes seconds, 0.0.4 milliseconds; the registry writes none);
//! - `unknown` becomes `untyped`, and an `info` family a gauge named `<name>_info`;
//! - `\"` in help text becomes `"` (0.0.4 escapes only `\\` and `\n` there).
//!
//! It does not check its input: it is only ever given what the registry encoded.

use std::collections::HashMap;

/// The content type of [`prometheus_text`]'s output.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `openmetrics` (OpenMetrics text, as [`crate::Metrics::encode`] writes it) in the Prometheus
/// text format 0.0.4: the same families and samples, without exemplars.
pub fn prometheus_text(openmetrics: &str) -> String {
    let types: HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let family = family_name(name, types.get(name).copied());
            text.push_str("# HELP ");
            text.push_str(&family);
            text.push(' ');
            push_help(&mut text, help);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = kind.trim();
            text.push_str("# TYPE ");
            text.push_str(&family_name(name, Some(kind)));
            text.push(' ');
            text.push_str(match kind {
                "counter" | "gauge" | "histogram" | "summary" => kind,
                "info" => "gauge",
                _ => "untyped",
            });
        } else if line.starts_with('#') || line.is_empty() {
            // `# UNIT`, `# EOF`: not part of the 0.0.4 format.
            continue;
        } else {
            push_sample(&mut text, line);
        }
        text.push('\n');
    }
    text
}

/// The 0.0.4 family name of OpenMetrics family `name` of type `kind`.
fn family_name(name: &str, kind: Option<&str>) -> String {
    match kind {
        Some("counter") => format!("{name}_total"),
        Some("info") => format!("{name}_info"),
        _ => name.to_owned(),
    }
}

/// Appends help text with OpenMetrics' `\"` unescaped (0.0.4 rejects that escape).
fn push_help(text: &mut String, help: &str) {
    let mut chars = help.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'"') {
            continue;
        }
        text.push(c);
        if c == '\\'
            && let Some(escaped) = chars.next()
        {
            text.push(escaped);
        }
    }
}

/// Appends a sample line's name, labels and value: what follows the value (a timestamp, an
/// exemplar after `#`) is left out.
fn push_sample(text: &mut String, line: &str) {
    let series_end = series_end(line);
    let (series, rest) = line.split_at(series_end);
    text.push_str(series);
    if let Some(value) = rest.split_whitespace().next() {
        text.push(' ');
        text.push_str(value);
    }
}

/// Where a sample line's name and label set end: at the first space outside the label set's
/// quoted values.
fn series_end(line: &str) -> usize {
    let mut in_labels = false;
    let mut in_value = false;
    let mut escaped = false;
    for (index, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_value => escaped = true,
            '"' if in_labels => in_value = !in_value,
            '{' if !in_value => in_labels = true,
            '}' if !in_value => in_labels = false,
            ' ' if !in_labels => return index,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests;
