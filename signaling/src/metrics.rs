//! Prometheus counters of the signaling server.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Everything the server counts; registered into the front door's registry.
pub struct Metrics {
    pub sessions: IntGaugeVec,
    pub stanzas_in: IntCounter,
    pub stanzas_out: IntCounter,
    pub auth_failures: IntCounterVec,
    pub rooms: IntGauge,
    pub occupants: IntGauge,
    pub rooms_created: IntCounter,
    pub rooms_destroyed: IntCounter,
    pub stream_errors: IntCounterVec,
    pub dropped_stanzas: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let p = "oxbridge_xmpp_";
        Metrics {
            sessions: IntGaugeVec::new(
                Opts::new(format!("{p}sessions"), "Client sessions by transport"),
                &["transport"],
            )
            .expect("valid metric"),
            stanzas_in: IntCounter::new(
                format!("{p}stanzas_in_total"),
                "Stanzas received from clients and components",
            )
            .expect("valid metric"),
            stanzas_out: IntCounter::new(
                format!("{p}stanzas_out_total"),
                "Stanzas delivered to clients and components",
            )
            .expect("valid metric"),
            auth_failures: IntCounterVec::new(
                Opts::new(
                    format!("{p}auth_failures_total"),
                    "SASL failures by condition",
                ),
                &["condition"],
            )
            .expect("valid metric"),
            rooms: IntGauge::new(format!("{p}muc_rooms"), "MUC rooms that exist now")
                .expect("valid metric"),
            occupants: IntGauge::new(format!("{p}muc_occupants"), "Occupants in all rooms")
                .expect("valid metric"),
            rooms_created: IntCounter::new(format!("{p}muc_rooms_created_total"), "Rooms created")
                .expect("valid metric"),
            rooms_destroyed: IntCounter::new(
                format!("{p}muc_rooms_destroyed_total"),
                "Rooms destroyed",
            )
            .expect("valid metric"),
            stream_errors: IntCounterVec::new(
                Opts::new(
                    format!("{p}stream_errors_total"),
                    "Streams closed with an error, by condition",
                ),
                &["condition"],
            )
            .expect("valid metric"),
            dropped_stanzas: IntCounter::new(
                format!("{p}dropped_stanzas_total"),
                "Stanzas dropped because a session's queue was full",
            )
            .expect("valid metric"),
        }
    }

    /// Adds every metric to `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.sessions.clone()))?;
        registry.register(Box::new(self.stanzas_in.clone()))?;
        registry.register(Box::new(self.stanzas_out.clone()))?;
        registry.register(Box::new(self.auth_failures.clone()))?;
        registry.register(Box::new(self.rooms.clone()))?;
        registry.register(Box::new(self.occupants.clone()))?;
        registry.register(Box::new(self.rooms_created.clone()))?;
        registry.register(Box::new(self.rooms_destroyed.clone()))?;
        registry.register(Box::new(self.stream_errors.clone()))?;
        registry.register(Box::new(self.dropped_stanzas.clone()))?;
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
