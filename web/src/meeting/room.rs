//! Which path segments are room names.
//!
//! A room name becomes the node of a MUC JID (`<room>@<muc>`) and the
//! argument of `initJitsiConference`, so it must be a legal JID node and
//! must not look like a path trick (`..`, a leading dot) or a file request.

/// Longest room name accepted, in bytes (Prosody's default node limit is 1023;
/// consultation IDs are far shorter, and long names only bloat every stanza).
const MAX_LEN: usize = 200;

/// Single-segment paths that browsers ask for on their own; never rooms.
const NOT_ROOMS: [&str; 3] = ["favicon.ico", "robots.txt", "apple-touch-icon.png"];

/// Whether `name` (already percent-decoded) may be used as a room name.
///
/// Letters and digits of any script, `-`, `_` and `.` are allowed; `..`, a
/// leading dot, and anything JID-hostile (`@`, `/`, `:`, quotes, spaces) are not.
///
/// ```
/// assert!(web::meeting::is_room_name("consultation-42"));
/// assert!(web::meeting::is_room_name("Café.Team_7"));
/// assert!(!web::meeting::is_room_name("a@b"));
/// assert!(!web::meeting::is_room_name("a..b"));
/// ```
pub fn is_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && !name.starts_with('.')
        && !name.contains("..")
        && !NOT_ROOMS.contains(&name)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The room's MUC node: Jitsi lower-cases room names before joining.
pub fn room_node(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a",
            "consultation-42",
            "Team_Meeting",
            "v1.2",
            "zürich",
            "会议",
        ] {
            assert!(is_room_name(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_jid_hostile_and_path_tricks() {
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            ".hidden",
            "a@b",
            "a/b",
            "a:b",
            "a b",
            "a\"b",
            "a'b",
            "a<b",
            "a&b",
            "a%b",
            "a\\b",
            "a\u{0}b",
            "favicon.ico",
        ] {
            assert!(!is_room_name(bad), "{bad:?}");
        }
        assert!(!is_room_name(&"x".repeat(MAX_LEN + 1)));
    }

    #[test]
    fn node_is_lower_case() {
        assert_eq!(room_node("Consultation-42"), "consultation-42");
    }
}
