//! Helpers the unit tests of several modules share.

/// Bytes from hex digits, whitespace between them ignored (as RFCs print test vectors).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
