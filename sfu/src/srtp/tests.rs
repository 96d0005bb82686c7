//! Against webrtc-rs's SRTP (an implementation this one shares nothing with)
//! in both directions, for every profile, and the RFCs' known answers.

use crate::test_support::hex;
use rtc::srtp::context::Context as TheirContext;
use rtc::srtp::protection_profile::ProtectionProfile;

use super::*;

const PROFILES: [Profile; 3] = [
    Profile::Aes128CmSha1_80,
    Profile::AeadAes128Gcm,
    Profile::AeadAes256Gcm,
];

fn theirs(profile: Profile, key: &[u8], salt: &[u8]) -> TheirContext {
    let profile = match profile {
        Profile::Aes128CmSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        Profile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    };
    let provider = rtc::crypto::default_provider().unwrap();
    TheirContext::new(key, salt, profile, None, None, provider.crypto()).unwrap()
}

fn master(profile: Profile, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let key = (0..profile.key_len())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    let salt = (0..profile.salt_len())
        .map(|i| seed ^ (i as u8 * 7))
        .collect();
    (key, salt)
}

/// An RTP packet with a CSRC and a one-byte header extension, so the
/// header length matters.
fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x91, 100];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0]);
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// A receiver report with one report block.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xaa; 24]);
    p
}

fn protect(out: &mut Outbound, plain: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + 64];
    buf[..plain.len()].copy_from_slice(plain);
    let len = if rtcp {
        out.protect_rtcp(&mut buf, plain.len()).unwrap()
    } else {
        out.protect_rtp(&mut buf, plain.len()).unwrap()
    };
    buf.truncate(len);
    buf
}

#[test]
fn what_we_protect_webrtc_rs_opens() {
    for profile in PROFILES {
        let (key, salt) = master(profile, 1);
        let mut ours = Outbound::new(profile, &key, &salt);
        let mut them = theirs(profile, &key, &salt);
        // Across a sequence wrap: the rollover counter must agree.
        for seq in (0xfff0u16..=0xffff).chain(0..20) {
            let plain = rtp(seq, 0x1234_5678, 100 + usize::from(seq % 7));
            let wire = protect(&mut ours, &plain, false);
            assert_eq!(wire.len(), plain.len() + profile.rtp_overhead());
            let opened = them
                .decrypt_rtp(&wire)
                .unwrap_or_else(|e| panic!("{profile:?} seq {seq}: {e}"));
            assert_eq!(&opened[..], &plain[..], "{profile:?} seq {seq}");
        }
        for n in 0..5 {
            let plain = rtcp(0x0bad_cafe + n);
            let wire = protect(&mut ours, &plain, true);
            assert_eq!(wire.len(), plain.len() + profile.rtcp_overhead());
            let opened = them
                .decrypt_rtcp(&wire)
                .unwrap_or_else(|e| panic!("{profile:?} rtcp: {e}"));
            assert_eq!(&opened[..], &plain[..], "{profile:?}");
        }
    }
}

#[test]
fn what_webrtc_rs_protects_we_open() {
    for profile in PROFILES {
        let (key, salt) = master(profile, 2);
        let mut ours = Inbound::new(profile, &key, &salt);
        let mut them = theirs(profile, &key, &salt);
        for seq in (0xfff0u16..=0xffff).chain(0..20) {
            let plain = rtp(seq, 42, 200);
            let mut wire = them.encrypt_rtp(&plain).unwrap().to_vec();
            let len = ours
                .unprotect_rtp(&mut wire)
                .unwrap_or_else(|e| panic!("{profile:?} seq {seq}: {e}"));
            assert_eq!(&wire[..len], &plain[..], "{profile:?} seq {seq}");
        }
        for _ in 0..5 {
            let plain = rtcp(77);
            let mut wire = them.encrypt_rtcp(&plain).unwrap().to_vec();
            let len = ours
                .unprotect_rtcp(&mut wire)
                .unwrap_or_else(|e| panic!("{profile:?} rtcp: {e}"));
            assert_eq!(&wire[..len], &plain[..]);
        }
    }
}

#[test]
fn both_ends_of_a_dtls_association_agree() {
    for profile in PROFILES {
        let material: Vec<u8> = (0..2 * (profile.key_len() + profile.salt_len()))
            .map(|i| i as u8)
            .collect();
        let mut client = Session::from_dtls(&material, profile, true).unwrap();
        let mut server = Session::from_dtls(&material, profile, false).unwrap();
        let plain = rtp(1, 9, 50);
        let mut wire = protect(&mut client.outbound, &plain, false);
        assert_eq!(server.inbound.unprotect_rtp(&mut wire), Ok(plain.len()));
        let mut wire = protect(&mut server.outbound, &plain, false);
        assert_eq!(client.inbound.unprotect_rtp(&mut wire), Ok(plain.len()));
        // The two directions have different keys.
        let mut wire = protect(&mut client.outbound, &rtp(2, 9, 50), false);
        assert_eq!(
            client.inbound.unprotect_rtp(&mut wire),
            Err(SrtpError::Authentication)
        );
    }
    assert_eq!(
        Session::from_dtls(&[0; 30], Profile::AeadAes128Gcm, true).err(),
        Some(SrtpError::KeyingMaterial {
            got: 30,
            needed: 56
        })
    );
}

#[test]
fn tampered_replayed_and_malformed_packets_are_refused_without_harm() {
    for profile in PROFILES {
        let (key, salt) = master(profile, 3);
        let mut out = Outbound::new(profile, &key, &salt);
        let mut inb = Inbound::new(profile, &key, &salt);
        let first = protect(&mut out, &rtp(10, 5, 80), false);

        let mut flipped = first.clone();
        flipped[30] ^= 1;
        assert_eq!(
            inb.unprotect_rtp(&mut flipped),
            Err(SrtpError::Authentication)
        );
        let mut header_flipped = first.clone();
        header_flipped[1] ^= 1;
        assert_eq!(
            inb.unprotect_rtp(&mut header_flipped),
            Err(SrtpError::Authentication)
        );

        let mut ok = first.clone();
        assert!(
            inb.unprotect_rtp(&mut ok).is_ok(),
            "a failed packet left no trace"
        );
        let mut again = first.clone();
        assert_eq!(inb.unprotect_rtp(&mut again), Err(SrtpError::Replayed));

        assert_eq!(inb.unprotect_rtp(&mut [0x80; 11]), Err(SrtpError::NotRtp));
        assert_eq!(inb.unprotect_rtp(&mut [0x40; 40]), Err(SrtpError::NotRtp));
        // Extension header claiming more than the packet holds.
        let mut long_ext = rtp(11, 5, 0);
        long_ext[18..20].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(inb.unprotect_rtp(&mut long_ext), Err(SrtpError::NotRtp));
        let mut header_only = rtp(12, 5, 0);
        header_only.truncate(24);
        assert_eq!(inb.unprotect_rtp(&mut header_only), Err(SrtpError::NoTag));

        let report = protect(&mut out, &rtcp(5), true);
        let mut ok = report.clone();
        assert!(inb.unprotect_rtcp(&mut ok).is_ok());
        let mut again = report.clone();
        assert_eq!(inb.unprotect_rtcp(&mut again), Err(SrtpError::Replayed));
        let mut cut = report[..report.len() - 1].to_vec();
        assert!(inb.unprotect_rtcp(&mut cut).is_err());
        assert_eq!(inb.unprotect_rtcp(&mut [0x81; 12]), Err(SrtpError::NoTag));

        let mut small = [0u8; 40];
        let plain = rtp(13, 5, 8);
        small[..plain.len()].copy_from_slice(&plain);
        assert_eq!(
            out.protect_rtp(&mut small, plain.len()),
            Err(SrtpError::NoRoom)
        );
    }
}

#[test]
fn the_next_packet_after_a_forged_one_still_opens() {
    let profile = Profile::AeadAes128Gcm;
    let (key, salt) = master(profile, 4);
    let mut out = Outbound::new(profile, &key, &salt);
    let mut inb = Inbound::new(profile, &key, &salt);
    let mut first = protect(&mut out, &rtp(100, 8, 40), false);
    inb.unprotect_rtp(&mut first).unwrap();
    // A forgery far ahead must not move the stream's index.
    let mut forged = rtp(30_000, 8, 40);
    forged.extend_from_slice(&[0; 16]);
    assert_eq!(
        inb.unprotect_rtp(&mut forged),
        Err(SrtpError::Authentication)
    );
    let mut next = protect(&mut out, &rtp(101, 8, 40), false);
    assert!(inb.unprotect_rtp(&mut next).is_ok());
}

#[test]
fn session_keys_are_rfc_3711s() {
    // RFC 3711 Appendix B.3.
    let (key, salt) = (
        hex("e1f97a0d3e018be0d64fa32c06de4139"),
        hex("0ec675ad498afeebb6960b3aabe6"),
    );
    let mut cipher = [0u8; 16];
    let mut auth = [0u8; 20];
    let mut session_salt = [0u8; 14];
    kdf::derive(&key, &salt, kdf::Label::RtpCipher, &mut cipher);
    kdf::derive(&key, &salt, kdf::Label::RtpAuth, &mut auth);
    kdf::derive(&key, &salt, kdf::Label::RtpSalt, &mut session_salt);
    assert_eq!(cipher.to_vec(), hex("c61e7a93744f39ee10734afe3ff7a087"));
    assert_eq!(
        auth.to_vec(),
        hex("cebe321f6ff7716b6fd4ab49af256a156d38baa4")
    );
    assert_eq!(session_salt.to_vec(), hex("30cbbc08863d8c85d49db34a9ae1"));
    // A GCM master salt (12 bytes) is padded on the right, as libsrtp and RFC 9335's vectors do.
    let (key, salt) = (
        hex("000102030405060708090a0b0c0d0e0f"),
        hex("a0a1a2a3a4a5a6a7a8a9aaab"),
    );
    let mut gcm_salt = [0u8; 12];
    kdf::derive(&key, &salt, kdf::Label::RtpCipher, &mut cipher);
    kdf::derive(&key, &salt, kdf::Label::RtpSalt, &mut gcm_salt);
    assert_eq!(cipher.to_vec(), hex("077c6143cb221bc355ff23d5f984a16e"));
    assert_eq!(gcm_salt.to_vec(), hex("9af3e95364ebac9c99c5a7c4"));
}

/// libsrtp's `srtp_validate` and `srtp_validate_gcm` packets (also pion's
/// and webrtc-rs's): SSRC cafebabe, sequence 0x1234, SRTCP index 1.
#[test]
fn packets_are_libsrtps_known_answers() {
    let cases = [
        (
            Profile::Aes128CmSha1_80,
            "e1f97a0d3e018be0d64fa32c06de4139",
            "0ec675ad498afeebb6960b3aabe6",
            "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
            "81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001993e08cd54d6c1230798",
        ),
        (
            Profile::AeadAes128Gcm,
            "000102030405060708090a0b0c0d0e0f",
            "a0a1a2a3a4a5a6a7a8a9aaab",
            "800f1234decafbadcafebabec5002ede04cfdd2eb91159e0880aa06ed2976826f796b201df3131a127e8a392",
            "81c8000bcafebabec98b8b5df0392a55852b6c21ac8e7025c52c6fbea2b3b446ea31123ba88ce61e80000001",
        ),
    ];
    for (profile, key, salt, srtp, srtcp) in cases {
        let (key, salt) = (hex(key), hex(salt));
        let mut out = Outbound::new(profile, &key, &salt);
        let rtp = hex("800f1234decafbadcafebabeabababababababababababababababab");
        assert_eq!(protect(&mut out, &rtp, false), hex(srtp), "{profile:?}");
        let rtcp = hex("81c8000bcafebabeabababababababababababababababab");
        protect(&mut out, &rtcp, true); // index 0
        assert_eq!(protect(&mut out, &rtcp, true), hex(srtcp), "{profile:?}");

        let mut inb = Inbound::new(profile, &key, &salt);
        let mut wire = hex(srtp);
        let len = inb.unprotect_rtp(&mut wire).unwrap();
        assert_eq!(&wire[..len], &rtp[..]);
        let mut wire = hex(srtcp);
        let len = inb.unprotect_rtcp(&mut wire).unwrap();
        assert_eq!(&wire[..len], &rtcp[..]);
    }
}
