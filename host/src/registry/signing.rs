//! Publisher keys and detached plugin signatures (ed25519).
//!
//! A signature covers `baton-plugin-signature-v1\n` followed by the component's digest
//! (`sha256:<hex>`), so it can never be replayed as a signature over anything else.
//!
//! Key files are one line of text: `ed25519:<base64>` for a public key, and
//! `baton-ed25519-secret:<base64>` for a secret key.

use crate::config::TrustedKey;
use crate::store::Signer;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "baton-ed25519-secret:";
const CONTEXT: &[u8] = b"baton-plugin-signature-v1\n";

/// What went wrong with a signature or key; each message says how to fix it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error(
        "the plugin is unsigned; sign it with `baton plugin sign --key KEY FILE.wasm` and pass \
         the signature with --sig, or set `allow_unsigned = true` in the server config"
    )]
    Unsigned,
    #[error("the signature file is not valid: {0}")]
    Malformed(String),
    #[error(
        "the signature is for {signed} but the component is {actual}: the file changed after \
         signing (rebuild and sign again)"
    )]
    DigestMismatch { signed: String, actual: String },
    #[error(
        "the plugin is signed by key {public_key}, which the server does not trust; add it to \
         `trusted_keys` in the server config if you trust its publisher"
    )]
    UntrustedKey { public_key: String },
    #[error(
        "the signature does not verify with trusted key {name}: the component or the signature was altered"
    )]
    BadSignature { name: String },
    #[error("invalid {what} key: {reason}")]
    BadKey { what: &'static str, reason: String },
}

/// A detached signature, stored next to the component as `FILE.wasm.sig` (JSON).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub algorithm: String,
    /// `ed25519:<base64>` of the signing key's public half.
    pub public_key: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// base64 of the 64-byte signature.
    pub signature: String,
}

/// `sha256:<hex>` of `bytes`: the content address of a plugin.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A new random signing key.
pub fn generate_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random number generator is available");
    SigningKey::from_bytes(&seed)
}

/// `ed25519:<base64>`.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", BASE64.encode(key.as_bytes()))
}

/// `baton-ed25519-secret:<base64>`.
pub fn encode_secret_key(key: &SigningKey) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(key.as_bytes()))
}

fn decode_key_bytes(
    text: &str,
    prefix: &str,
    what: &'static str,
) -> Result<[u8; 32], SignatureError> {
    let bad = |reason: String| SignatureError::BadKey { what, reason };
    let body = text
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| bad(format!("expected text starting with `{prefix}`")))?;
    let bytes = BASE64
        .decode(body)
        .map_err(|e| bad(format!("not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(format!("expected 32 bytes, found {}", b.len())))
}

/// Parses `ed25519:<base64>`.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, SignatureError> {
    let bytes = decode_key_bytes(text, PUBLIC_PREFIX, "public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| SignatureError::BadKey {
        what: "public",
        reason: e.to_string(),
    })
}

/// Parses `baton-ed25519-secret:<base64>`.
pub fn parse_secret_key(text: &str) -> Result<SigningKey, SignatureError> {
    decode_key_bytes(text, SECRET_PREFIX, "secret").map(|b| SigningKey::from_bytes(&b))
}

fn message(digest: &str) -> Vec<u8> {
    [CONTEXT, digest.as_bytes()].concat()
}

/// Signs a component.
pub fn sign(key: &SigningKey, component: &[u8]) -> SignatureFile {
    let digest = digest(component);
    let signature = key.sign(&message(&digest));
    SignatureFile {
        algorithm: "ed25519".into(),
        public_key: encode_public_key(&key.verifying_key()),
        digest,
        signature: BASE64.encode(signature.to_bytes()),
    }
}

/// Decides whether a component may be installed: a valid signature by a trusted key,
/// or no signature on a server that allows unsigned plugins.
pub fn verify(
    component_digest: &str,
    signature: Option<&[u8]>,
    trusted: &[TrustedKey],
    allow_unsigned: bool,
) -> Result<Signer, SignatureError> {
    let Some(signature) = signature else {
        return if allow_unsigned {
            Ok(Signer::Unsigned)
        } else {
            Err(SignatureError::Unsigned)
        };
    };
    let file: SignatureFile =
        serde_json::from_slice(signature).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    if file.algorithm != "ed25519" {
        return Err(SignatureError::Malformed(format!(
            "algorithm `{}` is not supported (only ed25519)",
            file.algorithm
        )));
    }
    if file.digest != component_digest {
        return Err(SignatureError::DigestMismatch {
            signed: file.digest,
            actual: component_digest.to_owned(),
        });
    }
    let signer_key = parse_public_key(&file.public_key)?;
    let trusted_key = trusted
        .iter()
        .find(|k| parse_public_key(&k.public_key).is_ok_and(|key| key == signer_key))
        .ok_or_else(|| SignatureError::UntrustedKey {
            public_key: file.public_key.clone(),
        })?;
    let bytes: [u8; 64] = BASE64
        .decode(&file.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignatureError::Malformed("signature is not 64 bytes of base64".into()))?;
    signer_key
        .verify(&message(component_digest), &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::BadSignature {
            name: trusted_key.name.clone(),
        })?;
    Ok(Signer::Key {
        name: trusted_key.name.clone(),
        public_key: file.public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(key: &SigningKey) -> Vec<TrustedKey> {
        vec![TrustedKey {
            name: "acme".into(),
            public_key: encode_public_key(&key.verifying_key()),
        }]
    }

    #[test]
    fn keys_round_trip_through_text() {
        let key = generate_key();
        let parsed = parse_secret_key(&encode_secret_key(&key)).unwrap();
        assert_eq!(parsed.to_bytes(), key.to_bytes());
        let public = parse_public_key(&encode_public_key(&key.verifying_key())).unwrap();
        assert_eq!(public, key.verifying_key());
        assert!(matches!(
            parse_public_key("rsa:AAAA"),
            Err(SignatureError::BadKey { .. })
        ));
    }

    #[test]
    fn accepts_a_trusted_signature_and_names_the_signer() {
        let key = generate_key();
        let wasm = b"component bytes";
        let sig = serde_json::to_vec(&sign(&key, wasm)).unwrap();
        let signer = verify(&digest(wasm), Some(&sig), &trusted(&key), false).unwrap();
        assert!(matches!(signer, Signer::Key { name, .. } if name == "acme"));
    }

    #[test]
    fn refuses_tampering_untrusted_keys_and_missing_signatures() {
        let key = generate_key();
        let wasm = b"component bytes";
        let sig = sign(&key, wasm);
        let bytes = serde_json::to_vec(&sig).unwrap();

        let changed = digest(b"component bytes!");
        assert!(matches!(
            verify(&changed, Some(&bytes), &trusted(&key), false),
            Err(SignatureError::DigestMismatch { .. })
        ));

        let other = generate_key();
        assert!(matches!(
            verify(&digest(wasm), Some(&bytes), &trusted(&other), false),
            Err(SignatureError::UntrustedKey { .. })
        ));

        // Same digest claimed, signature over something else.
        let forged = SignatureFile {
            signature: sign(&key, b"other bytes").signature,
            ..sig
        };
        let forged = serde_json::to_vec(&forged).unwrap();
        assert!(matches!(
            verify(&digest(wasm), Some(&forged), &trusted(&key), false),
            Err(SignatureError::BadSignature { .. })
        ));

        assert_eq!(
            verify(&digest(wasm), None, &[], false),
            Err(SignatureError::Unsigned)
        );
        assert_eq!(verify(&digest(wasm), None, &[], true), Ok(Signer::Unsigned));
        assert!(matches!(
            verify(&digest(wasm), Some(b"not json"), &[], false),
            Err(SignatureError::Malformed(_))
        ));
    }
}
