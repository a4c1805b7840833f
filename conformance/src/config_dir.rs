//! Writes what the gateway reads for one test: the DESIGN section 3 standalone contract.
//!
//! One multi-document YAML file holding the GatewayClass, the manifests' objects (Deployments left out: the
//! emulated pods stand in for them), the generated EndpointSlices and the TLS Secrets. Each document is
//! written as JSON, which is YAML too, so no YAML serialiser quirk can change a value.

use anyhow::Context;
use serde_json::Value;
use testkit::TempConfigDir;

use crate::manifests::kind;

/// The file name inside the config directory.
pub(crate) const FILE_NAME: &str = "conformance.yaml";

/// Creates a temporary directory holding `objects` (in order) and returns it; it is removed on drop.
pub(crate) fn write(objects: &[Value]) -> anyhow::Result<TempConfigDir> {
    let directory = TempConfigDir::new()?;
    rewrite(&directory, objects)?;
    Ok(directory)
}

/// Atomically replaces the config in `directory` with `objects`; a running gateway picks the change up.
pub(crate) fn rewrite(directory: &TempConfigDir, objects: &[Value]) -> anyhow::Result<()> {
    let mut text = String::new();
    for object in objects.iter().filter(|object| kind(object) != "Deployment") {
        text.push_str("---\n");
        text.push_str(
            &serde_json::to_string_pretty(object).context("serialising a manifest object")?,
        );
        text.push('\n');
    }
    directory.write(FILE_NAME, &text)?;
    Ok(())
}
