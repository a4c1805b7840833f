//! Config sources: turn the outside world into a [`model::Store`].
//!
//! Today this is the file source ([`FileSource`]): a YAML file, or a directory of them, parsed with
//! [`model::parse`] and watched with notify. Each effective change is published as a
//! [`SourceUpdate`]: the whole store (cheap: objects are `Arc`s shared with the previous store),
//! one [`FileReport`] per file, and the kinds that changed, so the caller can take the endpoint
//! fast path when only EndpointSlices moved.
//!
//! This crate does not validate objects or resolve references; that is `compile`'s job.

mod changed_kinds;
mod content_hash;
mod error;
mod file_source;
mod file_state;
mod merge;
mod parallel;
mod scan;
mod stamp;
mod store_entry;
mod store_versions;
mod update;
mod watch;

#[cfg(test)]
mod test_dir;

pub use changed_kinds::changed_kinds;
pub use error::SourceError;
pub use file_source::FileSource;
pub use merge::StoreEdit;
pub use store_versions::StoreVersions;
pub use update::{FileReport, SourceUpdate};
