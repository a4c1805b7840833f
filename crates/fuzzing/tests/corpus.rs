//! Replays the checked-in fuzz corpora and regressions through the property checks, on stable
//! Rust and without libFuzzer: what CI runs for the fuzz targets.
//!
//! Every target must have a non-empty `fuzz/corpus/<target>/`; `fuzz/regressions/<target>/`
//! (inputs that once failed) is optional.

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; `None` if it does not exist.
fn files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Some(files)
}

fn replay(target: &str, check: fuzzing::Check, files: &[PathBuf]) {
    for file in files {
        let data = fs::read(file).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails (replay it with `scripts/fuzz {target}` or read the panic above)",
            file.display()
        );
    }
}

#[test]
fn every_target_replays_its_corpus() {
    for &(target, check) in fuzzing::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let corpus = files(&dir).unwrap_or_else(|| panic!("{} is missing", dir.display()));
        assert!(!corpus.is_empty(), "{} is empty", dir.display());
        replay(target, check, &corpus);
    }
}

#[test]
fn every_target_replays_its_regressions() {
    for &(target, check) in fuzzing::TARGETS {
        let dir = fuzz_dir().join("regressions").join(target);
        if let Some(regressions) = files(&dir) {
            replay(target, check, &regressions);
        }
    }
}

#[test]
fn every_corpus_belongs_to_a_target() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("readable directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                fuzzing::TARGETS.iter().any(|&(target, _)| target == name),
                "fuzz/{kind}/{name} has no target in fuzzing::TARGETS"
            );
        }
    }
}
