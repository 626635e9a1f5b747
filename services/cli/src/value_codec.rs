//! How `goterra-cli` carries bytes in the store's string values.
//!
//! Text (valid UTF-8 that the platform's text rule accepts: no NUL nor control characters but
//! newline, carriage return and tab) is sent as it is. Anything else (binary files, NUL bytes,
//! terminal escapes in logs) is sent as `base64:` followed by its standard base64 encoding; so is text that
//! itself starts with `base64:`, so that reading it back is never ambiguous. `get` decodes
//! such values back to the exact bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub const BASE64_MARKER: &str = "base64:";

/// The platform's text rule (`goterra_core::edge::is_allowed_char`; this small client does not
/// link the server crates): no control characters but newline, carriage return and tab.
fn accepted_by_the_store(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\r' | '\t')
}

/// The string to store for `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().all(accepted_by_the_store) && !text.starts_with(BASE64_MARKER) => text.to_string(),
        _ => format!("{BASE64_MARKER}{}", STANDARD.encode(bytes)),
    }
}

/// What a stored value means: the bytes of an encoded value, or plain text.
pub enum Decoded {
    Bytes(Vec<u8>),
    Text(String),
}

pub fn decode(value: String) -> Decoded {
    if let Some(encoded) = value.strip_prefix(BASE64_MARKER)
        && let Ok(bytes) = STANDARD.decode(encoded)
    {
        return Decoded::Bytes(bytes);
    }
    Decoded::Text(value)
}

/// The last `limit` bytes of `bytes`, starting on a character boundary when the text is
/// UTF-8, so that trimming a log does not turn it into binary.
pub fn tail(bytes: &[u8], limit: usize) -> &[u8] {
    if bytes.len() <= limit {
        return bytes;
    }
    let mut tail = &bytes[bytes.len() - limit..];
    for _ in 0..3 {
        match tail.first() {
            Some(byte) if byte & 0b1100_0000 == 0b1000_0000 => tail = &tail[1..],
            _ => break,
        }
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> Vec<u8> {
        match decode(encode(bytes)) {
            Decoded::Bytes(bytes) => bytes,
            Decoded::Text(text) => text.into_bytes(),
        }
    }

    #[test]
    fn every_byte_sequence_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for sample in [
            &b"plain text\n"[..],
            b"",
            b"\0\0\0",
            &all,
            b"base64:aGk=",
            "héllo".as_bytes(),
            b"\xff\xfe",
            b"\x1b[31mred\x1b[0m\r\n",
        ] {
            assert_eq!(round_trip(sample), sample);
        }
        assert_eq!(encode(b"plain"), "plain");
        assert!(encode(b"\xff").starts_with(BASE64_MARKER));
        // The store refuses control characters: terminal escapes travel encoded.
        assert!(encode(b"\x1b[0m").starts_with(BASE64_MARKER));
        assert_eq!(encode(b"two\nlines\t."), "two\nlines\t.");
    }

    #[test]
    fn tails_start_on_a_character() {
        let text = "aé€b".as_bytes();
        let tail_text = |limit| std::str::from_utf8(tail(text, limit)).unwrap();
        assert_eq!(tail(text, 100), text);
        assert_eq!(tail_text(1), "b");
        assert_eq!(tail_text(3), "b");
        assert_eq!(tail_text(4), "€b");
        assert_eq!(tail_text(5), "€b");
        assert_eq!(tail_text(6), "é€b");
        assert_eq!(tail(b"\xff\x80\x80\x80\x80z", 5), b"\x80z");
    }
}
