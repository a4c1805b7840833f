use std::path::Path;

use super::*;

fn deploy_crds() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds")
}

#[test]
fn checked_in_crds_are_the_generators_output() {
    let dir = deploy_crds();
    let files = files().expect("the CRDs serialise");
    for (name, text) in &files {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p crdgen -- deploy/crds`",
                path.display()
            )
        });
        assert!(
            current == *text,
            "{} differs from the generator's output: run `cargo run -p crdgen -- deploy/crds`",
            path.display()
        );
    }
    // No stale file of a kind that was renamed or removed.
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/crds")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    present.sort();
    let mut expected: Vec<String> = files.into_iter().map(|(name, _)| name).collect();
    expected.sort();
    assert_eq!(
        present, expected,
        "deploy/crds holds exactly the generated files"
    );
}
