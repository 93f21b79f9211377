//! Seals the API server's `continue` tokens before a caller sees them, and opens them when the
//! caller hands one back.
//!
//! A `continue` token is the API server's bookmark: base64 of JSON naming the key of the last
//! item returned, e.g. `/pods/kube-system/etcd-0`. In a list across namespaces that item may sit
//! in a namespace the policy hides from the caller, so the raw token would tell them its name.
//! kubegate hands out the token sealed (ChaCha20-Poly1305 under a key only this process holds,
//! bound to the caller and the list it was made for, padded so its length says little of the
//! hidden key's), so it reveals nothing, and nobody else, nor another list, can use it.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks (and versions) a sealed token.
const PREFIX: &str = "kg1.";

/// The key tokens are sealed with, made at start; `None` if the system's random source failed,
/// and then no token is handed out (a cut list says to narrow the query instead).
static KEY: LazyLock<Option<LessSafeKey>> = LazyLock::new(|| {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).ok()?;
    Some(LessSafeKey::new(key))
});

/// Why a token handed back could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`continue` is not a token kubegate gave you in this session of the server (it may be from \
     another caller, or kubegate restarted since): list again without `continue`"
)]
pub struct UnknownToken;

/// Sealed tokens are padded to a multiple of this many bytes.
const PAD_TO: usize = 64;

/// Seals the API server's token for `binding` (the caller and the list it was made for);
/// `None` if it cannot be sealed.
pub fn seal(token: &str, binding: &str) -> Option<String> {
    let key = KEY.as_ref()?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let length = u16::try_from(token.len()).ok()?;
    let mut sealed = length.to_be_bytes().to_vec();
    sealed.extend_from_slice(token.as_bytes());
    sealed.resize(sealed.len().div_ceil(PAD_TO) * PAD_TO, 0);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(binding.as_bytes()),
        &mut sealed,
    )
    .ok()?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    Some(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Opens a token sealed for `binding` and returns the API server's own.
pub fn open(sealed: &str, binding: &str) -> Result<String, UnknownToken> {
    let key = KEY.as_ref().ok_or(UnknownToken)?;
    let encoded = sealed.strip_prefix(PREFIX).ok_or(UnknownToken)?;
    let mut bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| UnknownToken)?;
    if bytes.len() < NONCE_LEN {
        return Err(UnknownToken);
    }
    let mut ciphertext = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| UnknownToken)?;
    let plain = key
        .open_in_place(nonce, Aad::from(binding.as_bytes()), &mut ciphertext)
        .map_err(|_| UnknownToken)?;
    let (length, rest) = plain.split_at_checked(2).ok_or(UnknownToken)?;
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    let token = rest.get(..length).ok_or(UnknownToken)?;
    String::from_utf8(token.to_vec()).map_err(|_| UnknownToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sealed_token_opens_for_its_caller_only() {
        let raw = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJzdGFydCI6Imt1YmUtc3lzdGVtL2V0Y2QtMFx1MDAwMCJ9";
        let sealed = seal(raw, "alice").expect("sealing works with the system's random source");
        assert!(sealed.starts_with(PREFIX));
        assert!(
            !sealed.contains(raw),
            "the sealed token must not carry the raw one"
        );
        assert_eq!(open(&sealed, "alice").as_deref(), Ok(raw));
        assert_eq!(open(&sealed, "bob"), Err(UnknownToken));
        // Two seals of one token differ (fresh nonces), so tokens cannot be compared either.
        assert_ne!(seal(raw, "alice"), Some(sealed));
        // Lengths come in steps, so a token's length says little of the key it hides.
        let short = seal("a", "alice").unwrap_or_default();
        let longer = seal(&"a".repeat(40), "alice").unwrap_or_default();
        assert_eq!(short.len(), longer.len());
    }

    #[test]
    fn the_raw_token_is_not_accepted() {
        assert_eq!(
            open("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "alice"),
            Err(UnknownToken)
        );
    }

    proptest! {
        /// Whatever a caller sends as `continue`, opening it never panics, and only a token
        /// kubegate sealed for that caller opens.
        #[test]
        fn hostile_tokens_do_not_open(token in ".{0,200}", tail in "[A-Za-z0-9_-]{0,120}") {
            prop_assert!(open(&token, "alice").is_err());
            prop_assert_eq!(open(&format!("{PREFIX}{tail}"), "alice"), Err(UnknownToken));
        }

        #[test]
        fn any_token_round_trips(raw in "[ -~]{0,300}") {
            let sealed = seal(&raw, "carol").expect("sealing works");
            prop_assert_eq!(open(&sealed, "carol"), Ok(raw));
        }
    }
}
