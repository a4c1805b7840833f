//! Least request: the cost of an endpoint is its number of requests in flight plus the one
//! being placed (compared per unit of weight by [`super::two_choices`]).

use crate::endpoint::EndpointRuntime;

/// Requests in flight, plus one (so weights still count between idle endpoints).
pub(super) fn cost(endpoint: &EndpointRuntime) -> f64 {
    endpoint.in_flight() as f64 + 1.0
}
