//! Jabber IDs: `node@domain/resource`.
//!
//! Node and domain are compared case-insensitively (lower-cased here, as Jitsi
//! room names are); the resource is kept as given.

use std::fmt;

/// A parsed JID.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    node: Option<String>,
    domain: String,
    resource: Option<String>,
}

/// Why a string is not a JID.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("malformed JID")]
pub struct JidError;

const MAX_PART: usize = 1023;

impl Jid {
    /// Parses and normalises a JID.
    ///
    /// ```
    /// use signaling::Jid;
    /// let j = Jid::parse("Room@Conference.localhost/ab12").unwrap();
    /// assert_eq!(j.to_string(), "room@conference.localhost/ab12");
    /// assert_eq!(j.bare().to_string(), "room@conference.localhost");
    /// ```
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let (rest, resource) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (node, domain) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let bad_node = |n: &str| {
            n.is_empty()
                || n.len() > MAX_PART
                || n.chars()
                    .any(|c| "\"&'/:<>@".contains(c) || c.is_whitespace() || c.is_control())
        };
        if node.is_some_and(bad_node) {
            return Err(JidError);
        }
        if domain.is_empty()
            || domain.len() > MAX_PART
            || domain
                .chars()
                .any(|c| "\"&'/:<>@".contains(c) || c.is_whitespace() || c.is_control())
        {
            return Err(JidError);
        }
        if resource
            .is_some_and(|r| r.is_empty() || r.len() > MAX_PART || r.chars().any(char::is_control))
        {
            return Err(JidError);
        }
        Ok(Jid {
            node: node.map(str::to_lowercase),
            domain: domain.trim_end_matches('.').to_lowercase(),
            resource: resource.map(str::to_owned),
        })
    }

    pub fn new(node: Option<&str>, domain: &str, resource: Option<&str>) -> Jid {
        Jid {
            node: node.map(str::to_lowercase),
            domain: domain.to_lowercase(),
            resource: resource.map(str::to_owned),
        }
    }

    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }

    /// This JID without its resource.
    pub fn bare(&self) -> Jid {
        Jid {
            node: self.node.clone(),
            domain: self.domain.clone(),
            resource: None,
        }
    }

    /// This bare JID with `resource`.
    pub fn with_resource(&self, resource: &str) -> Jid {
        Jid {
            node: self.node.clone(),
            domain: self.domain.clone(),
            resource: Some(resource.to_owned()),
        }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.node {
            write!(f, "{n}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed() {
        for s in ["", "@x", "a@", "a@b/", "a b@c", "a@b@c", "<x>"] {
            assert!(Jid::parse(s).is_err(), "{s}");
        }
        assert_eq!(Jid::parse("a@b/c/d").unwrap().resource(), Some("c/d"));
    }
}
