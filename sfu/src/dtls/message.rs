//! The bodies of the DTLS 1.2 handshake messages a server reads and writes
//! (RFC 5246 §7.4, RFC 8422 §5, RFC 5764 §4.1.1, RFC 7627, RFC 5746).

use aws_lc_rs::agreement;

use super::Error;

/// Handshake message types (RFC 5246 §7.4).
pub(super) mod kind {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;
}

/// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: every WebRTC stack offers it, and
/// our certificate is ECDSA.
pub(super) const SUITE: u16 = 0xc02b;
/// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, which our client offers too for a
/// server with an RSA certificate: the same keys and
/// records, the server's signature made with RSA.
pub(super) const SUITE_RSA: u16 = 0xc02f;
const EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;

/// SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2).
pub(super) const SRTP_AES128_CM_SHA1_80: u16 = 0x0001;
pub(super) const SRTP_AEAD_AES_128_GCM: u16 = 0x0007;
pub(super) const SRTP_AEAD_AES_256_GCM: u16 = 0x0008;

/// The profile, as str0m's DTLS interface names it, of an id we agreed on.
pub(super) fn srtp_profile(id: u16) -> dimpl::SrtpProfile {
    match id {
        SRTP_AES128_CM_SHA1_80 => dimpl::SrtpProfile::AES128_CM_SHA1_80,
        SRTP_AEAD_AES_128_GCM => dimpl::SrtpProfile::AEAD_AES_128_GCM,
        _ => dimpl::SrtpProfile::AEAD_AES_256_GCM,
    }
}

/// Key exchange groups (RFC 8422 §5.1.1) in the order we pick or offer them.
pub(super) const GROUPS: [(u16, &agreement::Algorithm); 3] = [
    (29, &agreement::X25519),
    (23, &agreement::ECDH_P256),
    (24, &agreement::ECDH_P384),
];

mod ext {
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const USE_SRTP: u16 = 14;
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    pub const RENEGOTIATION_INFO: u16 = 0xff01;
}

/// Reads big-endian fields off a message body.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(body: &'a [u8], what: &'static str) -> Self {
        Reader { rest: body, what }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(Error::Malformed(self.what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Error> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length.
    pub fn vec8(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u8()?;
        self.bytes(n.into())
    }

    /// A vector with a two-byte length.
    pub fn vec16(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u16()?;
        self.bytes(n.into())
    }

    /// A vector with a three-byte length.
    pub fn vec24(&mut self) -> Result<&'a [u8], Error> {
        let b = self.bytes(3)?;
        let n = usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
        self.bytes(n)
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The body must end here.
    pub fn end(&self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed(self.what))
        }
    }
}

/// Hands each extension of a hello's (optional) extension block to `each`.
fn extensions(
    r: &mut Reader,
    what: &'static str,
    mut each: impl FnMut(u16, Reader) -> Result<(), Error>,
) -> Result<(), Error> {
    if r.is_empty() {
        return Ok(());
    }
    let mut exts = Reader::new(r.vec16()?, what);
    r.end()?;
    while !exts.is_empty() {
        let typ = exts.u16()?;
        each(typ, Reader::new(exts.vec16()?, what))?;
    }
    Ok(())
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// What a ClientHello offers that the server's answer depends on.
#[derive(Debug, Default)]
pub(super) struct ClientHello {
    pub version: u16,
    pub random: [u8; 32],
    pub suites: Vec<u16>,
    pub null_compression: bool,
    /// `None`: no supported_groups extension.
    pub groups: Option<Vec<u16>>,
    pub signature_algorithms: Option<Vec<u16>>,
    pub srtp_profiles: Vec<u16>,
    pub extended_master_secret: bool,
    pub secure_renegotiation: bool,
    pub point_formats: bool,
}

impl ClientHello {
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "ClientHello");
        let mut hello = ClientHello {
            version: r.u16()?,
            ..Default::default()
        };
        hello.random.copy_from_slice(r.bytes(32)?);
        r.vec8()?; // session id: no resumption here
        r.vec8()?; // cookie: none is asked for
        hello.suites = u16s(r.vec16()?);
        hello.null_compression = r.vec8()?.contains(&0);
        hello.secure_renegotiation = hello.suites.contains(&EMPTY_RENEGOTIATION_INFO_SCSV);
        extensions(&mut r, "ClientHello extension", |typ, mut data| {
            match typ {
                ext::SUPPORTED_GROUPS => hello.groups = Some(u16s(data.vec16()?)),
                ext::SIGNATURE_ALGORITHMS => hello.signature_algorithms = Some(u16s(data.vec16()?)),
                ext::USE_SRTP => {
                    hello.srtp_profiles = u16s(data.vec16()?);
                    data.vec8()?;
                }
                ext::EXTENDED_MASTER_SECRET => hello.extended_master_secret = true,
                ext::EC_POINT_FORMATS => hello.point_formats = true,
                ext::RENEGOTIATION_INFO => {
                    if !data.vec8()?.is_empty() {
                        return Err(Error::Refused(
                            "sent renegotiation info in an initial handshake",
                        ));
                    }
                    hello.secure_renegotiation = true;
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(hello)
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_ext(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    put_u16(out, typ);
    put_u16(out, data.len() as u16);
    out.extend_from_slice(data);
}

/// The ServerHello body: our random, the suite, and the extensions the client
/// asked for.
pub(super) fn server_hello(random: &[u8; 32], hello: &ClientHello, srtp_profile: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    out.extend_from_slice(&super::record::VERSION);
    out.extend_from_slice(random);
    out.push(0); // no session id: nothing to resume
    put_u16(&mut out, SUITE);
    out.push(0); // null compression
    let mut exts = Vec::new();
    if hello.secure_renegotiation {
        put_ext(&mut exts, ext::RENEGOTIATION_INFO, &[0]);
    }
    if hello.extended_master_secret {
        put_ext(&mut exts, ext::EXTENDED_MASTER_SECRET, &[]);
    }
    let [hi, lo] = srtp_profile.to_be_bytes();
    put_ext(&mut exts, ext::USE_SRTP, &[0, 2, hi, lo, 0]);
    if hello.point_formats {
        put_ext(&mut exts, ext::EC_POINT_FORMATS, &[1, 0]);
    }
    put_u16(&mut out, exts.len() as u16);
    out.extend_from_slice(&exts);
    out
}

/// A Certificate body holding one certificate.
pub(super) fn certificate(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der.len() + 6);
    out.extend_from_slice(&((der.len() + 3) as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(der);
    out
}

/// The leaf of a Certificate body (the first certificate), if any.
pub(super) fn leaf_certificate(body: &[u8]) -> Result<Option<&[u8]>, Error> {
    let mut r = Reader::new(body, "Certificate");
    let mut list = Reader::new(r.vec24()?, "Certificate list");
    r.end()?;
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(list.vec24()?))
}

/// The ECDHE parameters of a ServerKeyExchange (RFC 8422 §5.4): what the
/// signature covers after the two randoms.
pub(super) fn ecdhe_params(group: u16, public: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + public.len());
    out.push(3); // named_curve
    put_u16(&mut out, group);
    out.push(public.len() as u8);
    out.extend_from_slice(public);
    out
}

/// The ServerKeyExchange body: parameters, then the signature over them.
pub(super) fn server_key_exchange(params: &[u8], scheme: u16, signature: &[u8]) -> Vec<u8> {
    [params, &signed(scheme, signature)].concat()
}

/// A CertificateRequest body: ECDSA or RSA certificates, signed with a scheme
/// we can check, from any authority (WebRTC certificates are self-signed).
pub(super) fn certificate_request(schemes: &[u16]) -> Vec<u8> {
    let mut out = vec![2, 64, 1]; // ecdsa_sign, rsa_sign
    put_u16(&mut out, (schemes.len() * 2) as u16);
    schemes.iter().for_each(|s| put_u16(&mut out, *s));
    put_u16(&mut out, 0);
    out
}

/// The client's ECDHE public key from a ClientKeyExchange body.
pub(super) fn client_public(body: &[u8]) -> Result<&[u8], Error> {
    let mut r = Reader::new(body, "ClientKeyExchange");
    let public = r.vec8()?;
    r.end()?;
    Ok(public)
}

/// A signature with its scheme, as CertificateVerify and ServerKeyExchange end.
pub(super) fn signature<'a>(body: &'a [u8], what: &'static str) -> Result<(u16, &'a [u8]), Error> {
    let mut r = Reader::new(body, what);
    let scheme = r.u16()?;
    let signature = r.vec16()?;
    r.end()?;
    Ok((scheme, signature))
}

/// A CertificateVerify body.
pub(super) fn signed(scheme: u16, signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + signature.len());
    put_u16(&mut out, scheme);
    put_u16(&mut out, signature.len() as u16);
    out.extend_from_slice(signature);
    out
}

/// Our ClientHello body: one suite, the groups and schemes we can use, the
/// SRTP profiles in our order, extended master secret and secure renegotiation.
pub(super) fn client_hello(
    random: &[u8; 32],
    cookie: &[u8],
    srtp_profiles: &[u16],
    schemes: &[u16],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&super::record::VERSION);
    out.extend_from_slice(random);
    out.push(0); // no session to resume
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    put_u16(&mut out, 4);
    put_u16(&mut out, SUITE);
    put_u16(&mut out, SUITE_RSA);
    out.extend_from_slice(&[1, 0]); // null compression
    let list = |values: &[u16]| {
        let mut v = Vec::with_capacity(2 + 2 * values.len());
        put_u16(&mut v, (2 * values.len()) as u16);
        values.iter().for_each(|x| put_u16(&mut v, *x));
        v
    };
    let groups: Vec<u16> = GROUPS.iter().map(|(g, _)| *g).collect();
    let mut exts = Vec::new();
    put_ext(&mut exts, ext::SUPPORTED_GROUPS, &list(&groups));
    put_ext(&mut exts, ext::EC_POINT_FORMATS, &[1, 0]);
    put_ext(&mut exts, ext::SIGNATURE_ALGORITHMS, &list(schemes));
    let mut srtp = list(srtp_profiles);
    srtp.push(0); // no MKI
    put_ext(&mut exts, ext::USE_SRTP, &srtp);
    put_ext(&mut exts, ext::EXTENDED_MASTER_SECRET, &[]);
    put_ext(&mut exts, ext::RENEGOTIATION_INFO, &[0]);
    put_u16(&mut out, exts.len() as u16);
    out.extend_from_slice(&exts);
    out
}

/// The cookie of a HelloVerifyRequest body (RFC 6347 §4.2.1).
pub(super) fn hello_verify_cookie(body: &[u8]) -> Result<&[u8], Error> {
    let mut r = Reader::new(body, "HelloVerifyRequest");
    r.u16()?;
    let cookie = r.vec8()?;
    r.end()?;
    Ok(cookie)
}

/// What a ServerHello chose.
#[derive(Debug, Default)]
pub(super) struct ServerHello {
    pub version: u16,
    pub random: [u8; 32],
    pub suite: u16,
    pub compression: u8,
    pub srtp_profile: Option<u16>,
    pub extended_master_secret: bool,
}

impl ServerHello {
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "ServerHello");
        let mut hello = ServerHello {
            version: r.u16()?,
            ..Default::default()
        };
        hello.random.copy_from_slice(r.bytes(32)?);
        r.vec8()?; // session id
        hello.suite = r.u16()?;
        hello.compression = r.u8()?;
        extensions(&mut r, "ServerHello extension", |typ, mut data| {
            match typ {
                ext::USE_SRTP => {
                    let profiles = u16s(data.vec16()?);
                    data.vec8()?;
                    if profiles.len() != 1 {
                        return Err(Error::Refused("chose other than one SRTP profile"));
                    }
                    hello.srtp_profile = Some(profiles[0]);
                }
                ext::EXTENDED_MASTER_SECRET => hello.extended_master_secret = true,
                _ => {}
            }
            Ok(())
        })?;
        Ok(hello)
    }
}

/// A ServerKeyExchange's ECDHE parameters and the signature over them.
#[derive(Debug)]
pub(super) struct ServerKeyExchange<'a> {
    pub group: u16,
    pub public: &'a [u8],
    /// The parameters as sent: what the signature covers after the randoms.
    pub params: &'a [u8],
    pub scheme: u16,
    pub signature: &'a [u8],
}

impl<'a> ServerKeyExchange<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "ServerKeyExchange");
        if r.u8()? != 3 {
            return Err(Error::Refused(
                "sent ECDHE parameters other than a named curve",
            ));
        }
        let group = r.u16()?;
        let public = r.vec8()?;
        let params = &body[..4 + public.len()];
        let (scheme, signature) = signature(&body[params.len()..], "ServerKeyExchange")?;
        Ok(ServerKeyExchange {
            group,
            public,
            params,
            scheme,
            signature,
        })
    }
}

/// A ClientKeyExchange body holding our ECDHE public key.
pub(super) fn client_key_exchange(public: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + public.len());
    out.push(public.len() as u8);
    out.extend_from_slice(public);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_hello(extensions: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.push(0); // cookie
        body.extend_from_slice(&[0, 4, 0xc0, 0x2b, 0x00, 0xff]);
        body.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        for (typ, data) in extensions {
            put_ext(&mut exts, *typ, data);
        }
        put_u16(&mut body, exts.len() as u16);
        body.extend_from_slice(&exts);
        body
    }

    #[test]
    fn a_client_hello_gives_what_the_answer_needs() {
        let body = client_hello(&[
            (ext::USE_SRTP, &[0, 6, 0, 8, 0, 7, 0, 1, 0]),
            (ext::SUPPORTED_GROUPS, &[0, 4, 0, 29, 0, 23]),
            (ext::EXTENDED_MASTER_SECRET, &[]),
            (0x1234, &[1, 2, 3]),
        ]);
        let hello = ClientHello::parse(&body).unwrap();
        assert_eq!(hello.version, 0xfefd);
        assert_eq!(hello.suites, [0xc02b, 0x00ff]);
        assert!(hello.null_compression && hello.extended_master_secret);
        assert!(hello.secure_renegotiation, "by the SCSV");
        assert_eq!(hello.srtp_profiles, [8, 7, 1]);
        assert_eq!(hello.groups, Some(vec![29, 23]));
        assert_eq!(hello.signature_algorithms, None);
    }

    #[test]
    fn a_client_hello_cut_anywhere_is_refused_not_read_past() {
        let body = client_hello(&[(ext::USE_SRTP, &[0, 2, 0, 7, 0])]);
        for len in 0..body.len() {
            assert!(ClientHello::parse(&body[..len]).is_err() || len == 2 + 32 + 2 + 6 + 2);
        }
    }

    #[test]
    fn the_server_hello_answers_only_the_extensions_offered() {
        let hello = ClientHello::parse(&client_hello(&[])).unwrap();
        let body = server_hello(&[1; 32], &hello, 7);
        // version, random, session id, suite, compression, extensions:
        // renegotiation info (by the SCSV) and use_srtp.
        assert_eq!(body.len(), 2 + 32 + 1 + 2 + 1 + 2 + 5 + 9);
        assert_eq!(&body[body.len() - 9..], &[0, 14, 0, 5, 0, 2, 0, 7, 0]);
    }
}
