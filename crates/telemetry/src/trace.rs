//! OpenTelemetry tracing: the trace context requests carry ([`context`]), the decision to
//! record a request ([`Sampler`]), its spans ([`ServerSpan`], [`AttemptSpan`]) and their export
//! over OTLP ([`Tracer`]). The proxy decides what a request's spans say; this module encodes
//! and ships them.

pub mod context;
mod export;
mod sampler;
mod span;

pub use export::{OtlpProtocol, Tracer, TracingError, TracingFlags, TracingSettings};
pub use sampler::{Root, Sampler, SamplerError};
pub use span::{AttemptSpan, PartTag, ServerSpan};
