//! Simulated network loss (`--loss`): a participant drops a share of the RTP
//! packets it sends and receives, so the bridge and the participants must
//! recover video with NACK and RTX as they would on a lossy network. ICE,
//! DTLS and RTCP always pass: loss there only slows setup down.

/// Drops RTP packets at random with a fixed probability.
pub struct Loss {
    /// Drop when the next random number is below this (out of `u32::MAX`).
    threshold: u32,
    state: u64,
}

impl Loss {
    /// `percent` of RTP packets, with a sequence seeded by `seed`.
    pub fn new(percent: f64, seed: u64) -> Loss {
        let share = (percent / 100.0).clamp(0.0, 1.0);
        Loss {
            threshold: (share * f64::from(u32::MAX)) as u32,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// Whether this datagram is lost.
    pub fn drops(&mut self, datagram: &[u8]) -> bool {
        if self.threshold == 0 || !is_rtp(datagram) {
            return false;
        }
        // xorshift64*: cheap, and the same run drops the same packets.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32;
        r < self.threshold
    }
}

/// (S)RTP, not RTCP, STUN or DTLS (RFC 7983 first byte, RFC 5761 payload type).
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_the_share_asked_and_only_rtp() {
        let mut rtp = [0u8; 100];
        rtp[0] = 0x80;
        rtp[1] = 100;
        let mut loss = Loss::new(5.0, 7);
        let dropped = (0..20_000).filter(|_| loss.drops(&rtp)).count();
        assert!((800..1200).contains(&dropped), "{dropped} of 20000 at 5 %");
        let mut rtcp = rtp;
        rtcp[1] = 200;
        let stun = [0u8; 20];
        assert!((0..1000).all(|_| !loss.drops(&rtcp) && !loss.drops(&stun)));
        assert!((0..1000).all(|_| !Loss::new(0.0, 1).drops(&rtp)));
    }
}
