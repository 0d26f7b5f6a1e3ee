//! Random secrets: API tokens, console session ids and CSRF values, webhook secrets.

use base64::Engine as _;

/// `prefix` and 32 random bytes from the OS, base64url without padding.
pub fn random(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}
