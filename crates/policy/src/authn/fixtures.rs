//! Test fixtures: signing keys with their public JWKs, token minting, policies, and a JWKS
//! server on a real socket whose answer and hit count the test controls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use snapshot::security::{JwksSource, Jwt, JwtProvider, SecurityPolicy};

/// The issuer and audience of minted tokens.
pub(crate) const ISSUER: &str = "https://issuer.example";
/// See [`ISSUER`].
pub(crate) const AUDIENCE: &str = "portcullis";

/// A signing key and its public JWK.
pub(crate) struct TestKey {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) jwk: Value,
    /// The SPKI DER of the public key.
    pub(crate) public_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The PEM (`PUBLIC KEY`) of an SPKI DER.
pub(crate) fn pem_public(der: &[u8]) -> String {
    pem("PUBLIC KEY", der)
}

/// One RSA key pair per test binary (generation is the slow part).
static RSA: LazyLock<(Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let private = pair
        .as_der()
        .expect("PKCS#8 of the RSA key")
        .as_ref()
        .to_vec();
    let public = pair
        .public_key()
        .as_der()
        .expect("SPKI of the RSA key")
        .as_ref()
        .to_vec();
    (private, public)
});

/// A second RSA key, to sign with a key the set does not hold.
static OTHER_RSA: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    pair.as_der()
        .expect("PKCS#8 of the RSA key")
        .as_ref()
        .to_vec()
});

impl TestKey {
    fn finish(alg: Algorithm, kid: &str, encoding: EncodingKey, public_der: Vec<u8>) -> TestKey {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK of a test key");
        jwk.common.key_id = Some(kid.to_owned());
        let jwk = serde_json::to_value(&jwk).expect("JWK to JSON");
        TestKey {
            alg,
            kid: kid.to_owned(),
            encoding,
            jwk,
            public_der,
        }
    }

    /// The shared RSA key, for `alg` (RS*/PS*).
    pub(crate) fn rsa(kid: &str, alg: Algorithm) -> TestKey {
        let (private, public) = &*RSA;
        let encoding =
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", private).as_bytes()).expect("RSA PEM");
        TestKey::finish(alg, kid, encoding, public.clone())
    }

    /// Another RSA key (not in any set unless added).
    pub(crate) fn other_rsa(kid: &str) -> TestKey {
        let encoding =
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", &OTHER_RSA).as_bytes()).expect("RSA PEM");
        TestKey::finish(Algorithm::RS256, kid, encoding, Vec::new())
    }

    /// A fresh EC P-256 key (ES256).
    pub(crate) fn es256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 key generation");
        TestKey::finish(
            Algorithm::ES256,
            kid,
            EncodingKey::from_ec_der(pkcs8.as_ref()),
            Vec::new(),
        )
    }

    /// A fresh EC P-384 key (ES384).
    pub(crate) fn es384(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .expect("P-384 key generation");
        TestKey::finish(
            Algorithm::ES384,
            kid,
            EncodingKey::from_ec_der(pkcs8.as_ref()),
            Vec::new(),
        )
    }

    /// A fresh Ed25519 key (EdDSA).
    pub(crate) fn ed25519(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&rng).expect("Ed25519 key generation");
        TestKey::finish(
            Algorithm::EdDSA,
            kid,
            EncodingKey::from_ed_der(pkcs8.as_ref()),
            Vec::new(),
        )
    }

    /// A token over `claims` with this key's alg and kid.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(&header, claims)
    }

    /// A token over `claims` with `header`.
    pub(crate) fn sign_with(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("signing a test token")
    }
}

/// `{"keys": [...]}` of the keys' public JWKs.
pub(crate) fn jwks(keys: &[&TestKey]) -> String {
    let keys: Vec<&Value> = keys.iter().map(|key| &key.jwk).collect();
    json!({ "keys": keys }).to_string()
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit i64")
}

/// Claims a default provider accepts, valid for an hour.
pub(crate) fn good_claims() -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "ana", "iat": now(), "exp": now() + 3600 })
}

/// A provider named `main` with `keys`, the test issuer and audience.
pub(crate) fn provider(keys: JwksSource) -> JwtProvider {
    JwtProvider {
        name: "main".into(),
        issuer: Some(ISSUER.to_owned()),
        audiences: vec![AUDIENCE.to_owned()],
        keys,
        claim_to_headers: Vec::new(),
        extract_from: Vec::new(),
        forward: false,
        clock_skew: Duration::from_secs(30),
    }
}

/// A policy with only JWT authentication by `providers`.
pub(crate) fn jwt_policy(providers: Vec<JwtProvider>, optional: bool) -> SecurityPolicy {
    SecurityPolicy {
        jwt: Some(Jwt {
            providers,
            optional,
        }),
        ..empty_policy()
    }
}

/// A policy with nothing configured.
pub(crate) fn empty_policy() -> SecurityPolicy {
    SecurityPolicy {
        label: "SecurityPolicy default/test".into(),
        oidc: None,
        jwt: None,
        api_key: None,
        basic: None,
        ext_auth: None,
        authorization: None,
        invalid: false,
    }
}

/// Request parts for `uri` with `headers`.
pub(crate) fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(())
        .expect("a valid test request")
        .into_parts()
        .0
}

/// base64url without padding of `text`.
pub(crate) fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// What the JWKS server answers.
pub(crate) enum Answer {
    /// 200 with this body.
    Ok(String),
    /// This status, empty body.
    Status(StatusCode),
    /// Never answer (the connection stays open).
    Hang,
}

/// A JWKS endpoint on 127.0.0.1 that counts its hits.
pub(crate) struct JwksServer {
    pub(crate) addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Starts serving `answer` over plain HTTP; each request waits `delay` before it is
    /// answered.
    pub(crate) async fn start(answer: Answer, delay: Duration) -> JwksServer {
        JwksServer::start_with(answer, delay, None).await
    }

    /// Starts serving `answer` over HTTPS with `tls` (HTTP/1.1).
    pub(crate) async fn start_tls(answer: Answer, tls: Arc<rustls::ServerConfig>) -> JwksServer {
        JwksServer::start_with(
            answer,
            Duration::ZERO,
            Some(tokio_rustls::TlsAcceptor::from(tls)),
        )
        .await
    }

    async fn start_with(
        answer: Answer,
        delay: Duration,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let answer = Arc::new(Mutex::new(answer));
        let hits = Arc::new(AtomicUsize::new(0));
        let (state, counter) = (Arc::clone(&answer), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, counter, tls) = (Arc::clone(&state), Arc::clone(&counter), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, state, counter, delay).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, state, counter, delay).await;
                            }
                        }
                    }
                });
            }
        });
        JwksServer {
            addr,
            answer,
            hits,
            task,
        }
    }

    /// The JWKS URI over https (for [`JwksServer::start_tls`]), naming the host `host`.
    pub(crate) fn https_uri(&self, host: &str) -> Uri {
        format!("https://{host}:{}/jwks.json", self.addr.port())
            .parse()
            .expect("a valid URI")
    }

    /// The JWKS URI.
    pub(crate) fn uri(&self) -> Uri {
        format!("http://{}/jwks.json", self.addr)
            .parse()
            .expect("a valid URI")
    }

    /// Changes what the server answers from now on.
    pub(crate) fn set(&self, answer: Answer) {
        *self.answer.lock().expect("answer lock") = answer;
    }

    /// Requests served (or being served) so far.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection, counting every request.
async fn serve<S>(stream: S, state: Arc<Mutex<Answer>>, counter: Arc<AtomicUsize>, delay: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
        let (state, counter) = (Arc::clone(&state), Arc::clone(&counter));
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(respond(&state).await)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(state: &Mutex<Answer>) -> Response<Full<Bytes>> {
    let answer = {
        let answer = state.lock().expect("answer lock");
        match &*answer {
            Answer::Ok(body) => Ok((StatusCode::OK, body.clone())),
            Answer::Status(status) => Ok((*status, String::new())),
            Answer::Hang => Err(()),
        }
    };
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(()) => {
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid test response")
}
