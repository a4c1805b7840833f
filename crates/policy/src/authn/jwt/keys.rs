//! A JSON Web Key Set (RFC 7517) turned into verification keys.
//!
//! Only public signature keys are kept: RSA (RS*/PS*), EC P-256 (ES256) and P-384 (ES384),
//! and OKP Ed25519 (EdDSA). Symmetric (`oct`) keys are never kept, so no token can be checked
//! with a shared secret (the HS/RS confusion defence starts here), and keys marked
//! `"use": "enc"` or with an `alg` we do not verify (`RSA-OAEP`, ...) are skipped. One key the
//! set cannot use does not spoil the others: each key is parsed on its own.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// The usable keys of one JWKS document.
pub(crate) struct KeySet {
    keys: Vec<VerificationKey>,
}

/// One public key, with what the JWK says about it.
pub(crate) struct VerificationKey {
    /// `kid`.
    kid: Option<String>,
    /// `alg`: when set, the only algorithm the key verifies.
    alg: Option<Algorithm>,
    /// The key type and curve, which decide the algorithms it fits.
    kind: KeyKind,
    /// The key itself.
    pub(crate) key: DecodingKey,
}

/// Key type (and curve) of a verification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind can verify `alg` (RFC 7518 §3.1; RFC 8037 §3.1).
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::EcP256 => alg == Algorithm::ES256,
            KeyKind::EcP384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

/// Why a document is not a key set we can use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeySetError {
    /// Not `{"keys": [...]}`.
    #[error("not a JSON Web Key Set: {0}")]
    NotJwks(serde_json::Error),
    /// A set without a single usable signature key.
    #[error("no usable signature key (RSA, EC P-256/P-384, Ed25519) in the set")]
    NoUsableKey,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<Value>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys it can verify with (see the module docs).
    pub(crate) fn parse(document: &[u8]) -> Result<KeySet, KeySetError> {
        let raw: RawSet = serde_json::from_slice(document).map_err(KeySetError::NotJwks)?;
        let keys: Vec<VerificationKey> = raw.keys.iter().filter_map(verification_key).collect();
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    /// A set with no key: what a broken inline set verifies with (nothing).
    pub(crate) fn empty() -> KeySet {
        KeySet { keys: Vec::new() }
    }

    /// Whether a key has this `kid`.
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The keys that may verify a token with header `alg` and `kid`: when both the token and
    /// the key name a `kid`, they must be equal (a key without `kid` is tried for any token,
    /// as Envoy does: inline sets often omit it); the key type must fit `alg`; a key's own
    /// `alg`, if set, must equal it.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerificationKey> {
        self.keys.iter().filter(move |key| {
            kid.is_none_or(|kid| key.kid.as_deref().is_none_or(|own| own == kid))
                && key.kind.fits(alg)
                && key.alg.is_none_or(|own| own == alg)
        })
    }

    /// How many keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// One JWK as a verification key, or `None` if we must not or cannot verify with it.
fn verification_key(value: &Value) -> Option<VerificationKey> {
    let jwk = Jwk::deserialize(value).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        // `alg` names an algorithm we do not verify with (HS*, RSA-OAEP, unknown): skip.
        Some(named) => Some(signature_algorithm(named)?),
    };
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => KeyKind::EcP256,
            EllipticCurve::P384 => KeyKind::EcP384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            KeyKind::Ed25519
        }
        // `oct` (shared secrets) and anything else.
        _ => return None,
    };
    if alg.is_some_and(|alg| !kind.fits(alg)) {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(VerificationKey {
        kid: jwk.common.key_id,
        alg,
        kind,
        key,
    })
}

/// The asymmetric signature algorithm `alg` names, if it is one we verify.
fn signature_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
