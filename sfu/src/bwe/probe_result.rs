//! A probe cluster's result: the rate the path carried while the cluster
//! went out. The bridge forwards media as it comes, unpaced, so a cluster's
//! padding shares the link with whatever media is sent between its first
//! and last packet; everything in that span of transport-wide sequence
//! numbers is measured together. Sent faster than the path carries, the
//! span arrives spread out to the path's rate.

/// Clusters measured at once (older ones give way). Probing sends one at a
/// time; a few more cover late feedback on the previous ones.
const SLOTS: usize = 4;

/// Share of a cluster's span (packets and bytes) that must be reported
/// received before it gives a result. Lowering it answers sooner from fewer
/// packets (less sure); raising it waits for more.
const MIN_RECEIVED_PACKETS: f64 = 0.8;
const MIN_RECEIVED_BYTES: f64 = 0.8;

/// Share of the cluster's own planned packets and bytes that must have been
/// sent: a cluster cut short measures too little to go on.
const MIN_SENT_SHARE: f64 = 0.8;

/// A cluster sent or received over longer than this was not a burst
/// (something stalled it): no result.
const MAX_INTERVAL_US: i64 = 1_000_000;

/// Arriving faster than twice the sending rate is measurement noise.
const MAX_RECEIVE_RATIO: f64 = 2.0;

/// Received at under this share of the send rate, the path was saturated:
/// the result is the receive rate, less [`SATURATED_SHARE`] margin, so the
/// estimate sits below the capacity rather than at it.
const UNSATURATED_RATIO: f64 = 0.9;
const SATURATED_SHARE: f64 = 0.95;

#[derive(Clone, Copy, Debug)]
struct Cluster {
    id: u32,
    planned_packets: u32,
    planned_bytes: u64,
    /// The cluster's own packets and bytes sent.
    probe_packets: u32,
    probe_bytes: u64,
    /// The span: unwrapped sequence numbers of its first and last packet.
    first_seq: u64,
    last_seq: u64,
    first_send_us: i64,
    last_send_us: i64,
    last_send_size: u16,
    /// Everything sent within the span.
    span_packets: u32,
    span_bytes: u64,
    /// Media sent since the last probe packet: in the span if another follows.
    trailing_packets: u32,
    trailing_bytes: u64,
    received_packets: u32,
    received_bytes: u64,
    first_arrival_us: i64,
    first_arrival_size: u16,
    last_arrival_us: i64,
}

/// The clusters being measured.
#[derive(Debug, Default)]
pub(super) struct ProbeResults {
    slots: [Option<Cluster>; SLOTS],
    /// The slot of the cluster handed out last: the one media can fall into.
    newest: usize,
}

impl ProbeResults {
    /// Starts measuring a cluster the controller just handed out.
    pub fn start(&mut self, id: u32, planned_packets: u32, planned_bytes: u64) {
        self.newest = (self.newest + 1) % SLOTS;
        self.slots[self.newest] = Some(Cluster {
            id,
            planned_packets,
            planned_bytes,
            probe_packets: 0,
            probe_bytes: 0,
            first_seq: u64::MAX,
            last_seq: 0,
            first_send_us: 0,
            last_send_us: 0,
            last_send_size: 0,
            span_packets: 0,
            span_bytes: 0,
            trailing_packets: 0,
            trailing_bytes: 0,
            received_packets: 0,
            received_bytes: 0,
            first_arrival_us: i64::MAX,
            first_arrival_size: 0,
            last_arrival_us: i64::MIN,
        });
    }

    /// Notes every packet sent (`probe` 0 for media), in sending order.
    pub fn on_sent(&mut self, seq: u64, send_us: i64, size: u16, probe: u32) {
        if probe == 0 {
            if let Some(c) = self.slots[self.newest].as_mut()
                && c.probe_packets > 0
            {
                c.trailing_packets = c.trailing_packets.saturating_add(1);
                c.trailing_bytes += u64::from(size);
            }
            return;
        }
        let Some(c) = self.slots.iter_mut().flatten().find(|c| c.id == probe) else {
            return;
        };
        if c.probe_packets == 0 {
            (c.first_seq, c.first_send_us) = (seq, send_us);
        }
        if seq < c.first_seq || seq < c.last_seq {
            return; // out of order: the span only grows forward
        }
        c.probe_packets = c.probe_packets.saturating_add(1);
        c.probe_bytes += u64::from(size);
        c.span_packets = c
            .span_packets
            .saturating_add(c.trailing_packets.saturating_add(1));
        c.span_bytes += c.trailing_bytes + u64::from(size);
        (c.trailing_packets, c.trailing_bytes) = (0, 0);
        (c.last_seq, c.last_send_us, c.last_send_size) = (seq, send_us, size);
    }

    /// Counts a received packet; returns the id and rate (bit/s) of the
    /// cluster whose span holds it, once enough of the span is reported.
    pub fn on_received(&mut self, seq: u64, arrival_us: i64, size: u16) -> Option<(u32, f64)> {
        let c = self
            .slots
            .iter_mut()
            .flatten()
            .find(|c| c.probe_packets > 0 && (c.first_seq..=c.last_seq).contains(&seq))?;
        c.received_packets = c.received_packets.saturating_add(1);
        c.received_bytes += u64::from(size);
        if arrival_us < c.first_arrival_us {
            (c.first_arrival_us, c.first_arrival_size) = (arrival_us, size);
        }
        c.last_arrival_us = c.last_arrival_us.max(arrival_us);
        Some((c.id, c.rate()?))
    }
}

impl Cluster {
    fn rate(&self) -> Option<f64> {
        if f64::from(self.probe_packets) < MIN_SENT_SHARE * f64::from(self.planned_packets)
            || (self.probe_bytes as f64) < MIN_SENT_SHARE * self.planned_bytes as f64
            || f64::from(self.received_packets)
                < MIN_RECEIVED_PACKETS * f64::from(self.span_packets)
            || (self.received_bytes as f64) < MIN_RECEIVED_BYTES * self.span_bytes as f64
        {
            return None;
        }
        let send_interval = self.last_send_us.saturating_sub(self.first_send_us);
        let receive_interval = self.last_arrival_us.saturating_sub(self.first_arrival_us);
        if !(1..=MAX_INTERVAL_US).contains(&send_interval)
            || !(1..=MAX_INTERVAL_US).contains(&receive_interval)
        {
            return None;
        }
        // What fits between the first and last packet: the last one sent and
        // the first one received each mark an end, not a load.
        let sent = self
            .span_bytes
            .saturating_sub(u64::from(self.last_send_size)) as f64
            * 8e6
            / send_interval as f64;
        let received = self
            .received_bytes
            .saturating_sub(u64::from(self.first_arrival_size)) as f64
            * 8e6
            / receive_interval as f64;
        if received > MAX_RECEIVE_RATIO * sent {
            return None;
        }
        Some(if received < UNSATURATED_RATIO * sent {
            SATURATED_SHARE * received
        } else {
            sent.min(received)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster of `n` 1000-byte probe packets sent every `send_gap` µs,
    /// with a media packet of 1000 bytes after each of the first `media`,
    /// all received every `arrival_gap` µs; the last rate it yields.
    fn measure(n: u64, media: u64, send_gap: i64, arrival_gap: i64) -> Option<f64> {
        let mut r = ProbeResults::default();
        r.start(7, 5, 5000);
        let mut seq = 100;
        let mut sent = Vec::new();
        for i in 0..n {
            r.on_sent(seq, i as i64 * send_gap, 1000, 7);
            sent.push(seq);
            seq += 1;
            if i < media {
                r.on_sent(seq, i as i64 * send_gap + 1, 1000, 0);
                sent.push(seq);
                seq += 1;
            }
        }
        sent.iter()
            .enumerate()
            .filter_map(|(i, &s)| r.on_received(s, 50_000 + i as i64 * arrival_gap, 1000))
            .last()
            .map(|(id, rate)| {
                assert_eq!(id, 7);
                rate
            })
    }

    #[test]
    fn a_cluster_through_a_wide_path_measures_its_send_rate() {
        // Every 1 ms: 8 Mbit/s both ways.
        let rate = measure(10, 0, 1000, 1000).unwrap();
        assert!((rate - 8e6).abs() < 1.0, "{rate}");
    }

    #[test]
    fn media_sent_within_the_span_counts_with_it() {
        // Ten probe packets and the nine media packets between them over
        // 9 ms (18 kB after the first): 16 Mbit/s, received as fast. The
        // media packet after the last probe packet is outside the span.
        let rate = measure(10, 20, 1000, 500).unwrap();
        assert!((rate - 16e6).abs() < 1.0, "{rate}");
    }

    #[test]
    fn a_cluster_through_a_narrow_path_measures_the_path_less_a_margin() {
        // Sent at 8 Mbit/s, spread to 2 Mbit/s on arrival.
        let rate = measure(10, 0, 1000, 4000).unwrap();
        assert!((rate - 0.95 * 2e6).abs() < 1.0, "{rate}");
    }

    #[test]
    fn too_few_packets_or_implausible_spacing_give_nothing() {
        assert_eq!(measure(3, 0, 1000, 1000), None, "3 of 5 packets");
        assert_eq!(measure(10, 0, 0, 1000), None, "sent at one instant");
        assert_eq!(
            measure(10, 0, 1000, 300),
            None,
            "arrived 3x faster than sent"
        );
        assert_eq!(measure(10, 0, 200_000, 200_000), None, "not a burst");
    }

    #[test]
    fn packets_outside_any_span_and_unknown_clusters_are_ignored() {
        let mut r = ProbeResults::default();
        r.on_sent(1, 0, 1000, 9);
        assert_eq!(r.on_received(1, 0, 1000), None);
        r.start(1, 5, 5000);
        r.on_sent(10, 0, 1000, 1);
        r.on_sent(11, 0, 1000, 0);
        assert_eq!(
            r.on_received(11, 0, 1000),
            None,
            "after the last probe packet"
        );
        for id in 2..=SLOTS as u32 + 1 {
            r.start(id, 5, 5000);
        }
        assert!(r.slots.iter().flatten().all(|c| c.id != 1), "given way");
    }
}
