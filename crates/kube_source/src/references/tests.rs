use model::{Kind, ObjectKey, Store};

use super::referenced;

#[test]
fn listener_certificates_frontend_and_backend_ca_bundles_are_referenced() {
    let documents = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  gatewayClassName: portcullis
  listeners:
  - name: https
    protocol: HTTPS
    port: 443
    tls:
      certificateRefs:
      - {name: shop-cert}
      - {name: other-cert, namespace: certs}
  - name: http
    protocol: HTTP
    port: 80
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: tls, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: cart}]
  validation:
    hostname: cart.shop
    caCertificateRefs: [{group: "", kind: ConfigMap, name: cart-ca}]
"#;
    let mut store = Store::new();
    for object in model::parse_documents(documents).expect("valid").objects {
        store.insert(object);
    }
    let found: Vec<ObjectKey> = referenced(&store).into_iter().collect();
    assert_eq!(
        found,
        [
            ObjectKey::new(Kind::Secret, "certs", "other-cert"),
            ObjectKey::new(Kind::Secret, "shop", "shop-cert"),
            ObjectKey::new(Kind::ConfigMap, "shop", "cart-ca"),
        ]
    );
}
