//! XML for XMPP: an owned element type and a bounded incremental stream parser.
//! Parses and writes; decides nothing.

mod element;
mod parser;

pub use element::{Attr, Element, Node, XML_NS, escape, escape_into};
pub use parser::{Limits, ParseError, StreamEvent, StreamParser};
