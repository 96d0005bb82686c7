//! Incremental, bounded parsing of an XML stream into stanzas.
//!
//! One parser serves all three transports: TCP feeds raw bytes of the
//! `<stream:stream>` document, WebSocket feeds one frame at a time under a
//! synthetic stream root, BOSH feeds a whole `<body/>` whose children are the
//! stanzas. Limits are checked while bytes arrive, so a 2 MB stanza is refused
//! after 256 KiB rather than buffered.

use rxml::error::EndOrError;
use rxml::{Event, Parse, Parser, WithOptions};

use super::element::{Attr, Element};

/// What a peer may send at most.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of one top-level stanza, as received.
    pub max_stanza_bytes: usize,
    /// Element nesting inside a stanza (the stanza itself is depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Prosody's default stanza limit is 256 KiB.
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
        }
    }
}

/// What the stream yields.
#[derive(Debug, PartialEq)]
pub enum StreamEvent {
    /// The root element opened (`<stream:stream>` or `<body>`); no children.
    Open(Element),
    /// A complete top-level child.
    Stanza(Element),
    /// The root element closed.
    Close,
}

/// Why the stream cannot go on; each maps to one stream error condition.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("not well-formed XML: {0}")]
    NotWellFormed(String),
    #[error("stanza larger than {0} bytes")]
    TooLarge(usize),
    #[error("elements nested deeper than {0}")]
    TooDeep(usize),
    #[error("data after the end of the stream")]
    AfterClose,
}

/// Push parser: feed bytes, collect [`StreamEvent`]s.
///
/// ```
/// use signaling::xml::{StreamParser, StreamEvent, Limits};
/// let mut p = StreamParser::new(Limits::default());
/// let mut ev = Vec::new();
/// p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><iq", &mut ev).unwrap();
/// p.feed(b" type='get'/>", &mut ev).unwrap();
/// assert!(matches!(&ev[1], StreamEvent::Stanza(iq) if iq.is("iq", "jabber:client")));
/// ```
pub struct StreamParser {
    parser: Parser,
    limits: Limits,
    root_open: bool,
    started: bool,
    closed: bool,
    stack: Vec<Element>,
    stanza_bytes: usize,
}

impl StreamParser {
    pub fn new(limits: Limits) -> Self {
        let options = rxml::Options {
            max_token_length: limits.max_stanza_bytes.min(64 * 1024),
            ..Default::default()
        };
        StreamParser {
            parser: Parser::with_options(options),
            limits,
            root_open: false,
            started: false,
            closed: false,
            stack: Vec::new(),
            stanza_bytes: 0,
        }
    }

    /// A parser already inside a client stream root, for transports that frame
    /// stanzas themselves (one WebSocket frame, one element).
    pub fn framed(limits: Limits) -> Self {
        let mut p = StreamParser::new(limits);
        let mut ev = Vec::new();
        p.feed(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            &mut ev,
        )
        .expect("the synthetic root is well-formed");
        p
    }

    /// Bytes of the stanza being received so far (0 between stanzas).
    pub fn pending_bytes(&self) -> usize {
        if self.stack.is_empty() {
            0
        } else {
            self.stanza_bytes
        }
    }

    /// Parses `data`, appending events to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ParseError> {
        if !self.root_open {
            // rxml holds text before the root until a '<' ends it; an HTTP request or
            // plain text would wait forever. Refuse it at its first byte instead.
            if let Some(&b) = data.iter().find(|b| !b.is_ascii_whitespace()) {
                if b != b'<' && !self.started {
                    return Err(ParseError::NotWellFormed(
                        "text before the stream header".into(),
                    ));
                }
                self.started = true;
            }
        }
        loop {
            if self.closed && !data.iter().all(u8::is_ascii_whitespace) {
                return Err(ParseError::AfterClose);
            }
            if self.closed {
                return Ok(());
            }
            match self.parser.parse(&mut data, false) {
                Ok(Some(ev)) => self.event(ev, out)?,
                Ok(None) => return Ok(()),
                Err(EndOrError::NeedMoreData) => return Ok(()),
                Err(EndOrError::Error(e)) => return Err(ParseError::NotWellFormed(e.to_string())),
            }
        }
    }

    fn count(&mut self, n: usize) -> Result<(), ParseError> {
        if !self.stack.is_empty() {
            self.stanza_bytes += n;
            if self.stanza_bytes > self.limits.max_stanza_bytes {
                return Err(ParseError::TooLarge(self.limits.max_stanza_bytes));
            }
        }
        Ok(())
    }

    fn event(&mut self, ev: Event, out: &mut Vec<StreamEvent>) -> Result<(), ParseError> {
        match ev {
            Event::XmlDeclaration(..) => {}
            Event::StartElement(m, (ns, name), attrs) => {
                let mut el = Element::new(name.as_str(), ns.as_str());
                for ((ans, aname), value) in attrs {
                    el.push_attr(Attr {
                        ns: ans.as_str().to_owned(),
                        name: aname.as_str().to_owned(),
                        value,
                    });
                }
                if !self.root_open {
                    self.root_open = true;
                    out.push(StreamEvent::Open(el));
                    return Ok(());
                }
                if self.stack.is_empty() {
                    self.stanza_bytes = 0;
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(ParseError::TooDeep(self.limits.max_depth));
                }
                self.stack.push(el);
                self.count(m.len())?;
            }
            Event::EndElement(m) => {
                self.count(m.len())?;
                match self.stack.pop() {
                    None => {
                        self.closed = true;
                        out.push(StreamEvent::Close);
                    }
                    Some(el) => match self.stack.last_mut() {
                        Some(parent) => parent.push_child(el),
                        None => out.push(StreamEvent::Stanza(el)),
                    },
                }
            }
            Event::Text(m, text) => {
                self.count(m.len())?;
                // Whitespace keep-alives between stanzas carry nothing.
                if let Some(top) = self.stack.last_mut() {
                    top.push_text(text);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

    fn parse(chunks: &[&[u8]], limits: Limits) -> (Vec<StreamEvent>, Result<(), ParseError>) {
        let mut p = StreamParser::new(limits);
        let mut ev = Vec::new();
        for c in chunks {
            if let Err(e) = p.feed(c, &mut ev) {
                return (ev, Err(e));
            }
        }
        (ev, Ok(()))
    }

    #[test]
    fn stanzas_arrive_whole_whatever_the_chunking() {
        let doc = [HEAD, b"<message to='a@b'><body>hi &amp; \xF0\x9F\x98\x80</body></message> <presence/></stream:stream>"].concat();
        for split in 1..doc.len() {
            let (ev, r) = parse(&[&doc[..split], &doc[split..]], Limits::default());
            r.unwrap();
            assert_eq!(ev.len(), 4, "split at {split}");
            let StreamEvent::Stanza(m) = &ev[1] else {
                panic!()
            };
            assert_eq!(m.child("body", "jabber:client").unwrap().text(), "hi & 😀");
            assert_eq!(ev[3], StreamEvent::Close);
        }
    }

    #[test]
    fn oversized_stanza_is_refused_before_it_is_buffered() {
        let big = vec![b'a'; 300 * 1024];
        let (_, r) = parse(&[HEAD, b"<message><body>", &big], Limits::default());
        assert_eq!(r, Err(ParseError::TooLarge(256 * 1024)));
    }

    #[test]
    fn deep_nesting_and_bad_xml_are_errors() {
        let deep = "<a>".repeat(40);
        let (_, r) = parse(&[HEAD, deep.as_bytes()], Limits::default());
        assert_eq!(r, Err(ParseError::TooDeep(32)));
        let (_, r) = parse(&[HEAD, b"<message><body></message>"], Limits::default());
        assert!(matches!(r, Err(ParseError::NotWellFormed(_))));
        let (_, r) = parse(&[HEAD, b"<!DOCTYPE x>"], Limits::default());
        assert!(matches!(r, Err(ParseError::NotWellFormed(_))));
    }

    #[test]
    fn framed_parser_yields_one_element_per_frame() {
        let mut p = StreamParser::framed(Limits::default());
        let mut ev = Vec::new();
        p.feed(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
            &mut ev,
        )
        .unwrap();
        p.feed(
            b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
            &mut ev,
        )
        .unwrap();
        assert_eq!(ev.len(), 2);
        let StreamEvent::Stanza(iq) = &ev[1] else {
            panic!()
        };
        assert_eq!(iq.ns(), "jabber:client");
    }

    #[test]
    fn text_before_the_header_is_refused_at_once() {
        for junk in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"hello",
            b"\x16\x03\x01\x02\x00",
        ] {
            let (ev, r) = parse(&[junk], Limits::default());
            assert!(ev.is_empty());
            assert!(matches!(r, Err(ParseError::NotWellFormed(_))), "{junk:?}");
        }
        // A header split anywhere is fine.
        let (ev, r) = parse(&[&HEAD[..1], &HEAD[1..3], &HEAD[3..]], Limits::default());
        r.unwrap();
        assert_eq!(ev.len(), 1);
    }
}
