//! Target `config_yaml`: a config file from YAML text to a compiled snapshot, the path every
//! file of the file source takes (`model::parse_documents`, then `model::Store::insert` for
//! each object, then `compile::compile`).
//!
//! Checks that none of the three steps panics whatever the text, and that the store holds
//! exactly the objects parsed, less those replaced by a later document with the same key.
//! Bounded time is checked by libFuzzer's `-timeout` (see `scripts/fuzz`), not here, so that a
//! slow CI machine cannot fail the corpus replay.

use compile::{CompileOptions, compile};
use model::{Store, parse_documents};

/// Parses `data`, loads the objects into a store and compiles it. Invalid UTF-8 is replaced so
/// that byte-level mutations still reach the parser (the file source refuses such files before
/// parsing).
///
/// # Panics
/// When the store does not account for every parsed object, or when the parser, the store or
/// compile panics.
pub fn config_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = parse_documents(&text) else {
        return;
    };
    let mut store = Store::new();
    let mut replaced = 0;
    for object in parsed.objects.iter().cloned() {
        replaced += usize::from(store.insert(object));
    }
    assert_eq!(
        store.len() + replaced,
        parsed.objects.len(),
        "the store lost or invented objects"
    );
    let compiled = compile(&store, &CompileOptions::default());
    assert_eq!(compiled.snapshot.generation, 0);
}
