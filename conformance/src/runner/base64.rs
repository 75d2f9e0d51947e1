//! Standard base64 (with padding), for Secret `data`: the `base64` crate.

use base64::Engine as _;

pub fn encode(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// `None` when `input` is not valid standard base64. Line breaks and spaces
/// (folded YAML values) are ignored.
pub fn decode(input: &str) -> Option<Vec<u8>> {
    let compact: String = input.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_padding() {
        for s in ["", "a", "ab", "abc", "abcd", "hello world!"] {
            let e = super::encode(s.as_bytes());
            assert_eq!(super::decode(&e).as_deref(), Some(s.as_bytes()));
        }
        assert_eq!(super::encode(b"ab"), "YWI=");
        assert_eq!(super::decode("Zm9v\nYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(super::encode(b"fo"), "Zm8=");
        assert_eq!(super::decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(super::decode("not base64!"), None);
    }
}
