//! What a router counts: datagrams and packets through it, and what it has.

/// Counters of what happened to datagrams and packets.
#[derive(Debug, Default, Clone, Copy)]
pub struct RouterStats {
    pub datagrams_in: u64,
    /// Datagrams no endpoint claims (unknown address, unknown ufrag).
    pub unroutable: u64,
    /// Datagrams an endpoint's stack refused (bad STUN integrity, bad SRTP tag, garbage).
    pub rejected: u64,
    pub bytes_in: u64,
    pub packets_forwarded: u64,
    /// Key frame requests (PLI) the bridge sent to senders.
    pub keyframe_requests: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// NACKs receivers sent the bridge, and the packets they reported lost.
    pub nacks_received: u64,
    /// Retransmissions the bridge sent in answer to them.
    pub retransmissions: u64,
    pub packets_lost_reported: u64,
    /// Endpoints whose ICE connectivity failed (consent lost, never connected).
    pub ice_failures: u64,
    /// Endpoints whose DTLS was refused: the remote certificate was not the signalled one.
    pub dtls_failures: u64,
    /// Endpoints whose ICE connected, each counted once.
    pub ice_succeeded: u64,
    /// Media and RTCP not sent to endpoints that lost consent.
    pub dropped_no_consent: u64,
    /// Conferences and endpoints now.
    pub conferences: usize,
    pub endpoints: usize,
    pub largest_conference: usize,
    /// Endpoints whose audio, or video, arrived in the last two seconds.
    pub endpoints_sending_audio: usize,
    pub endpoints_sending_video: usize,
    /// Conferences where nobody sends, and their endpoints.
    pub inactive_conferences: usize,
    pub inactive_endpoints: usize,
    /// Endpoints sending nothing in a conference where others send.
    pub receive_only_endpoints: usize,
    /// Since the start.
    pub conferences_created: u64,
    pub endpoints_created: u64,
}

impl RouterStats {
    /// Adds another router's counters to these (gauges too, largest by max).
    pub fn add(&mut self, o: &RouterStats) {
        self.datagrams_in += o.datagrams_in;
        self.unroutable += o.unroutable;
        self.rejected += o.rejected;
        self.bytes_in += o.bytes_in;
        self.packets_forwarded += o.packets_forwarded;
        self.keyframe_requests += o.keyframe_requests;
        self.datagrams_out += o.datagrams_out;
        self.bytes_out += o.bytes_out;
        self.nacks_received += o.nacks_received;
        self.retransmissions += o.retransmissions;
        self.packets_lost_reported += o.packets_lost_reported;
        self.ice_failures += o.ice_failures;
        self.ice_succeeded += o.ice_succeeded;
        self.dtls_failures += o.dtls_failures;
        self.dropped_no_consent += o.dropped_no_consent;
        self.conferences += o.conferences;
        self.endpoints += o.endpoints;
        self.largest_conference = self.largest_conference.max(o.largest_conference);
        self.endpoints_sending_audio += o.endpoints_sending_audio;
        self.endpoints_sending_video += o.endpoints_sending_video;
        self.inactive_conferences += o.inactive_conferences;
        self.inactive_endpoints += o.inactive_endpoints;
        self.receive_only_endpoints += o.receive_only_endpoints;
        self.conferences_created += o.conferences_created;
        self.endpoints_created += o.endpoints_created;
    }
}
