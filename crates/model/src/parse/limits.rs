//! The parser's limits: serde-saphyr's `Budget` for one file, what a document used of it, and
//! the messages that name a breached limit.
//!
//! A file's documents are parsed one by one, each under the whole file's budget; what each used
//! is added up per file ([`Usage`]) and checked against the same budget, so every limit still
//! holds per file. A file over a limit is parsed again as one stream, which stops at the limit
//! and names it exactly as before documents were parsed apart. Nesting depth is per document by
//! nature; the alias/anchor ratio is checked on the file's totals.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_saphyr::budget::{Budget, BudgetBreach, BudgetReport};

/// The most documents one file may hold. serde-saphyr's default (1,024) is too small for a
/// generated file of EndpointSlices or routes.
pub(super) const MAX_DOCUMENTS: usize = 100_000;

/// The most nodes (mappings, sequences, scalars) in one file: 50 per document on average at the
/// document limit. The default (250,000) would refuse a file long before it reached that limit.
const MAX_NODES: usize = 5_000_000;

/// The most parser events in one file: twice [`MAX_NODES`], since every collection also ends and
/// every document starts and ends (the default, 1,000,000, is sized like the default node limit).
const MAX_EVENTS: usize = 10_000_000;

/// The parser options: serde-saphyr's default budget with the document, node and event counts
/// raised for large files. The limits that stop YAML bombs keep their defaults: aliases and
/// anchors (and their ratio, which catches "billion laughs"), the retained anchor copies, nesting
/// depth (64), merge keys and total scalar text (64 MiB).
pub(super) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: Some(file_budget()),
    }
}

/// The budget of [`yaml_options`].
fn file_budget() -> Budget {
    let mut budget = Budget::default();
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_EVENTS;
    budget
}

/// A counter of [`Usage`]: 32 bits, saturating. Every limit is far below `u32::MAX`, so a
/// saturated counter is over its limit, as an unaccounted parse is. The file source keeps a
/// `Usage` per document of every file: 40 bytes rather than 80.
type Count = u32;

/// `n` as a [`Count`], saturated.
fn count(n: usize) -> Count {
    Count::try_from(n).unwrap_or(Count::MAX)
}

/// A [`Count`] as the budget's `usize`.
fn wide(n: Count) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// What parsing one piece of a file used of the budget: the counters of serde-saphyr's
/// `BudgetReport` that add up over a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// How many parses were added up (each one counts a stream start and end event).
    parses: Count,
    documents: Count,
    events: Count,
    nodes: Count,
    aliases: Count,
    anchors: Count,
    recorded_anchor_events: Count,
    recorded_anchor_bytes: Count,
    scalar_bytes: Count,
    merge_keys: Count,
}

impl Usage {
    /// The counters of one parse.
    pub(super) fn of(report: &BudgetReport) -> Usage {
        Usage {
            parses: 1,
            documents: count(report.documents),
            events: count(report.events),
            nodes: count(report.nodes),
            aliases: count(report.aliases),
            anchors: count(report.anchors),
            recorded_anchor_events: count(report.recorded_anchor_events),
            recorded_anchor_bytes: count(report.recorded_anchor_bytes),
            scalar_bytes: count(report.total_scalar_bytes),
            merge_keys: count(report.merge_keys),
        }
    }

    /// A parse whose counters are unknown: over every limit, so that its file is parsed as one
    /// stream.
    pub(super) fn unaccounted() -> Usage {
        Usage {
            parses: 1,
            documents: Count::MAX,
            events: Count::MAX,
            nodes: Count::MAX,
            aliases: Count::MAX,
            anchors: Count::MAX,
            recorded_anchor_events: Count::MAX,
            recorded_anchor_bytes: Count::MAX,
            scalar_bytes: Count::MAX,
            merge_keys: Count::MAX,
        }
    }

    /// The counters of two parts of one file together.
    pub(super) fn add(self, other: Usage) -> Usage {
        Usage {
            parses: self.parses.saturating_add(other.parses),
            documents: self.documents.saturating_add(other.documents),
            events: self.events.saturating_add(other.events),
            nodes: self.nodes.saturating_add(other.nodes),
            aliases: self.aliases.saturating_add(other.aliases),
            anchors: self.anchors.saturating_add(other.anchors),
            recorded_anchor_events: self
                .recorded_anchor_events
                .saturating_add(other.recorded_anchor_events),
            recorded_anchor_bytes: self
                .recorded_anchor_bytes
                .saturating_add(other.recorded_anchor_bytes),
            scalar_bytes: self.scalar_bytes.saturating_add(other.scalar_bytes),
            merge_keys: self.merge_keys.saturating_add(other.merge_keys),
        }
    }

    /// The events the whole text would have: each separate parse adds a stream start and end
    /// that the whole text has once.
    fn stream_events(&self) -> usize {
        wide(self.events).saturating_sub(2 * wide(self.parses).saturating_sub(1))
    }

    /// The counters as one parse of the whole text would have them.
    #[cfg(test)]
    pub(super) fn as_one_parse(&self) -> Usage {
        Usage {
            parses: 1,
            events: count(self.stream_events()),
            ..*self
        }
    }

    /// Whether a file that used this much stays within every limit of the file budget, the
    /// alias/anchor ratio included.
    pub(super) fn is_within_budget(&self) -> bool {
        let budget = file_budget();
        let aliases = wide(self.aliases);
        let anchors = wide(self.anchors);
        let ratio_breached = budget.enforce_alias_anchor_ratio
            && aliases >= budget.alias_anchor_min_aliases
            && (anchors == 0
                || aliases > budget.alias_anchor_ratio_multiplier.saturating_mul(anchors));
        !ratio_breached
            && wide(self.documents) <= budget.max_documents
            && self.stream_events() <= budget.max_events
            && wide(self.nodes) <= budget.max_nodes
            && aliases <= budget.max_aliases
            && anchors <= budget.max_anchors
            && wide(self.recorded_anchor_events) <= budget.max_recorded_anchor_events
            && wide(self.recorded_anchor_bytes) <= budget.max_recorded_anchor_bytes
            && wide(self.scalar_bytes) <= budget.max_total_scalar_bytes
            && wide(self.merge_keys) <= budget.max_merge_keys
    }
}

/// The parser work spent on one file's documents so far, shared by the threads that parse them,
/// so that a file of many documents that each stay within the file's budget cannot together
/// cost many times that budget: once the file's documents used the budget's parser events, its
/// remaining documents are not parsed, and [`join_documents`](super::join_documents) parses the
/// file as one stream, which stops at the limit.
#[derive(Debug, Default)]
pub struct FileBudget {
    events: AtomicUsize,
}

impl FileBudget {
    /// A budget nothing has been spent from.
    pub fn new() -> FileBudget {
        FileBudget::default()
    }

    /// Whether the file's parses so far have used up its parser events.
    pub(super) fn is_spent(&self) -> bool {
        self.events.load(Ordering::Relaxed) > MAX_EVENTS
    }

    /// Charges one parse's usage.
    pub(super) fn charge(&self, usage: &Usage) {
        // Relaxed: the counter only bounds work; the exact check adds up `Usage` per file.
        // Capped so that an unaccounted parse (`Count::MAX`) cannot wrap the counter around.
        self.events
            .fetch_add(wide(usage.events).min(MAX_EVENTS + 1), Ordering::Relaxed);
    }
}

/// The breached limit in plain words, with its value (the budget of [`yaml_options`]).
pub(super) fn describe_breach(breach: &BudgetBreach) -> String {
    let budget = file_budget();
    match breach {
        BudgetBreach::Documents { .. } => {
            format!(
                "file has more than {} YAML documents (limit)",
                budget.max_documents
            )
        }
        BudgetBreach::Nodes { .. } => format!(
            "file has more than {} YAML nodes (mappings, sequences and scalars) (limit)",
            budget.max_nodes
        ),
        BudgetBreach::Events { .. } => {
            format!(
                "file has more than {} YAML parser events (limit)",
                budget.max_events
            )
        }
        BudgetBreach::Depth { .. } => format!(
            "file nests YAML mappings and sequences more than {} levels deep (limit)",
            budget.max_depth
        ),
        BudgetBreach::Aliases { .. } => {
            format!(
                "file uses more than {} YAML aliases (limit)",
                budget.max_aliases
            )
        }
        BudgetBreach::Anchors { .. } => {
            format!(
                "file defines more than {} YAML anchors (limit)",
                budget.max_anchors
            )
        }
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => format!(
            "file uses {aliases} YAML aliases for {anchors} anchors, more than {} per anchor \
             (alias ratio limit, which stops alias bombs)",
            budget.alias_anchor_ratio_multiplier
        ),
        BudgetBreach::RecordedAnchorEvents { .. } => format!(
            "file expands YAML aliases to more than {} copied events (alias expansion limit, \
             which stops alias bombs)",
            budget.max_recorded_anchor_events
        ),
        BudgetBreach::RecordedAnchorBytes { .. } => format!(
            "file expands YAML aliases to more than {} copied bytes (alias expansion limit, \
             which stops alias bombs)",
            budget.max_recorded_anchor_bytes
        ),
        BudgetBreach::ScalarBytes { .. } => format!(
            "file has more than {} bytes of YAML scalar text (limit)",
            budget.max_total_scalar_bytes
        ),
        BudgetBreach::MergeKeys { .. } => format!(
            "file has more than {} YAML merge keys `<<` (limit)",
            budget.max_merge_keys
        ),
        BudgetBreach::SequenceUnbalanced => {
            "file has a YAML collection that ends without starting".to_owned()
        }
        // The enum is non-exhaustive; limits we do not configure (includes, reader input,
        // property interpolation) cannot fire for a string without includes or properties.
        other => format!("file breaches a YAML parser limit ({other:?})"),
    }
}
