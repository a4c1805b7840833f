//! The Gateway API kinds other than HTTPRoute (see `http_route.rs`): each is the generated
//! `spec` under our compact [`ObjectMeta`].
//!
//! The generated root types carry the Kubernetes `ObjectMeta` and a `status`; nothing reads
//! the status back (status is written from what compile computes), so it is not kept, as an
//! unknown field is not. `model::gateway_api` re-exports these in place of the generated roots
//! of the same names, so `metadata` and `spec` read as before.

use serde::{Deserialize, Serialize};

use ::gateway_api::apis::standard::backendtlspolicies::BackendTlsPolicySpec;
use ::gateway_api::experimental::gatewayclasses::GatewayClassSpec;
use ::gateway_api::experimental::gateways::GatewaySpec;
use ::gateway_api::experimental::grpcroutes::GrpcRouteSpec;
use ::gateway_api::experimental::listenersets::ListenerSetSpec;
use ::gateway_api::experimental::referencegrants::ReferenceGrantSpec;
use ::gateway_api::experimental::tcproutes::TcpRouteSpec;
use ::gateway_api::experimental::tlsroutes::TlsRouteSpec;
use ::gateway_api::experimental::udproutes::UdpRouteSpec;

use crate::object_meta::ObjectMeta;

/// A Gateway API object: metadata and the generated spec, as the generated root reads them
/// (both required).
macro_rules! gateway_kind {
    ($(#[$doc:meta])* $kind:ident($spec:ident)) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct $kind {
            /// Name, namespace, labels, generation, creation time.
            pub metadata: ObjectMeta,
            /// The generated spec.
            pub spec: $spec,
        }
    };
}

gateway_kind!(
    /// gateway.networking.k8s.io `GatewayClass`.
    GatewayClass(GatewayClassSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `Gateway`.
    Gateway(GatewaySpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `ListenerSet` (and `XListenerSet`).
    ListenerSet(ListenerSetSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `GRPCRoute`.
    GrpcRoute(GrpcRouteSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `TLSRoute`.
    TlsRoute(TlsRouteSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `TCPRoute`.
    TcpRoute(TcpRouteSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `UDPRoute`.
    UdpRoute(UdpRouteSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `ReferenceGrant`.
    ReferenceGrant(ReferenceGrantSpec)
);
gateway_kind!(
    /// gateway.networking.k8s.io `BackendTLSPolicy`.
    BackendTlsPolicy(BackendTlsPolicySpec)
);
