//! Untrusted bytes into the XMPP stream parser, cut into chunks where the
//! input says, as a network would cut them. The parser must never panic, and
//! every stanza it yields must survive serialising and parsing again unchanged.
//!
//! Run: `cd signaling/fuzz && cargo fuzz run stream_parser`
#![no_main]

use libfuzzer_sys::fuzz_target;
use signaling::xml::{Limits, StreamEvent, StreamParser};

const HEAD: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else { return };
    let limits = Limits { max_stanza_bytes: 4096, max_depth: 8 };
    let mut parser = StreamParser::new(limits);
    let mut events = Vec::new();
    let chunk = usize::from(cut % 32) + 1;
    let mut ok = parser.feed(HEAD, &mut events).is_ok();
    for piece in body.chunks(chunk) {
        if !ok {
            break;
        }
        ok = parser.feed(piece, &mut events).is_ok();
    }
    for ev in events {
        let StreamEvent::Stanza(stanza) = ev else { continue };
        let mut text = String::new();
        stanza.write(&mut text, Some("jabber:client"));
        let mut again = StreamParser::framed(Limits { max_stanza_bytes: usize::MAX, max_depth: usize::MAX });
        let mut out = Vec::new();
        again.feed(text.as_bytes(), &mut out).expect("our own serialisation parses");
        assert_eq!(out, vec![StreamEvent::Stanza(stanza)], "round trip changed the stanza");
    }
});
