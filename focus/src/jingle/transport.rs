//! The ice-udp `<transport>`: the bridge's, written into the offer, and the
//! client's, read from its answer and trickled `transport-info`.

use std::net::{IpAddr, SocketAddr};

use sfu::api::{LocalTransport, Setup};
use signaling::xml::Element;

use super::{JingleError, bounded, ns};

/// Builds the bridge's transport, copied into every content (BUNDLE, §3.2):
/// the one Colibri2 carries, with the SCTP map for a data channel.
pub(crate) fn build(local: &LocalTransport, websocket: Option<&str>, sctp: bool) -> Element {
    let mut t = colibri2::codec::ice_udp_transport(local, websocket);
    if sctp {
        t.push_child(
            Element::new("sctpmap", ns::SCTP)
                .with_attr("number", "5000")
                .with_attr("protocol", "webrtc-datachannel")
                .with_attr("streams", "1024"),
        );
    }
    t
}

/// A DTLS fingerprint with the role its sender takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub hash: String,
    pub value: String,
    pub setup: Setup,
}

/// What the transports of one message say, merged across its contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub fingerprint: Option<Fingerprint>,
    pub candidates: Vec<SocketAddr>,
    /// Whether any content carried an ice-udp transport at all.
    pub present: bool,
}

/// Reads the ice-udp transport of every content. Contents are bundled, so
/// they must agree on ICE credentials; candidates are collected from all.
pub(crate) fn parse_contents(jingle: &Element) -> Result<Parsed, JingleError> {
    let mut out = Parsed::default();
    let mut candidate_elements = 0;
    for t in jingle
        .children()
        .filter(|c| c.name() == "content")
        .filter_map(|c| c.child("transport", ns::ICE_UDP))
    {
        out.present = true;
        merge_credential(&mut out.ufrag, t.attr("ufrag"))?;
        merge_credential(&mut out.pwd, t.attr("pwd"))?;
        for f in t.children().filter(|c| c.is("fingerprint", ns::DTLS)) {
            let f = parse_fingerprint(f)?;
            if out
                .fingerprint
                .as_ref()
                .is_none_or(|have| rank(&f) < rank(have))
            {
                out.fingerprint = Some(f);
            }
        }
        for c in t.children().filter(|c| c.is("candidate", ns::ICE_UDP)) {
            candidate_elements += 1;
            bounded("candidates", candidate_elements)?;
            if let Some(addr) = usable_candidate(c).filter(|a| !out.candidates.contains(a)) {
                out.candidates.push(addr);
            }
        }
    }
    Ok(out)
}

fn merge_credential(have: &mut Option<String>, new: Option<&str>) -> Result<(), JingleError> {
    match (have.as_deref(), new.filter(|v| !v.is_empty())) {
        (Some(a), Some(b)) if a != b => Err(JingleError::ConflictingTransports),
        (None, Some(b)) => {
            *have = Some(b.to_owned());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Which of several fingerprints (RFC 8122 §5 allows one per hash; aiortc
/// sends sha-256, -384 and -512) goes to the bridge, which checks any of
/// them: sha-256 (every browser's), else sha-1, else the first.
fn rank(f: &Fingerprint) -> u8 {
    match f.hash.as_str() {
        "sha-256" => 0,
        "sha-1" => 1,
        _ => 2,
    }
}

/// Checks the hash is one DTLS uses and the value has its length in
/// colon-separated hex bytes, so a bad answer fails here and not mid-handshake.
fn parse_fingerprint(f: &Element) -> Result<Fingerprint, JingleError> {
    let hash = f.attr("hash").ok_or(JingleError::MissingAttr {
        element: "fingerprint",
        attr: "hash",
    })?;
    let bytes = match hash.to_ascii_lowercase().as_str() {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        _ => {
            return Err(JingleError::BadFingerprint(format!(
                "unknown hash '{hash}'"
            )));
        }
    };
    let value = f.text().trim().to_owned();
    let parts: Vec<&str> = value.split(':').collect();
    let well_formed = parts
        .iter()
        .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if parts.len() != bytes || !well_formed {
        return Err(JingleError::BadFingerprint(format!(
            "{hash} needs {bytes} colon-separated hex bytes"
        )));
    }
    // RFC 4145: an answer without setup is active.
    let setup = match f.attr("setup").unwrap_or("active") {
        "active" => Setup::Active,
        "passive" => Setup::Passive,
        "actpass" => Setup::Actpass,
        other => return Err(JingleError::BadSetup(other.to_owned())),
    };
    Ok(Fingerprint {
        // Lower case, as DTLS stacks name hashes (some clients write SHA-256).
        hash: hash.to_ascii_lowercase(),
        value,
        setup,
    })
}

/// The address of a candidate the bridge can use: UDP, RTP component (RTCP is
/// muxed), a literal IP. mDNS `.local` names, TCP and malformed candidates are
/// skipped rather than failing the message: the others still connect.
fn usable_candidate(c: &Element) -> Option<SocketAddr> {
    if !c.attr("protocol")?.eq_ignore_ascii_case("udp") {
        return None;
    }
    if c.attr("component").is_some_and(|comp| comp != "1") {
        return None;
    }
    let ip: IpAddr = c.attr("ip")?.parse().ok()?;
    let port: u16 = c.attr("port")?.parse().ok()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}
