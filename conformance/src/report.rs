//! The runner's output: one line per test, the verbose per-case lines, and the closing `N passed, M failed`.

use std::time::Duration;

/// How one case ended.
pub(crate) struct CaseOutcome {
    /// The suite's name for the case.
    pub(crate) label: String,
    /// `Err` says why it failed.
    pub(crate) result: Result<(), String>,
}

/// How one test ended.
pub(crate) struct TestOutcome {
    /// The test's name.
    pub(crate) name: String,
    /// How many cases the test has.
    pub(crate) total: usize,
    /// Per case, in order; empty when the test could not start.
    pub(crate) cases: Vec<CaseOutcome>,
    /// Why the test could not run its cases (setup), or what went wrong around them (the gateway exited).
    pub(crate) test_failure: Option<String>,
    /// Details for `--verbose` only (e.g. the gateway's stderr).
    pub(crate) verbose_detail: Option<String>,
    /// The last lines the gateway wrote when it exited during the test: printed under the
    /// summary line even without `--verbose` (a CI log then says why).
    pub(crate) gateway_tail: Option<String>,
    /// Wall-clock time.
    pub(crate) elapsed: Duration,
    /// Kubernetes mode: how many objects' written status was found equal to `portcullis check`'s.
    pub(crate) status_objects: Option<usize>,
}

impl TestOutcome {
    /// Passed cases.
    fn passed(&self) -> usize {
        self.cases.iter().filter(|case| case.result.is_ok()).count()
    }

    /// Whether the test passed: every case passed and nothing failed around them.
    pub(crate) fn is_pass(&self) -> bool {
        self.test_failure.is_none() && self.passed() == self.total
    }

    /// The summary line, and with `verbose` the per-case lines after it.
    pub(crate) fn render(&self, verbose: bool) -> String {
        let passed = self.passed();
        let status = self
            .status_objects
            .map(|objects| format!(", status of {objects} objects = check"))
            .unwrap_or_default();
        let mut text = if self.is_pass() {
            format!("PASS {} ({passed}/{} cases{status})", self.name, self.total)
        } else {
            format!(
                "FAIL {} ({passed}/{} cases): {}",
                self.name,
                self.total,
                one_line(&self.first_failure())
            )
        };
        if !verbose && let Some(tail) = &self.gateway_tail {
            for line in tail.lines() {
                text.push_str(&format!("\n    | {line}"));
            }
        }
        if verbose {
            for (index, case) in self.cases.iter().enumerate() {
                match &case.result {
                    Ok(()) => text.push_str(&format!("\n    ok   [{index}] {}", case.label)),
                    Err(reason) => text.push_str(&format!(
                        "\n    FAIL [{index}] {}: {}",
                        case.label,
                        one_line(reason)
                    )),
                }
            }
            if let Some(detail) = &self.verbose_detail {
                for line in detail.lines() {
                    text.push_str(&format!("\n    | {line}"));
                }
            }
            text.push_str(&format!("\n    ({:.1}s)", self.elapsed.as_secs_f64()));
        }
        text
    }

    /// The reason shown on the summary line: the failure around the cases, else the first failed case.
    fn first_failure(&self) -> String {
        if let Some(failure) = &self.test_failure {
            return failure.clone();
        }
        self.cases
            .iter()
            .enumerate()
            .find_map(|(index, case)| {
                case.result
                    .as_ref()
                    .err()
                    .map(|reason| format!("case {index} ({}): {reason}", case.label))
            })
            .unwrap_or_else(|| "no case ran".to_owned())
    }
}

/// The closing line.
pub(crate) fn summary(passed: usize, failed: usize) -> String {
    format!("{passed} passed, {failed} failed")
}

/// `text` on one line: line breaks become ` | `.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
