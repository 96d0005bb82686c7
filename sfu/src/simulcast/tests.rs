use super::*;

const SSRCS: [u32; 3] = [1000, 1001, 1002];

/// One simulcast encoding of a synthetic sender: its own counters, as a
/// browser's encoders keep them.
struct Layer {
    index: u8,
    seq: u16,
    ts: u32,
    picture_id: u16,
    tl0: u8,
}

impl Layer {
    fn new(index: u8, seq: u16, ts: u32, picture_id: u16, tl0: u8) -> Layer {
        Layer {
            index,
            seq,
            ts,
            picture_id,
            tl0,
        }
    }

    /// The next frame as one packet: header and VP8 payload with a 15-bit
    /// picture ID and TL0PICIDX.
    fn frame(&mut self, key: bool) -> (Header, Vec<u8>) {
        let h = Header {
            ssrc: SSRCS[self.index as usize],
            seq: self.seq,
            timestamp: self.ts,
            marker: true,
        };
        let p = self.picture_id;
        let payload = vec![
            0x90,
            0xC0,
            0x80 | (p >> 8) as u8,
            p as u8,
            self.tl0,
            if key { 0x10 } else { 0x11 },
            0xEE,
        ];
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(3000);
        self.picture_id = (self.picture_id + 1) % 0x8000;
        self.tl0 = self.tl0.wrapping_add(1);
        (h, payload)
    }
}

fn send(
    fwd: &mut SimulcastForwarder,
    now: Instant,
    layer: &mut Layer,
    key: bool,
) -> Option<(Rewrite, Descriptor)> {
    let (h, mut payload) = layer.frame(key);
    match fwd.handle_packet(now, layer.index, &h, &payload) {
        Verdict::Drop => None,
        Verdict::Forward(r) => {
            r.patch(&mut payload);
            assert_eq!(
                payload[5..],
                [if key { 0x10 } else { 0x11 }, 0xEE],
                "payload untouched"
            );
            Some((r, Descriptor::parse(&payload).unwrap()))
        }
    }
}

#[test]
fn one_layer_reaches_the_receiver_and_only_from_a_key_frame() {
    let t0 = Instant::now();
    let mut fwd = SimulcastForwarder::new(SSRCS[0]);
    let mut l0 = Layer::new(0, 100, 5000, 10, 1);
    let mut l1 = Layer::new(1, 7000, 9000, 300, 40);
    fwd.set_target(Some(0));
    assert!(
        send(&mut fwd, t0, &mut l0, false).is_none(),
        "no start on a delta frame"
    );
    assert!(
        send(&mut fwd, t0, &mut l1, true).is_none(),
        "other layers never pass"
    );
    let (first, _) = send(&mut fwd, t0, &mut l0, true).unwrap();
    assert_eq!(first.ssrc, SSRCS[0]);
    let (next, _) = send(&mut fwd, t0, &mut l0, false).unwrap();
    assert_eq!(next.seq, first.seq.wrapping_add(1));
    assert_eq!(next.timestamp, first.timestamp.wrapping_add(3000));
    assert!(send(&mut fwd, t0, &mut l1, false).is_none());
}

#[test]
fn switching_up_waits_for_a_key_frame_and_continues_every_counter() {
    let t0 = Instant::now();
    let mut fwd = SimulcastForwarder::new(SSRCS[0]);
    // Counters far apart, one about to wrap, as independent encoders have them.
    let mut l0 = Layer::new(0, 65530, u32::MAX - 1000, 0x7FFE, 254);
    let mut l2 = Layer::new(2, 20_000, 123_456, 4000, 90);
    fwd.set_target(Some(0));
    send(&mut fwd, t0, &mut l0, true).unwrap();
    let mut last = None;
    for _ in 0..8 {
        last = send(&mut fwd, t0, &mut l0, false);
        send(&mut fwd, t0, &mut l2, false);
    }
    let (before, before_desc) = last.unwrap();

    fwd.set_target(Some(2));
    assert_eq!(
        fwd.poll_keyframe_request(t0),
        Some(2),
        "asks the sender for a key frame"
    );
    assert_eq!(
        fwd.poll_keyframe_request(t0 + Duration::from_millis(100)),
        None,
        "rate limited"
    );
    // Until layer 2's key frame, layer 0 keeps flowing.
    let (still, _) = send(&mut fwd, t0, &mut l0, false).unwrap();
    assert_eq!(still.seq, before.seq.wrapping_add(1));
    assert!(send(&mut fwd, t0, &mut l2, false).is_none());
    assert_eq!(
        fwd.poll_keyframe_request(t0 + KEYFRAME_REQUEST_INTERVAL),
        Some(2)
    );

    let t1 = t0 + Duration::from_millis(33);
    let (switched, desc) = send(&mut fwd, t1, &mut l2, true).unwrap();
    assert_eq!(fwd.current(), Some(2));
    assert_eq!(switched.ssrc, SSRCS[0], "always the source's first SSRC");
    assert_eq!(switched.seq, still.seq.wrapping_add(1), "no gap, no repeat");
    let dt = switched.timestamp.wrapping_sub(still.timestamp);
    assert!(
        (2900..=3100).contains(&dt),
        "timestamp advances with time: {dt}"
    );
    assert_eq!(
        desc.picture_id,
        Some((before_desc.picture_id.unwrap() + 2) % 0x8000),
        "picture id continues"
    );
    assert_eq!(
        desc.tl0picidx,
        Some(before_desc.tl0picidx.unwrap().wrapping_add(2))
    );
    assert!(
        send(&mut fwd, t1, &mut l0, false).is_none(),
        "the old layer stops"
    );
    let (after, after_desc) = send(&mut fwd, t1, &mut l2, false).unwrap();
    assert_eq!(after.seq, switched.seq.wrapping_add(1));
    assert_eq!(
        after_desc.picture_id,
        Some((desc.picture_id.unwrap() + 1) % 0x8000)
    );
    assert_eq!(
        fwd.poll_keyframe_request(t1 + Duration::from_secs(1)),
        None,
        "switch done"
    );
}

#[test]
fn loss_stays_visible_and_nacks_map_back_to_the_layer() {
    let t0 = Instant::now();
    let mut fwd = SimulcastForwarder::new(SSRCS[0]);
    let mut l1 = Layer::new(1, 50, 0, 1, 1);
    fwd.set_target(Some(1));
    let (a, _) = send(&mut fwd, t0, &mut l1, true).unwrap();
    l1.frame(false); // lost on the way to the bridge
    let (c, _) = send(&mut fwd, t0, &mut l1, false).unwrap();
    assert_eq!(
        c.seq,
        a.seq.wrapping_add(2),
        "the gap is kept for the receiver to NACK"
    );
    assert_eq!(
        fwd.original_seq(a.seq.wrapping_add(1)),
        Some((SSRCS[1], 51))
    );
    assert_eq!(
        fwd.original_seq(a.seq.wrapping_sub(1)),
        None,
        "before the switch"
    );
}

#[test]
fn late_packets_from_before_a_switch_and_a_stopped_target_are_dropped() {
    let t0 = Instant::now();
    let mut fwd = SimulcastForwarder::new(SSRCS[0]);
    let mut l0 = Layer::new(0, 10, 0, 1, 1);
    fwd.set_target(Some(0));
    let early = l0.frame(false);
    send(&mut fwd, t0, &mut l0, true).unwrap();
    let verdict = fwd.handle_packet(t0, 0, &early.0, &early.1);
    assert_eq!(verdict, Verdict::Drop);
    fwd.set_target(None);
    assert!(send(&mut fwd, t0, &mut l0, true).is_none());
    assert_eq!(fwd.poll_keyframe_request(t0), None);
}

#[test]
fn garbage_payloads_are_dropped() {
    let mut fwd = SimulcastForwarder::new(SSRCS[0]);
    fwd.set_target(Some(0));
    let h = Header {
        ssrc: SSRCS[0],
        seq: 1,
        timestamp: 1,
        marker: false,
    };
    for p in [&[][..], &[0x80][..], &[0x80, 0x80, 0x80][..]] {
        assert_eq!(fwd.handle_packet(Instant::now(), 0, &h, p), Verdict::Drop);
    }
}

#[test]
fn a_packet_that_came_before_its_key_frame_start_can_still_be_rewritten_for_a_nack() {
    let now = Instant::now();
    let mut fwd = SimulcastForwarder::new(SSRCS[0]);
    fwd.set_target(Some(0));
    let mut layer = Layer::new(0, 100, 9000, 5, 1);
    let (key_h, key_p) = layer.frame(true);
    let (early_h, early_p) = layer.frame(false);
    // The second packet overtook the key frame start: dropped, no mapping yet.
    assert_eq!(fwd.handle_packet(now, 0, &early_h, &early_p), Verdict::Drop);
    assert!(fwd.rewrite_of(&early_h, &early_p).is_none());
    let Verdict::Forward(key) = fwd.handle_packet(now, 0, &key_h, &key_p) else {
        panic!("the key frame start switches");
    };
    // Its number follows the start's; the receiver NACKs it and gets it.
    let late = fwd.rewrite_of(&early_h, &early_p).unwrap();
    assert_eq!(late.seq, key.seq.wrapping_add(1));
    assert_eq!(fwd.original_seq(late.seq), Some((SSRCS[0], early_h.seq)));
    // What it would have been forwarded as, had it come in order.
    let mut replay = SimulcastForwarder::new(SSRCS[0]);
    replay.set_target(Some(0));
    let _ = replay.handle_packet(now, 0, &key_h, &key_p);
    assert_eq!(
        replay.handle_packet(now, 0, &early_h, &early_p),
        Verdict::Forward(late)
    );
    // Nothing from before the start, or of another layer.
    let before = Header {
        seq: key_h.seq.wrapping_sub(1),
        ..key_h
    };
    assert!(fwd.rewrite_of(&before, &key_p).is_none());
    let other = Header {
        ssrc: SSRCS[1],
        ..early_h
    };
    assert!(fwd.rewrite_of(&other, &early_p).is_none());
}
