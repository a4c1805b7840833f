//! A rule's Composition as a [`CompositionPlan`]: its parts in waves, each with its backend and
//! templates as written, and, for an explained request, the path parameters it binds. `explain`
//! shows it for the matched rule; `/config` for every rule that has one.

use std::time::Duration;

use snapshot::BackendTarget;
use snapshot::backend::CompiledBackend;
use snapshot::composition::{Composition, Merge, Part, dependency_order};

use super::{CompositionPlan, CompositionWave, PartPlan, PathBinding};
use crate::composition::template_text;

/// The plan of `composition` (its backends are indices into `backends`); `path`: the explained
/// request's path (normalized, without query), `None` in `/config`.
pub(crate) fn plan(
    composition: &Composition,
    backends: &[CompiledBackend],
    path: Option<&str>,
) -> CompositionPlan {
    let pattern = composition.path_pattern.as_ref();
    let bound = pattern.zip(path).map(|(pattern, path)| pattern.bind(path));
    let bindings = match (pattern, &bound) {
        (Some(pattern), Some(Some(values))) => pattern
            .names()
            .iter()
            .zip(values)
            .map(|(name, value)| PathBinding {
                name: name.clone(),
                value: (*value).to_owned(),
            })
            .collect(),
        _ => Vec::new(),
    };
    CompositionPlan {
        composition: composition.name.to_string(),
        path_pattern: pattern.map(ToString::to_string),
        path_fits: bound.map(|values| values.is_some()),
        bindings,
        merge: match composition.merge {
            Merge::Keyed => "Keyed",
            Merge::Deep => "Deep",
        },
        timeout: duration_text(composition.timeout),
        max_part_bytes: composition.max_part_bytes,
        waves: waves(composition)
            .into_iter()
            .enumerate()
            .map(|(index, parts)| CompositionWave {
                wave: index + 1,
                parts: parts
                    .into_iter()
                    .map(|part| part_plan(composition, &composition.parts[part], backends))
                    .collect(),
            })
            .collect(),
    }
}

/// The parts' indices by wave: a part's wave is one more than the latest wave of the parts it
/// reads (the first for a part that reads none). Declaration order within a wave.
fn waves(composition: &Composition) -> Vec<Vec<usize>> {
    let depends_on: Vec<Vec<usize>> = composition
        .parts
        .iter()
        .map(|part| part.depends_on.clone())
        .collect();
    // Compile guarantees no cycle; were there one, every part would show in the first wave.
    let order = dependency_order(&depends_on).unwrap_or_else(|_| (0..depends_on.len()).collect());
    let mut wave_of = vec![0; depends_on.len()];
    for part in order {
        wave_of[part] = depends_on[part]
            .iter()
            .filter_map(|need| wave_of.get(*need))
            .max()
            .map_or(0, |latest| latest + 1);
    }
    let count = wave_of.iter().max().map_or(0, |last| last + 1);
    let mut waves = vec![Vec::new(); count];
    for (part, wave) in wave_of.into_iter().enumerate() {
        waves[wave].push(part);
    }
    waves
}

fn part_plan(composition: &Composition, part: &Part, backends: &[CompiledBackend]) -> PartPlan {
    let (backend, invalid) = match &part.backend {
        BackendTarget::Backend(index) => (
            backends.get(*index).map(|backend| backend.id.to_string()),
            None,
        ),
        BackendTarget::Invalid(response) => (
            None,
            Some(
                String::from_utf8_lossy(&response.body)
                    .trim_end()
                    .to_owned(),
            ),
        ),
    };
    PartPlan {
        name: part.name.to_string(),
        method: part.method.to_string(),
        backend,
        invalid,
        target: template_text(&part.target, composition),
        forward_headers: part
            .forward_headers
            .iter()
            .map(|name| name.as_str().to_owned())
            .collect(),
        set_headers: part
            .set_headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", template_text(value, composition)))
            .collect(),
        required: part.required,
        timeout: part.timeout.map(duration_text),
        select: part.select.clone(),
        depends_on: part
            .depends_on
            .iter()
            .filter_map(|index| composition.parts.get(*index))
            .map(|need| need.name.to_string())
            .collect(),
    }
}

/// A duration as a Gateway API duration reads: whole seconds as `10s`, else milliseconds.
fn duration_text(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
