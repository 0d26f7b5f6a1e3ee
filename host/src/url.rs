//! Percent-encoding for URLs this crate builds: the CLI's requests and the console's
//! links.

/// `text` made safe for a URL path segment or query value (run ids, step paths like
/// `lines[3].check`, business keys): every byte but unreserved ones and `@` is encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(segment("lines[2].post"), "lines%5B2%5D.post");
        assert_eq!(
            segment("/runs?x=a b&y=ü"),
            "%2Fruns%3Fx%3Da%20b%26y%3D%C3%BC"
        );
        assert_eq!(segment("user:ana@corp"), "user%3Aana@corp");
    }
}
