//! The Grafana dashboard shipped in `deploy/grafana/portcullis.json`, read the way the tests
//! need it: every PromQL expression it runs (panel targets, panels nested in collapsed rows,
//! annotations, template variable queries), the metric names each one reads, and the
//! expression with Grafana's variables replaced so that Prometheus can run it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

/// Where the dashboard lives, from this crate's directory.
pub(crate) fn dashboard_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/portcullis.json")
}

/// What Grafana substitutes for its built-in interval variables when the tests run a query:
/// `$__rate_interval` is at least four scrape intervals in Grafana; one minute covers the
/// test's 1 s scrapes many times over.
const BUILT_IN_VARIABLES: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "1h"),
];

/// One PromQL expression of the dashboard, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Query {
    /// `panel "<title>" target <refId>`, `annotation "<name>"` or `variable <name>`.
    pub(crate) location: String,
    /// The panel's title (empty for annotations and variables).
    pub(crate) panel: String,
    /// The expression as written, Grafana variables included.
    pub(crate) expr: String,
}

/// A parsed dashboard.
#[derive(Debug)]
pub(crate) struct Dashboard {
    pub(crate) json: Value,
}

impl Dashboard {
    /// Reads and parses `deploy/grafana/portcullis.json`.
    pub(crate) fn load() -> anyhow::Result<Dashboard> {
        let path = dashboard_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Dashboard::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses dashboard JSON.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Dashboard> {
        let json: Value = serde_json::from_str(text)?;
        ensure!(
            json["panels"].is_array(),
            "the dashboard has no panels array"
        );
        Ok(Dashboard { json })
    }

    /// Every expression: panel targets (rows' nested panels included), annotation queries, and
    /// the selectors of the template variables' queries (`label_values(<selector>, <label>)`
    /// and `query_result(<expression>)`).
    pub(crate) fn queries(&self) -> anyhow::Result<Vec<Query>> {
        let mut queries = Vec::new();
        collect_panel_queries(&self.json["panels"], &mut queries);
        for annotation in array(&self.json["annotations"]["list"]) {
            if let Some(expr) = annotation["expr"].as_str() {
                let name = annotation["name"].as_str().unwrap_or_default();
                queries.push(Query {
                    location: format!("annotation {name:?}"),
                    panel: String::new(),
                    expr: expr.to_owned(),
                });
            }
        }
        for variable in self.query_variables() {
            let name = variable["name"].as_str().unwrap_or_default();
            let text = variable_query_text(variable)
                .with_context(|| format!("variable {name} has no query"))?;
            queries.push(Query {
                location: format!("variable {name}"),
                panel: String::new(),
                expr: variable_expression(&text)
                    .with_context(|| format!("variable {name}: {text:?}"))?,
            });
        }
        Ok(queries)
    }

    /// The template variables of type `query`.
    fn query_variables(&self) -> impl Iterator<Item = &Value> {
        array(&self.json["templating"]["list"]).filter(|variable| variable["type"] == "query")
    }

    /// The names of every template variable (any type).
    pub(crate) fn variable_names(&self) -> BTreeSet<String> {
        array(&self.json["templating"]["list"])
            .filter_map(|variable| variable["name"].as_str())
            .map(str::to_owned)
            .collect()
    }

    /// `expr` with every variable replaced for a test run: the built-in intervals by fixed
    /// durations, this dashboard's own variables (all of them multi-value regex matchers) by
    /// `.*`, which is what "All" means here (`allValue`).
    ///
    /// # Errors
    ///
    /// When `expr` uses a variable the dashboard does not define.
    pub(crate) fn substitute(&self, expr: &str) -> anyhow::Result<String> {
        self.substitute_choosing(expr, &[])
    }

    /// As [`Dashboard::substitute`], but with variable `name` set to one `value` for each
    /// `(name, value)` of `chosen`, escaped as Grafana escapes the value of a multi-value
    /// variable in a Prometheus query ([`grafana_regex_escape`]).
    ///
    /// # Errors
    ///
    /// As [`Dashboard::substitute`].
    pub(crate) fn substitute_choosing(
        &self,
        expr: &str,
        chosen: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let mut values: BTreeMap<String, String> = self
            .variable_names()
            .into_iter()
            .map(|name| (name, ".*".to_owned()))
            .collect();
        for (name, value) in BUILT_IN_VARIABLES {
            values.insert((*name).to_owned(), (*value).to_owned());
        }
        for (name, value) in chosen {
            values.insert((*name).to_owned(), grafana_regex_escape(value));
        }
        substitute(expr, &values)
    }
}

/// A label value as Grafana's Prometheus data source writes it into a query for a multi-value
/// variable (`prometheusSpecialRegexEscape`): a backslash doubled twice and each regex
/// metacharacter preceded by two backslashes, so that inside the query's double-quoted string
/// the regex sees a literal character. Route labels need it: `rules[0]` has brackets.
pub(crate) fn grafana_regex_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '+' | '?' | '.' | '(' | ')' | '|' => {
                escaped.push_str("\\\\");
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Walks panels and the panels nested in rows, collecting each target's `expr`.
fn collect_panel_queries(panels: &Value, queries: &mut Vec<Query>) {
    for panel in array(panels) {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in array(&panel["targets"]) {
            if let Some(expr) = target["expr"].as_str() {
                let reference = target["refId"].as_str().unwrap_or_default();
                queries.push(Query {
                    location: format!("panel {title:?} target {reference}"),
                    panel: title.to_owned(),
                    expr: expr.to_owned(),
                });
            }
        }
        collect_panel_queries(&panel["panels"], queries);
    }
}

/// A variable's query text: a string, or (Grafana 10 and later) `{"query": "..."}`.
fn variable_query_text(variable: &Value) -> Option<String> {
    match &variable["query"] {
        Value::String(text) => Some(text.clone()),
        Value::Object(object) => object.get("query")?.as_str().map(str::to_owned),
        _ => variable["definition"].as_str().map(str::to_owned),
    }
}

/// The PromQL inside a Prometheus variable query: the selector of
/// `label_values(<selector>, <label>)`, the expression of `query_result(<expr>)`. Variable
/// queries without a metric (`label_values(<label>)`, `label_names()`, `metrics(<regex>)`) read
/// no series, so they are refused: a dashboard variable here must name a metric the test can
/// check.
pub(crate) fn variable_expression(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    if let Some(inner) = call_argument(text, "label_values") {
        let Some((selector, label)) = inner.rsplit_once(',') else {
            bail!("label_values without a metric selector reads no series: {text}");
        };
        ensure!(
            !label.trim().is_empty() && !selector.trim().is_empty(),
            "label_values needs a selector and a label: {text}"
        );
        return Ok(selector.trim().to_owned());
    }
    if let Some(inner) = call_argument(text, "query_result") {
        return Ok(inner.trim().to_owned());
    }
    bail!("not a variable query the tests can check (label_values or query_result): {text}")
}

/// The text between `name(` and the final `)`.
fn call_argument<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` by `values[name]` (`$1` and
/// other digits-only names are kept: they are regex group references).
fn substitute(expr: &str, values: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    loop {
        let dollar = rest.find('$');
        let brackets = rest.find("[[");
        let (at, is_brackets) = match (dollar, brackets) {
            (None, None) => break,
            (Some(d), Some(b)) if b < d => (b, true),
            (Some(d), _) => (d, false),
            (None, Some(b)) => (b, true),
        };
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let (name, length) = if is_brackets {
            let end = after
                .find("]]")
                .with_context(|| format!("unterminated [[ in {expr}"))?;
            (&after[2..end], end + 2)
        } else if let Some(braced) = after.strip_prefix("${") {
            let end = braced
                .find('}')
                .with_context(|| format!("unterminated ${{ in {expr}"))?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 3)
        } else {
            let name_length = after[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len() - 1);
            (&after[1..=name_length], name_length + 1)
        };
        if !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_digit()) {
            // `$1`: a regex group reference (label_replace), not a variable.
            out.push_str(&after[..length]);
            rest = &after[length..];
            continue;
        }
        let value = values
            .get(name)
            .with_context(|| format!("{expr} uses variable {name:?}, which is not defined"))?;
        out.push_str(value);
        rest = &after[length..];
    }
    out.push_str(rest);
    Ok(out)
}

fn array(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}
