//! A minimal gRPC echo (server and client) over h2c, enough for the suite's GRPCRoute cases.
//!
//! Owns the `gateway_api_conformance.echo_basic.grpcecho.GrpcEcho` service of echo-basic (conformance README
//! section 4): `Echo` and `EchoTwo` answer with the assertions the suite checks (method, namespace, pod),
//! `EchoThree` and every other method answer `Unimplemented`. Only unary calls with an empty request message are
//! supported; there is no TLS, compression or streaming.

mod client;
mod server;
mod wire;

pub(crate) use client::{GrpcOutcome, call};
pub(crate) use server::GrpcEchoServer;

/// The path prefix of the echo service's methods.
pub(crate) const SERVICE_PREFIX: &str = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/";

/// gRPC status code names in code order (`codes.Code` in grpc-go).
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// `OK`.
pub(crate) const OK: u32 = 0;
/// `Unknown`.
const UNKNOWN: u32 = 2;
/// `DeadlineExceeded`.
const DEADLINE_EXCEEDED: u32 = 4;
/// `PermissionDenied`.
const PERMISSION_DENIED: u32 = 7;
/// `Unimplemented`.
const UNIMPLEMENTED: u32 = 12;
/// `Internal`.
const INTERNAL: u32 = 13;
/// `Unavailable`.
const UNAVAILABLE: u32 = 14;
/// `Unauthenticated`.
const UNAUTHENTICATED: u32 = 16;

/// The code for a name as `cases.json` writes it (`codes.OK`, `OK`, `Unimplemented`).
pub(crate) fn code_from_name(name: &str) -> Option<u32> {
    let name = name.strip_prefix("codes.").unwrap_or(name);
    CODE_NAMES
        .iter()
        .position(|candidate| candidate.eq_ignore_ascii_case(name))
        .and_then(|code| u32::try_from(code).ok())
}

/// `Name (code)`, as grpc-go prints a code.
pub(crate) fn describe_code(code: u32) -> String {
    let name = usize::try_from(code)
        .ok()
        .and_then(|index| CODE_NAMES.get(index))
        .copied()
        .unwrap_or("Code");
    format!("{name} ({code})")
}

#[cfg(test)]
mod tests;
