//! The OIDC cookies: sealing, splitting, reading and clearing them.
//!
//! Two cookies carry state between requests, both sealed with AES-256-GCM under the policy's
//! `cookie_key` (a random 96-bit nonce per cookie; value = base64url(nonce ‖ ciphertext ‖ tag)):
//! - the **flow** cookie `<prefix>-flow-<8 chars of state>` lives for one login (Max-Age 600):
//!   state, nonce, PKCE verifier, the page first asked for and the redirect URI used. Its name
//!   carries a prefix of `state`, so logins started in several tabs at once do not overwrite one
//!   another: the callback finds its own cookie by the `state` the provider sends back;
//! - the **session** cookie `<prefix>-session` holds the tokens and their expiry. Browsers cap a
//!   cookie at 4096 bytes, so a larger sealed value is split into `<prefix>-session-0` ..
//!   `<prefix>-session-4` and joined again when read.
//!
//! The associated data of the seal names the cookie's kind and prefix, so a flow cookie cannot be
//! replayed as a session (or one policy's cookie under another prefix). Anything that does not
//! open (tampered, old key, truncated, wrong kind) is simply no cookie: the caller starts a login.
//! This module does not decide what a session means (expiry, refresh): `flow` does.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{COOKIE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest piece of a sealed session in one cookie: with the name and attributes a
/// `Set-Cookie` stays under the 4096 bytes browsers keep.
pub(crate) const CHUNK_BYTES: usize = 3800;
/// Most pieces a session may be split into (`-session-0` .. `-session-4`).
pub(crate) const MAX_CHUNKS: usize = 5;
/// Lifetime of a flow cookie (and of the login it belongs to), in seconds.
pub(crate) const FLOW_MAX_AGE: u64 = 600;
/// Largest cookie header value we read sessions from; more is no session.
const MAX_SEALED_BYTES: usize = CHUNK_BYTES * MAX_CHUNKS;

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Session {
    /// The access token.
    #[serde(rename = "a")]
    pub(crate) access_token: String,
    /// The refresh token, when the provider issued one.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// The ID token (logout's `id_token_hint`), dropped when the session would not fit.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    /// The ID token's claims, as validated when the session was made.
    #[serde(rename = "c")]
    pub(crate) claims: serde_json::Map<String, serde_json::Value>,
    /// When the session ends (Unix seconds): the access token's expiry, or the default lifetime.
    #[serde(rename = "e")]
    pub(crate) expires_at: u64,
}

/// What the flow cookie holds: one login in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Flow {
    /// `state` sent to the provider.
    #[serde(rename = "s")]
    pub(crate) state: String,
    /// `nonce` sent to the provider; the ID token must carry it.
    #[serde(rename = "n")]
    pub(crate) nonce: String,
    /// The PKCE `code_verifier`.
    #[serde(rename = "v")]
    pub(crate) verifier: String,
    /// Path and query of the page first asked for (never an absolute URL).
    #[serde(rename = "u")]
    pub(crate) original: String,
    /// The `redirect_uri` sent to the provider, sent again with the code.
    #[serde(rename = "r")]
    pub(crate) redirect_uri: String,
    /// When the login started (Unix seconds).
    #[serde(rename = "t")]
    pub(crate) started_at: u64,
}

/// The cookies of one policy: names, attributes and the sealing key.
pub(crate) struct CookieJar<'a> {
    prefix: &'a str,
    domain: Option<&'a str>,
    secure: bool,
    key: &'a [u8; 32],
}

impl<'a> CookieJar<'a> {
    /// The cookies named by `prefix`, sealed with `key`; `secure` adds the `Secure` attribute.
    pub(crate) fn new(
        prefix: &'a str,
        domain: Option<&'a str>,
        secure: bool,
        key: &'a [u8; 32],
    ) -> CookieJar<'a> {
        CookieJar {
            prefix,
            domain,
            secure,
            key,
        }
    }

    /// Name of the flow cookie of the login whose state is `state`.
    pub(crate) fn flow_name(&self, state: &str) -> String {
        let short: String = state.chars().take(8).collect();
        format!("{}-flow-{short}", self.prefix)
    }

    /// `Set-Cookie` for a new flow.
    pub(crate) fn seal_flow(&self, flow: &Flow) -> Option<HeaderValue> {
        let sealed = self.seal("flow", flow)?;
        self.set_cookie(&self.flow_name(&flow.state), &sealed, Some(FLOW_MAX_AGE))
    }

    /// The flow whose `state` prefix names a cookie in `headers`, if it opens.
    pub(crate) fn open_flow(&self, headers: &HeaderMap, state: &str) -> Option<Flow> {
        let name = self.flow_name(state);
        let value = cookie_values(headers).find(|(found, _)| *found == name)?.1;
        self.open("flow", value)
    }

    /// `Set-Cookie` values for `session`: one cookie, or up to [`MAX_CHUNKS`] pieces. Pieces
    /// the request carried that the new session does not use are cleared. `None` when it does
    /// not fit even in [`MAX_CHUNKS`] cookies.
    pub(crate) fn seal_session(
        &self,
        session: &Session,
        request: &HeaderMap,
    ) -> Option<Vec<HeaderValue>> {
        let sealed = self.seal("session", session)?;
        let pieces: Vec<&str> = if sealed.len() <= CHUNK_BYTES {
            vec![sealed.as_str()]
        } else {
            chunks(&sealed)
        };
        if pieces.len() > MAX_CHUNKS {
            return None;
        }
        let names: Vec<String> = if pieces.len() == 1 {
            vec![self.session_name()]
        } else {
            (0..pieces.len()).map(|i| self.chunk_name(i)).collect()
        };
        let mut cookies = Vec::with_capacity(names.len() + 1);
        for (name, piece) in names.iter().zip(pieces) {
            cookies.push(self.set_cookie(name, piece, None)?);
        }
        for (present, _) in cookie_values(request) {
            if self.is_session_name(present) && !names.iter().any(|name| name == present) {
                cookies.push(self.set_cookie(present, "", Some(0))?);
            }
        }
        Some(cookies)
    }

    /// The session in `headers`, if its cookie (or all its pieces) is there and opens.
    pub(crate) fn open_session(&self, headers: &HeaderMap) -> Option<Session> {
        let whole = self.session_name();
        if let Some((_, value)) = cookie_values(headers).find(|(name, _)| *name == whole) {
            return self.open("session", value);
        }
        let mut sealed = String::new();
        for index in 0..MAX_CHUNKS {
            let name = self.chunk_name(index);
            match cookie_values(headers).find(|(found, _)| *found == name) {
                Some((_, piece)) if sealed.len() + piece.len() <= MAX_SEALED_BYTES => {
                    sealed.push_str(piece);
                }
                Some(_) => return None,
                None => break,
            }
        }
        if sealed.is_empty() {
            return None;
        }
        self.open("session", &sealed)
    }

    /// `Set-Cookie` values clearing every session cookie (whole and pieces) and every flow
    /// cookie the request carried.
    pub(crate) fn clear_all(&self, request: &HeaderMap) -> Vec<HeaderValue> {
        let mut names: Vec<String> = vec![self.session_name()];
        names.extend((0..MAX_CHUNKS).map(|i| self.chunk_name(i)));
        for (name, _) in cookie_values(request) {
            if self.is_flow_name(name) && !names.iter().any(|known| known == name) {
                names.push(name.to_owned());
            }
        }
        names
            .iter()
            .filter_map(|name| self.set_cookie(name, "", Some(0)))
            .collect()
    }

    /// `Set-Cookie` clearing the flow cookie of `state`.
    pub(crate) fn clear_flow(&self, state: &str) -> Option<HeaderValue> {
        self.set_cookie(&self.flow_name(state), "", Some(0))
    }

    /// Removes this policy's session and flow cookies from the request's `Cookie` headers (the
    /// upstream never sees tokens), keeping every other cookie in order. A `Cookie` header
    /// left empty is removed.
    pub(crate) fn strip(&self, headers: &mut HeaderMap) {
        if !cookie_values(headers).any(|(name, _)| self.is_ours(name)) {
            return;
        }
        let kept: Vec<String> = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let name = pair.split_once('=').map_or(*pair, |(name, _)| name).trim();
                !self.is_ours(name)
            })
            .map(str::to_owned)
            .collect();
        headers.remove(COOKIE);
        if kept.is_empty() {
            return;
        }
        if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(COOKIE, value);
        }
    }

    fn session_name(&self) -> String {
        format!("{}-session", self.prefix)
    }

    fn chunk_name(&self, index: usize) -> String {
        format!("{}-session-{index}", self.prefix)
    }

    fn is_session_name(&self, name: &str) -> bool {
        let whole = self.session_name();
        name == whole
            || name
                .strip_prefix(&whole)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
    }

    fn is_flow_name(&self, name: &str) -> bool {
        name.strip_prefix(self.prefix)
            .is_some_and(|rest| rest.starts_with("-flow-"))
    }

    fn is_ours(&self, name: &str) -> bool {
        self.is_session_name(name) || self.is_flow_name(name)
    }

    /// `name=value; Path=/; HttpOnly; SameSite=Lax[; Secure][; Domain=..][; Max-Age=..]`.
    fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> Option<HeaderValue> {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(domain) = self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        if let Some(max_age) = max_age {
            cookie.push_str(&format!("; Max-Age={max_age}"));
        }
        HeaderValue::from_str(&cookie).ok()
    }

    fn aad(&self, kind: &str) -> String {
        format!("portcullis-oidc-v1 {kind} {}", self.prefix)
    }

    /// Seals `value` as JSON; `None` only if the platform's random source fails.
    fn seal<T: Serialize>(&self, kind: &str, value: &T) -> Option<String> {
        let mut data = serde_json::to_vec(value).ok()?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.key).ok()?);
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(self.aad(kind).as_bytes()),
            &mut data,
        )
        .ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens a sealed value; `None` for anything that does not decrypt and parse.
    fn open<T: DeserializeOwned>(&self, kind: &str, value: &str) -> Option<T> {
        if value.len() > MAX_SEALED_BYTES {
            return None;
        }
        let mut sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(sealed.get(..NONCE_LEN)?).ok()?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.key).ok()?);
        let plain = key
            .open_within(
                nonce,
                Aad::from(self.aad(kind).as_bytes()),
                &mut sealed,
                NONCE_LEN..,
            )
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// Splits `sealed` (base64url, so ASCII) into [`CHUNK_BYTES`] pieces.
fn chunks(sealed: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = sealed;
    while !rest.is_empty() {
        let at = rest.len().min(CHUNK_BYTES);
        // base64url is ASCII: every index is a char boundary; `split_at_checked` keeps it safe.
        let Some((piece, tail)) = rest.split_at_checked(at) else {
            break;
        };
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Every `name=value` pair of the request's `Cookie` headers (RFC 6265 §5.4), trimmed.
/// Headers that are not visible ASCII are skipped.
pub(crate) fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim().trim_matches('"')))
        })
}

#[cfg(test)]
mod tests;
