//! The `retry` of a BackendTrafficPolicy: validation into the [`RetryPolicy`] each route rule
//! under the policy gets (with a budget of its own, see `AppliedPolicy::retry_policy`).
//!
//! It does not decide which rules a policy reaches; that is `traffic_policy`'s precedence.

use std::time::Duration;

use snapshot::{Backoff, RetryBudgetSettings, RetryPolicy, RetryTriggers};

use super::DurationFields;
use crate::problems::{FieldPath, Problems};

/// `retry`: triggers (`connect-failure`, `reset`, `retriable-status-codes`, `5xx`,
/// `gateway-error`; default connect-failure and reset), `numRetries` (default 2), per-try
/// timeout, exponential backoff (default 25 ms .. 250 ms) and budget. `policy` is the policy's
/// path.
pub(super) fn compile_retry(
    policy: &FieldPath,
    spec: Option<&model::policy::Retry>,
) -> Result<Option<RetryPolicy>, Problems> {
    let Some(spec) = spec else { return Ok(None) };
    let at = policy.field("spec.retry");
    let mut problems = Problems::default();
    let retry_on = spec.retry_on.clone().unwrap_or_default();
    let triggers = retry_triggers(&at.field("retryOn"), &retry_on, &mut problems);
    let per_retry = spec.per_retry.clone().unwrap_or_default();
    let (per_try_timeout, backoff) =
        per_retry_timing(&at.field("perRetry"), &per_retry, &mut problems);
    let budget = spec
        .budget
        .as_ref()
        .map(|budget| retry_budget(&at.field("budget"), budget, &mut problems));
    problems.or_value(Some(RetryPolicy {
        triggers,
        attempts: spec.num_retries.unwrap_or(2),
        backoff,
        per_try_timeout: per_try_timeout.filter(|t| !t.is_zero()),
        budget,
    }))
}

/// `retry.retryOn` (`at`): which failures are retried; `retriable-status-codes` needs codes,
/// and codes must be 4xx or 5xx.
fn retry_triggers(
    at: &FieldPath,
    retry_on: &model::policy::RetryOn,
    problems: &mut Problems,
) -> RetryTriggers {
    let mut triggers = RetryTriggers {
        connect_failure: false,
        reset: false,
        timeout: false,
        status_codes: Vec::new(),
        gateway_error: false,
        server_error: false,
    };
    let names: Vec<String> = if retry_on.triggers.is_empty() {
        vec!["connect-failure".to_owned(), "reset".to_owned()]
    } else {
        retry_on.triggers.clone()
    };
    for (index, name) in names.iter().enumerate() {
        match name.as_str() {
            "connect-failure" => triggers.connect_failure = true,
            "reset" => triggers.reset = true,
            "retriable-status-codes" => triggers.status_codes.clone_from(&retry_on.http_status_codes),
            "5xx" => triggers.server_error = true,
            "gateway-error" => triggers.gateway_error = true,
            "timeout" => triggers.timeout = true,
            other => problems.report(at.field("triggers").index(index).problem(format!(
                "{other:?} is not connect-failure, reset, timeout, retriable-status-codes, 5xx or gateway-error"
            ))),
        }
    }
    let codes = at.field("httpStatusCodes");
    if names.iter().any(|n| n == "retriable-status-codes") && retry_on.http_status_codes.is_empty()
    {
        problems.report(codes.problem("retriable-status-codes needs at least one code"));
    }
    if let Some(code) = retry_on
        .http_status_codes
        .iter()
        .find(|c| !(400..=599).contains(*c))
    {
        problems.report(codes.problem(format!("{code} is not a 4xx or 5xx status")));
    }
    triggers
}

/// `retry.perRetry` (`at`): the per-try timeout and the backoff between tries (max not below
/// base).
fn per_retry_timing(
    at: &FieldPath,
    spec: &model::policy::PerRetry,
    problems: &mut Problems,
) -> (Option<Duration>, Backoff) {
    let mut fields = DurationFields::new(at, problems);
    let per_try_timeout = spec
        .timeout
        .as_ref()
        .map(|t| fields.parse("timeout", Some(t), Duration::ZERO));
    let back_off = spec.back_off.clone().unwrap_or_default();
    let base = fields.parse(
        "backOff.baseInterval",
        back_off.base_interval.as_ref(),
        Backoff::DEFAULT_RETRY.base,
    );
    let max = fields.parse(
        "backOff.maxInterval",
        back_off.max_interval.as_ref(),
        Backoff::DEFAULT_RETRY.max,
    );
    if max < base {
        problems.report(
            at.field("backOff.maxInterval")
                .sentence("must not be shorter than baseInterval"),
        );
    }
    (per_try_timeout, Backoff { base, max })
}

/// `retry.budget` (`at`): retries allowed as a percent of requests, at least
/// `minRetriesPerSecond` (default 10).
fn retry_budget(
    at: &FieldPath,
    spec: &model::policy::RetryBudget,
    problems: &mut Problems,
) -> RetryBudgetSettings {
    if spec.percent == 0 || spec.percent > 100 {
        problems.report(
            at.field("percent")
                .problem(format!("{} is not in 1..=100", spec.percent)),
        );
    }
    RetryBudgetSettings::new(spec.percent, spec.min_retries_per_second.unwrap_or(10))
}
