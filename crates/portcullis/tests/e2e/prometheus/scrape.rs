//! A `/metrics` scrape read as metric families: which names a PromQL query can select in it.
//!
//! A name counts as a real series when the scrape has a sample of that name, and the sample
//! belongs to a family declared with `# TYPE`: the family's own name, or the family's name plus
//! a suffix its type gives its samples (`_total` for an OpenMetrics counter, `_bucket`,
//! `_count` and `_sum` for a histogram, `_count` and `_sum` for a summary). So a histogram's
//! bare family name, which no sample carries and no query can select, does not count, and a
//! family that is declared but has no series yet does not either.

use std::collections::{BTreeMap, BTreeSet};

/// The sample names of a scrape, each with the family it belongs to.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    /// Declared families: name to type.
    pub(crate) families: BTreeMap<String, String>,
    /// Sample names that belong to a declared family.
    pub(crate) series_names: BTreeSet<String>,
    /// Sample names that belong to no declared family (a scrape this test should never see).
    pub(crate) untyped_names: BTreeSet<String>,
}

impl Scrape {
    /// Reads exposition text, OpenMetrics or the Prometheus text format 0.0.4.
    pub(crate) fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    scrape.families.insert(name.to_owned(), kind.to_owned());
                }
            }
        }
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let name_end = line
                .find(|c: char| c == '{' || c.is_whitespace())
                .unwrap_or(line.len());
            let name = &line[..name_end];
            if name.is_empty() {
                continue;
            }
            if scrape.family_of(name).is_some() {
                scrape.series_names.insert(name.to_owned());
            } else {
                scrape.untyped_names.insert(name.to_owned());
            }
        }
        scrape
    }

    /// The declared family sample `name` belongs to.
    fn family_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        if self.families.contains_key(name) {
            return Some(name);
        }
        let suffixes: &[(&str, &[&str])] = &[
            ("_total", &["counter"]),
            ("_bucket", &["histogram", "gaugehistogram"]),
            ("_count", &["histogram", "summary"]),
            ("_sum", &["histogram", "summary"]),
            ("_created", &["counter", "histogram", "summary"]),
        ];
        suffixes.iter().find_map(|(suffix, kinds)| {
            let family = name.strip_suffix(suffix)?;
            let kind = self.families.get(family)?;
            kinds.contains(&kind.as_str()).then_some(family)
        })
    }

    /// Whether a query selecting `name` finds series in this scrape.
    pub(crate) fn has_series(&self, name: &str) -> bool {
        self.series_names.contains(name)
    }
}
