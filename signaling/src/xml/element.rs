//! A small owned XML element: what a stanza is inside the server.
//!
//! Our own type rather than minidom's so that relaying a stanza never loses or
//! reorders what a client put in it, serialisation cannot panic, and attribute
//! edits (`from`, `to`, `id`) are plain string operations.

use std::fmt::Write as _;

/// XML namespace of the `xml:` prefix (`xml:lang`).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// A child of an element: another element or character data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An attribute: `ns` is empty for the usual unqualified attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// An XML element with its namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: String,
    attrs: Vec<Attr>,
    children: Vec<Node>,
}

impl Element {
    /// A new empty element `name` in namespace `ns`.
    ///
    /// ```
    /// use signaling::xml::Element;
    /// let iq = Element::new("iq", "jabber:client").with_attr("type", "get");
    /// assert_eq!(iq.to_xml(), "<iq xmlns='jabber:client' type='get'/>");
    /// ```
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Whether this element is `name` in `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of the unqualified attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    /// Sets (or replaces) the unqualified attribute `name`.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_empty() && a.name == name)
        {
            Some(a) => a.value = value,
            None => self.attrs.push(Attr {
                ns: String::new(),
                name: name.into(),
                value,
            }),
        }
    }

    /// Removes the unqualified attribute `name`, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self
            .attrs
            .iter()
            .position(|a| a.ns.is_empty() && a.name == name)?;
        Some(self.attrs.remove(i).value)
    }

    /// Adds a namespaced attribute (as parsed; `xml:lang` among them).
    pub fn push_attr(&mut self, attr: Attr) {
        self.attrs.push(attr);
    }

    /// Builder form of [`Element::set_attr`].
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`Element::push_child`].
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder form of [`Element::push_text`].
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(text);
        self
    }

    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if let Some(Node::Text(last)) = self.children.last_mut() {
            last.push_str(&text);
        } else {
            self.children.push(Node::Text(text));
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.children
    }

    /// Child elements, in order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child `name` in `ns`.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// The first child element, whatever it is (an IQ's payload).
    pub fn first_child(&self) -> Option<&Element> {
        self.children().next()
    }

    /// Removes every child element for which `drop` says true.
    pub fn retain_children(&mut self, mut keep: impl FnMut(&Element) -> bool) {
        self.children.retain(|n| match n {
            Node::Element(e) => keep(e),
            Node::Text(_) => true,
        });
    }

    /// All character data directly inside this element.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Moves this element and every descendant in namespace `from` to `to`
    /// (stanzas keep their content namespace, e.g. `<body>`, when they cross
    /// from a component or BOSH stream into a client stream).
    pub fn rename_ns(&mut self, from: &str, to: &str) {
        if self.ns == from {
            self.ns = to.to_owned();
        }
        for n in &mut self.children {
            if let Node::Element(e) = n {
                e.rename_ns(from, to);
            }
        }
    }

    /// Serialises with `xmlns` declared on this element.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write(&mut out, None);
        out
    }

    /// Serialises into `out`; `parent_ns` is the default namespace in scope
    /// (None: declare it).
    pub fn write(&self, out: &mut String, parent_ns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if parent_ns != Some(self.ns.as_str()) {
            out.push_str(" xmlns='");
            escape_into(out, &self.ns);
            out.push('\'');
        }
        let mut prefix_n = 0;
        for a in &self.attrs {
            out.push(' ');
            if a.ns == XML_NS {
                out.push_str("xml:");
            } else if !a.ns.is_empty() {
                // Namespaced attributes are rare in stanzas; give each its own prefix.
                let _ = write!(out, "xmlns:a{prefix_n}='");
                escape_into(out, &a.ns);
                let _ = write!(out, "' a{prefix_n}:");
                prefix_n += 1;
            }
            out.push_str(&a.name);
            out.push_str("='");
            escape_into(out, &a.value);
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write(out, Some(&self.ns)),
                Node::Text(t) => escape_into(out, t),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Escapes text or an attribute value (single-quoted) for XML.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Escapes `s` into a new string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_inherit_namespace_and_text_is_escaped() {
        let m = Element::new("message", "jabber:client")
            .with_attr("to", "a'b")
            .with_child(Element::new("body", "jabber:client").with_text("<&> 😀"))
            .with_child(Element::new("x", "urn:x"));
        assert_eq!(
            m.to_xml(),
            "<message xmlns='jabber:client' to='a&apos;b'><body>&lt;&amp;&gt; 😀</body><x xmlns='urn:x'/></message>"
        );
    }
}
