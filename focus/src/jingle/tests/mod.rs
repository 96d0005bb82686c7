//! Jingle round trips and fixtures shaped after the protocol reference's
//! §3.4 (session-initiate) and §3.5 (session-accept) examples.

use signaling::xml::{Element, Limits, StreamEvent, StreamParser};

mod answer;
mod offer;

/// Parses one stanza of test XML the way the server receives it.
fn parse_xml(xml: &str) -> Element {
    let mut p = StreamParser::framed(Limits::default());
    let mut events = Vec::new();
    p.feed(xml.as_bytes(), &mut events)
        .expect("fixture is well-formed");
    match events.pop() {
        Some(StreamEvent::Stanza(el)) => el,
        other => panic!("fixture is not one stanza: {other:?}"),
    }
}

/// A SHA-256 fingerprint: 32 colon-separated bytes.
const FINGERPRINT: &str = "4E:AA:12:9C:3D:07:58:B1:C2:0F:6A:93:DD:41:E8:7B:25:90:AB:CD:EF:01:23:45:67:89:9A:BC:DE:F0:11:07";
