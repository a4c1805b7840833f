//! [`status_document`]: the JSON of `/status` and of `portcullis check --json`.

use compile::StatusReport;
use source::SourceUpdate;

/// The `/status` document (also `portcullis check --json`): the update's generation, whether
/// anything is wrong (`healthy`), every problem (rejected files first, then compile problems,
/// then `bind_errors`), the file reports and the status of every object.
pub fn status_document(
    update: &SourceUpdate,
    status: &StatusReport,
    bind_errors: &[String],
) -> serde_json::Value {
    let file_errors: Vec<String> = update
        .files
        .iter()
        .filter_map(|f| {
            f.error
                .as_ref()
                .map(|e| format!("{}: {e}", f.path.display()))
        })
        .collect();
    let mut problems = file_errors;
    problems.extend(status.problems());
    problems.extend(bind_errors.iter().cloned());
    serde_json::json!({
        "generation": update.generation,
        "healthy": problems.is_empty(),
        "problems": problems,
        "files": update.files,
        "objects": status.objects,
    })
}
