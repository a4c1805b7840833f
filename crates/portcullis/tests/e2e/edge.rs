//! Safety at the edge (reliability.md A4, A7, A8, A9): path normalization against route
//! bypasses, request head limits, client timeouts, HTTP/2 flood guards and connection limits,
//! probed over raw sockets so that nothing a client library would fix up gets fixed up.

mod certificates;
mod client_ip;
mod floods;
mod hibernation;
mod limits;
mod paths;
mod timeouts;
