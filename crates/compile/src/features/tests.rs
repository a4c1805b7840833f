use super::SUPPORTED_FEATURES;

#[test]
fn supported_features_are_sorted_unique_and_fit_the_schema() {
    // The GatewayClass schema: sorted ascending by name, at most 64 entries (a list map keyed
    // by name, so a duplicate would be refused).
    assert!(
        SUPPORTED_FEATURES.len() <= 64,
        "{}",
        SUPPORTED_FEATURES.len()
    );
    for pair in SUPPORTED_FEATURES.windows(2) {
        assert!(
            pair[0] < pair[1],
            "{:?} must come before {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn every_core_kind_we_serve_is_a_supported_feature() {
    for core in [
        "Gateway",
        "HTTPRoute",
        "GRPCRoute",
        "TLSRoute",
        "TCPRoute",
        "UDPRoute",
        "ReferenceGrant",
        "BackendTLSPolicy",
        "ListenerSet",
    ] {
        assert!(SUPPORTED_FEATURES.contains(&core), "{core} missing");
    }
}
