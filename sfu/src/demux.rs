//! Which endpoint a datagram on the shared media port belongs to.
//!
//! A STUN binding request names the endpoint in its USERNAME (`<our
//! ufrag>:<their ufrag>`), so the first packet of every endpoint is found by
//! ufrag. Once that endpoint's ICE agent has accepted a request from an
//! address, everything else (DTLS, SRTP, SRTCP) from that address is routed by
//! address. An address never moves from one endpoint to another.

use std::collections::HashMap;
use std::net::SocketAddr;

const STUN_HEADER: usize = 20;
const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// Whether `data` looks like STUN (RFC 7983: first byte 0-3, magic cookie).
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= STUN_HEADER && data[0] < 4 && data[4..8] == STUN_MAGIC
}

/// The local part of a STUN message's USERNAME, if `data` is STUN and has one.
///
/// ```
/// let mut m = vec![0, 1, 0, 12, 0x21, 0x12, 0xA4, 0x42];
/// m.extend([0; 12]);
/// m.extend([0, 6, 0, 7]);
/// m.extend(b"abc:xyz\0");
/// assert_eq!(sfu::demux::stun_local_ufrag(&m), Some("abc"));
/// ```
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    if !is_stun(data) || data[0] >= 2 {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let end = (STUN_HEADER + declared).min(data.len());
    let mut at = STUN_HEADER;
    while at + 4 <= end {
        let kind = u16::from_be_bytes([data[at], data[at + 1]]);
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let value = data.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// The routing tables of one media port.
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
}

impl<K: Copy + Eq> Default for Demux<K> {
    fn default() -> Self {
        Demux {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq> Demux<K> {
    pub fn add_ufrag(&mut self, ufrag: &str, key: K) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Where `data` from `source` goes: by ufrag for STUN, else by address.
    pub fn route(&self, source: SocketAddr, data: &[u8]) -> Option<K> {
        if let Some(ufrag) = stun_local_ufrag(data) {
            return self.by_ufrag.get(ufrag).copied();
        }
        self.by_addr.get(&source).copied()
    }

    /// Binds `addr` to `key` after that endpoint's ICE agent accepted it;
    /// refuses an address another endpoint already has.
    pub fn learn(&mut self, addr: SocketAddr, key: K) -> bool {
        *self.by_addr.entry(addr).or_insert(key) == key
    }

    /// Whether datagrams from `addr` already have an owner.
    pub fn is_learned(&self, addr: SocketAddr) -> bool {
        self.by_addr.contains_key(&addr)
    }

    /// Drops every route to `key`, returning them so a front demux can drop them too.
    pub fn forget(&mut self, key: K) -> Vec<Claim> {
        let mut released = Vec::new();
        self.by_ufrag.retain(|u, k| {
            let keep = *k != key;
            if !keep {
                released.push(Claim::Ufrag(u.clone()));
            }
            keep
        });
        self.by_addr.retain(|a, k| {
            let keep = *k != key;
            if !keep {
                released.push(Claim::Addr(*a));
            }
            keep
        });
        released
    }

    /// Takes `claim` for `key`; false if another key holds it.
    pub fn claim(&mut self, claim: &Claim, key: K) -> bool {
        match claim {
            Claim::Ufrag(u) => *self.by_ufrag.entry(u.clone()).or_insert(key) == key,
            Claim::Addr(a) => self.learn(*a, key),
        }
    }

    /// Gives `claim` up, if `key` holds it.
    pub fn release(&mut self, claim: &Claim, key: K) {
        match claim {
            Claim::Ufrag(u) => {
                if self.by_ufrag.get(u) == Some(&key) {
                    self.by_ufrag.remove(u);
                }
            }
            Claim::Addr(a) => {
                if self.by_addr.get(a) == Some(&key) {
                    self.by_addr.remove(a);
                }
            }
        }
    }
}

/// What routes datagrams to an endpoint: its ICE ufrag, or an address its ICE
/// agent accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Claim {
    Ufrag(String),
    Addr(SocketAddr),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &[u8]) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut m = vec![0, 1];
        m.extend(((4 + padded + 8) as u16).to_be_bytes());
        m.extend(STUN_MAGIC);
        m.extend([7; 12]);
        // An attribute before USERNAME (PRIORITY), to walk past.
        m.extend([0, 0x24, 0, 4, 1, 2, 3, 4]);
        m.extend([0, 6]);
        m.extend((username.len() as u16).to_be_bytes());
        m.extend(username);
        m.resize(m.len() + padded - username.len(), 0);
        m
    }

    #[test]
    fn stun_goes_by_ufrag_the_rest_by_learned_address() {
        let mut d = Demux::default();
        d.add_ufrag("bridgeA", 1);
        d.add_ufrag("bridgeB", 2);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(d.route(a, &binding(b"bridgeB:client")), Some(2));
        assert_eq!(
            d.route(a, &[0x80, 0, 0, 0]),
            None,
            "RTP from an unknown address"
        );
        assert!(d.learn(a, 2));
        assert_eq!(d.route(a, &[0x80, 0, 0, 0]), Some(2));
        assert!(!d.learn(a, 1), "an address never changes owner");
        let released = d.forget(2);
        assert!(released.contains(&Claim::Addr(a)));
        assert!(released.contains(&Claim::Ufrag("bridgeB".into())));
        assert_eq!(d.route(a, &[0x80, 0, 0, 0]), None);
        assert_eq!(d.route(a, &binding(b"bridgeB:client")), None);
    }

    #[test]
    fn claims_move_between_demuxes() {
        let mut front = Demux::default();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert!(front.claim(&Claim::Ufrag("u1".into()), 0));
        assert!(front.claim(&Claim::Addr(a), 0));
        assert!(!front.claim(&Claim::Addr(a), 1), "held by worker 0");
        front.release(&Claim::Addr(a), 1);
        assert_eq!(front.route(a, &[0x80]), Some(0), "only the holder releases");
        front.release(&Claim::Addr(a), 0);
        assert_eq!(front.route(a, &[0x80]), None);
        assert_eq!(front.route(a, &binding(b"u1:x")), Some(0));
    }

    #[test]
    fn malformed_stun_is_not_routed_by_ufrag() {
        let mut m = binding(b"bridgeA:client");
        assert_eq!(stun_local_ufrag(&m), Some("bridgeA"));
        m.truncate(30);
        assert_eq!(stun_local_ufrag(&m), None);
        assert_eq!(stun_local_ufrag(&[0; 10]), None);
        let mut bad_len = binding(b"bridgeA:client");
        bad_len[30] = 0xFF; // USERNAME length beyond the message
        assert_eq!(stun_local_ufrag(&bad_len), None);
    }
}
