//! [`ReloadLog`]: the last config reloads, for the dashboard's header and reload table.
//!
//! The binary records one [`ReloadRecord`] per applied source update (the control loop's
//! `Controller::apply`); this module only keeps and renders them. The full status of every
//! object stays in `/status`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reloads kept, newest last.
pub const RELOADS_KEPT: usize = 50;

/// Problem messages kept per reload (the count is kept whole): a broken config can have
/// thousands, and the dashboard shows the first few and points to `/status`.
pub const PROBLEMS_KEPT: usize = 20;

/// One applied source update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRecord {
    /// The update's generation.
    pub generation: u64,
    /// When it was applied.
    pub at: SystemTime,
    /// How long applying it took.
    pub elapsed: Duration,
    /// Whether it changed the snapshot (false for an update that only moved endpoints, or
    /// changed nothing the data plane sees).
    pub compiled: bool,
    /// Rejected files, `path: error`; their last good version keeps serving.
    pub file_errors: Vec<String>,
    /// Problems the compile of this update found, one line each (all of them after a full
    /// compile, those of what it compiled again after an incremental one). [`ReloadLog::record`]
    /// keeps the first [`PROBLEMS_KEPT`].
    pub problems: Vec<String>,
    /// How many problems it found (all of them, also those not kept in `problems`).
    pub problem_count: usize,
}

/// The last [`RELOADS_KEPT`] reloads. Written by the control loop, read by admin requests;
/// both take its lock for a copy at most, never across an await.
#[derive(Debug, Default)]
pub struct ReloadLog {
    records: Mutex<VecDeque<ReloadRecord>>,
}

impl ReloadLog {
    /// Appends `record` (its first [`PROBLEMS_KEPT`] problem messages), dropping the oldest
    /// beyond [`RELOADS_KEPT`].
    pub fn record(&self, mut record: ReloadRecord) {
        record.problems.truncate(PROBLEMS_KEPT);
        record.problems.shrink_to_fit();
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if records.len() == RELOADS_KEPT {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// The reloads kept, oldest first.
    pub fn records(&self) -> Vec<ReloadRecord> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        records.iter().cloned().collect()
    }

    /// The reloads as JSON, oldest first: `generation`, `at_unix_ms`, `elapsed_ms`,
    /// `compiled`, `outcome` (`ok`; `problems`: applied, some objects have problems;
    /// `rejected`: a file was rejected and its last good version keeps serving),
    /// `file_errors`, `problem_count` and the first [`PROBLEMS_KEPT`] `problems`.
    pub fn view(&self) -> serde_json::Value {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        records.iter().map(record_view).collect()
    }
}

fn record_view(record: &ReloadRecord) -> serde_json::Value {
    let outcome = if !record.file_errors.is_empty() {
        "rejected"
    } else if record.problem_count > 0 {
        "problems"
    } else {
        "ok"
    };
    serde_json::json!({
        "generation": record.generation,
        "at_unix_ms": unix_ms(record.at),
        "elapsed_ms": record.elapsed.as_secs_f64() * 1000.0,
        "compiled": record.compiled,
        "outcome": outcome,
        "file_errors": record.file_errors,
        "problem_count": record.problem_count,
        "problems": record.problems,
    })
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests;
