//! Inter-arrival grouping: packets sent within a few milliseconds of each
//! other form one group (a video frame, a probe burst), and the delay signal
//! is how much later one group arrives after the previous than it was sent.
//! Timestamps are microseconds: send times on our clock, arrival times on the
//! receiver's (each with its own origin; only differences are used).

/// A packet sent within this of its group's first joins the group. Raising
/// it merges separate frames into one group (fewer, coarser samples);
/// lowering it splits the pacer's own spacing into noise.
const SEND_GROUP_US: i64 = 5_000;

/// A packet arriving within this of its group's last, earlier than its send
/// spacing predicts, was held behind the group on the way (a burst released
/// together) and joins it. Raising it hides more queue growth inside
/// groups; lowering it reads such bursts as the queue draining.
const BURST_US: i64 = 5_000;

/// A burst longer than this is not one burst any more.
const MAX_BURST_US: i64 = 100_000;

/// When arrival spacing and send spacing disagree by more than this, the
/// receiver's clock jumped (or it is lying): start over. Raising it lets a
/// real multi-second stall count as a delay sample.
const CLOCK_JUMP_US: i64 = 3_000_000;

/// Consecutive groups arriving before their predecessor that reset the
/// state: one is reordering, a run is a clock going backwards.
const MAX_REORDERED: u32 = 3;

/// One group's extent.
#[derive(Clone, Copy, Debug)]
struct Group {
    first_send_us: i64,
    last_send_us: i64,
    first_arrival_us: i64,
    last_arrival_us: i64,
}

/// How a completed group moved relative to the one before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct GroupDelta {
    /// Send spacing between the two groups' last packets.
    pub send_us: i64,
    /// Arrival spacing between them.
    pub arrival_us: i64,
    /// When the completed group's last packet arrived (receiver's clock).
    pub at_arrival_us: i64,
}

/// The group being filled and the last completed one.
#[derive(Debug, Default)]
pub(super) struct ArrivalGroups {
    current: Option<Group>,
    previous: Option<Group>,
    reordered: u32,
}

impl ArrivalGroups {
    /// Adds a received packet (fed in arrival order); returns a delta when
    /// this packet closed a group that has a predecessor.
    pub fn on_received(&mut self, send_us: i64, arrival_us: i64) -> Option<GroupDelta> {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group::of(send_us, arrival_us));
            return None;
        };
        if send_us < current.first_send_us {
            return None; // sent before this group began: reordered, of no use
        }
        if current.joins(send_us, arrival_us) {
            current.last_send_us = current.last_send_us.max(send_us);
            current.last_arrival_us = current.last_arrival_us.max(arrival_us);
            return None;
        }
        let done = *current;
        self.current = Some(Group::of(send_us, arrival_us));
        let previous = self.previous.replace(done)?;
        let send = done.last_send_us.saturating_sub(previous.last_send_us);
        let arrival = done
            .last_arrival_us
            .saturating_sub(previous.last_arrival_us);
        if arrival.saturating_sub(send).saturating_abs() > CLOCK_JUMP_US {
            self.reset(send_us, arrival_us);
            return None;
        }
        if arrival < 0 {
            self.reordered += 1;
            if self.reordered >= MAX_REORDERED {
                self.reset(send_us, arrival_us);
            }
            return None;
        }
        self.reordered = 0;
        Some(GroupDelta {
            send_us: send,
            arrival_us: arrival,
            at_arrival_us: done.last_arrival_us,
        })
    }

    fn reset(&mut self, send_us: i64, arrival_us: i64) {
        *self = ArrivalGroups::default();
        self.current = Some(Group::of(send_us, arrival_us));
    }
}

impl Group {
    fn of(send_us: i64, arrival_us: i64) -> Self {
        Group {
            first_send_us: send_us,
            last_send_us: send_us,
            first_arrival_us: arrival_us,
            last_arrival_us: arrival_us,
        }
    }

    fn joins(&self, send_us: i64, arrival_us: i64) -> bool {
        let send_delta = send_us.saturating_sub(self.last_send_us);
        if send_delta == 0 {
            return true;
        }
        let arrival_delta = arrival_us.saturating_sub(self.last_arrival_us);
        let in_burst = arrival_delta.saturating_sub(send_delta) < 0
            && arrival_delta <= BURST_US
            && arrival_us.saturating_sub(self.first_arrival_us) < MAX_BURST_US;
        in_burst || send_us.saturating_sub(self.first_send_us) <= SEND_GROUP_US
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds packets `(send_ms, arrival_ms)`, returning the deltas in ms.
    fn deltas(packets: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let mut g = ArrivalGroups::default();
        packets
            .iter()
            .filter_map(|&(s, a)| g.on_received((s * 1000.0) as i64, (a * 1000.0) as i64))
            .map(|d| (d.send_us as f64 / 1000.0, d.arrival_us as f64 / 1000.0))
            .collect()
    }

    #[test]
    fn packets_sent_within_five_ms_are_one_group() {
        // Three frames 20 ms apart, three packets each 1 ms apart, 30 ms
        // one-way; the third frame's packets arrive 4 ms late (a queue).
        let mut p = Vec::new();
        for frame in 0..4 {
            for k in 0..3 {
                let s = frame as f64 * 20.0 + k as f64;
                let extra = if frame >= 2 { 4.0 } else { 0.0 };
                p.push((s, s + 30.0 + extra));
            }
        }
        // A group is complete once the next one starts: two deltas for four frames.
        assert_eq!(deltas(&p), [(20.0, 20.0), (20.0, 24.0)]);
    }

    #[test]
    fn a_burst_released_together_joins_the_group_ahead_of_it() {
        // Sent 10 ms apart but delivered back to back after a stall: one group.
        let p = [
            (0.0, 50.0),
            (10.0, 51.0),
            (20.0, 52.0),
            (40.0, 90.0),
            (60.0, 110.0),
        ];
        assert_eq!(deltas(&p), [(20.0, 38.0)]);
    }

    #[test]
    fn packets_sent_before_the_current_group_are_skipped() {
        let p = [
            (0.0, 10.0),
            (20.0, 30.0),
            (5.0, 31.0),
            (40.0, 50.0),
            (60.0, 70.0),
        ];
        assert_eq!(deltas(&p), [(20.0, 20.0), (20.0, 20.0)]);
    }

    #[test]
    fn a_receiver_clock_jump_restarts_grouping() {
        let p = [
            (0.0, 10.0),
            (20.0, 30.0),
            (40.0, 50.0),
            (60.0, 10_000.0),
            (80.0, 10_020.0),
            (100.0, 10_040.0),
            (120.0, 10_060.0),
        ];
        // Two deltas before the jump; the group at 60 ms is dropped with it and
        // grouping starts anew at 80 ms.
        assert_eq!(deltas(&p), [(20.0, 20.0), (20.0, 20.0), (20.0, 20.0)]);
    }
}
