//! The bridge channel's JSON messages (protocol §5), in both dialects.
//!
//! The December 2021 client speaks of endpoints (`onStageEndpoints`,
//! `LastNEndpointsChangeEvent`, `SenderVideoConstraints`); the current one of
//! sources (`onStageSources`, `ForwardedSources`, `SenderSourceConstraints`).
//! Incoming messages of either form parse into one [`ClientMessage`];
//! outgoing ones render in the [`Dialect`] of the endpoint they go to.
//!
//! ```
//! use sfu::channel::{BridgeMessage, ClientMessage, Dialect};
//! let m = ClientMessage::parse(r#"{"colibriClass":"LastNChangedEvent","lastN":3}"#).unwrap();
//! assert_eq!(m, ClientMessage::LastN(3));
//! let out = BridgeMessage::Forwarded { endpoints: vec!["ab12".into()], sources: vec!["ab12-v0".into()] };
//! assert_eq!(out.to_json(Dialect::Endpoints), r#"{"colibriClass":"LastNEndpointsChangeEvent","lastNEndpoints":["ab12"]}"#);
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Largest message accepted from a client, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Which vocabulary an endpoint understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Keyed by endpoint id: clients without source names (2021).
    Endpoints,
    /// Keyed by source name: current clients.
    Sources,
}

/// Why a message was refused; the text goes back to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("not a JSON object")]
    NotAnObject,
    #[error("no colibriClass")]
    NoClass,
    #[error("{class}: field {field} missing or of the wrong type")]
    BadField {
        class: &'static str,
        field: &'static str,
    },
}

/// A receiver's wish for one source's (or endpoint's) video.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constraint {
    /// Largest height wanted; 0 means no video.
    pub max_height: u32,
    pub max_frame_rate: Option<f64>,
}

/// `ReceiverVideoConstraints`, either form; keys are source names or
/// endpoint ids as `keyed_by` says.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoConstraints {
    pub keyed_by: Dialect,
    pub last_n: Option<i32>,
    pub selected: Vec<String>,
    pub on_stage: Vec<String>,
    pub default: Option<Constraint>,
    pub constraints: BTreeMap<String, Constraint>,
    pub assumed_bandwidth_bps: Option<u64>,
}

/// What a sender says its video is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoType {
    Camera,
    Desktop,
    DesktopHighFps,
    None,
}

/// A message from a client to the bridge.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// Relayed with `from` set; `to` empty means everyone else.
    EndpointMessage {
        to: String,
        payload: Value,
    },
    /// Relayed with `from` set to those who receive the sender.
    EndpointStats(Map<String, Value>),
    LastN(i32),
    ReceiverVideoConstraints(VideoConstraints),
    /// `SelectedEndpointsChangedEvent` / `SelectedEndpointChangedEvent` (2021).
    SelectedEndpoints(Vec<String>),
    /// `ReceiverVideoConstraint`: one height for everything (2021).
    MaxHeight(u32),
    /// `VideoTypeMessage` (no source: the sender's only video) or `SourceVideoTypeMessage`.
    VideoType {
        source: Option<String>,
        video_type: VideoType,
    },
    ClientHello,
    /// A class this bridge does not handle; ignored.
    Unknown(String),
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<ClientMessage, Error> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(Error::TooLarge);
        }
        let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(text) else {
            return Err(Error::NotAnObject);
        };
        let Some(Value::String(class)) = m.remove("colibriClass") else {
            return Err(Error::NoClass);
        };
        Ok(match class.as_str() {
            "EndpointMessage" => ClientMessage::EndpointMessage {
                to: match m.remove("to") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s,
                    Some(_) => return Err(bad("EndpointMessage", "to")),
                },
                payload: m.remove("msgPayload").unwrap_or(Value::Null),
            },
            "EndpointStats" => {
                m.remove("from");
                ClientMessage::EndpointStats(m)
            }
            "LastNChangedEvent" => {
                ClientMessage::LastN(int(&m, "lastN").ok_or(bad("LastNChangedEvent", "lastN"))?)
            }
            "ReceiverVideoConstraints" => {
                ClientMessage::ReceiverVideoConstraints(video_constraints(&m)?)
            }
            "SelectedEndpointsChangedEvent" => ClientMessage::SelectedEndpoints(
                strings(&m, "selectedEndpoints")
                    .ok_or(bad("SelectedEndpointsChangedEvent", "selectedEndpoints"))?,
            ),
            "SelectedEndpointChangedEvent" => ClientMessage::SelectedEndpoints(
                m.get("selectedEndpoint")
                    .and_then(Value::as_str)
                    .map(|s| vec![s.to_owned()])
                    .unwrap_or_default(),
            ),
            "ReceiverVideoConstraint" => ClientMessage::MaxHeight(
                int(&m, "maxFrameHeight")
                    .map(|h| h.max(0) as u32)
                    .ok_or(bad("ReceiverVideoConstraint", "maxFrameHeight"))?,
            ),
            "VideoTypeMessage" | "SourceVideoTypeMessage" => {
                let video_type = m
                    .get("videoType")
                    .and_then(Value::as_str)
                    .and_then(video_type)
                    .ok_or(bad("VideoTypeMessage", "videoType"))?;
                let source = m
                    .get("sourceName")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                ClientMessage::VideoType { source, video_type }
            }
            "ClientHello" => ClientMessage::ClientHello,
            _ => ClientMessage::Unknown(class),
        })
    }
}

fn bad(class: &'static str, field: &'static str) -> Error {
    Error::BadField { class, field }
}

fn int(m: &Map<String, Value>, key: &str) -> Option<i32> {
    m.get(key)?
        .as_i64()
        .map(|v| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
}

fn strings(m: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(_) => None,
    }
}

fn constraint(v: &Value) -> Option<Constraint> {
    let o = v.as_object()?;
    Some(Constraint {
        max_height: o.get("maxHeight")?.as_i64()?.clamp(0, u32::MAX as i64) as u32,
        max_frame_rate: o.get("maxFrameRate").and_then(Value::as_f64),
    })
}

fn video_type(s: &str) -> Option<VideoType> {
    // The bridge reads enum values case-insensitively, as JVB does.
    match s.to_ascii_lowercase().as_str() {
        "camera" => Some(VideoType::Camera),
        "desktop" => Some(VideoType::Desktop),
        "desktop_high_fps" => Some(VideoType::DesktopHighFps),
        "none" => Some(VideoType::None),
        _ => None,
    }
}

fn video_constraints(m: &Map<String, Value>) -> Result<VideoConstraints, Error> {
    const C: &str = "ReceiverVideoConstraints";
    let by_endpoint = ["selectedEndpoints", "onStageEndpoints"]
        .iter()
        .any(|k| m.contains_key(*k));
    let (keyed_by, selected, on_stage) = if by_endpoint {
        (Dialect::Endpoints, "selectedEndpoints", "onStageEndpoints")
    } else {
        (Dialect::Sources, "selectedSources", "onStageSources")
    };
    let mut constraints = BTreeMap::new();
    match m.get("constraints") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                constraints.insert(k.clone(), constraint(v).ok_or(bad(C, "constraints"))?);
            }
        }
        Some(_) => return Err(bad(C, "constraints")),
    }
    Ok(VideoConstraints {
        keyed_by,
        last_n: int(m, "lastN"),
        selected: strings(m, selected).ok_or(bad(C, "selected"))?,
        on_stage: strings(m, on_stage).ok_or(bad(C, "onStage"))?,
        default: match m.get("defaultConstraints") {
            None | Some(Value::Null) => None,
            Some(v) => Some(constraint(v).ok_or(bad(C, "defaultConstraints"))?),
        },
        constraints,
        assumed_bandwidth_bps: m.get("assumedBandwidthBps").and_then(Value::as_u64),
    })
}

/// A message from the bridge to one client.
#[derive(Clone, Debug, PartialEq)]
pub enum BridgeMessage {
    ServerHello,
    DominantSpeaker {
        speaker: String,
        previous: Vec<String>,
        silence: bool,
    },
    /// The bridge stopped (or resumed) receiving media from `endpoint`.
    Connectivity {
        endpoint: String,
        active: bool,
    },
    EndpointMessage {
        from: String,
        to: String,
        payload: Value,
    },
    EndpointStats {
        from: String,
        stats: Map<String, Value>,
    },
    /// What this receiver is sent video of, by endpoint and by source.
    Forwarded {
        endpoints: Vec<String>,
        sources: Vec<String>,
    },
    /// To a sender: the most any receiver wants of this source.
    SenderConstraint {
        source: String,
        max_height: u32,
    },
    /// The bridge's estimate of this receiver's downlink.
    ConnectionStats {
        downlink_bps: u64,
    },
    /// A message the bridge could not take, and why.
    Error {
        message: String,
    },
}

impl BridgeMessage {
    /// The JSON text for an endpoint speaking `dialect`.
    pub fn to_json(&self, dialect: Dialect) -> String {
        let v = match self {
            BridgeMessage::ServerHello => json!({"colibriClass": "ServerHello"}),
            BridgeMessage::DominantSpeaker {
                speaker,
                previous,
                silence,
            } => json!({
                "colibriClass": "DominantSpeakerEndpointChangeEvent",
                "dominantSpeakerEndpoint": speaker,
                "previousSpeakers": previous,
                "silence": silence,
            }),
            // The client compares with the string "true".
            BridgeMessage::Connectivity { endpoint, active } => json!({
                "colibriClass": "EndpointConnectivityStatusChangeEvent",
                "endpoint": endpoint,
                "active": active.to_string(),
            }),
            BridgeMessage::EndpointMessage { from, to, payload } => json!({
                "colibriClass": "EndpointMessage", "from": from, "to": to, "msgPayload": payload,
            }),
            BridgeMessage::EndpointStats { from, stats } => {
                let mut m = stats.clone();
                m.insert("colibriClass".into(), "EndpointStats".into());
                m.insert("from".into(), from.clone().into());
                Value::Object(m)
            }
            BridgeMessage::Forwarded { endpoints, sources } => match dialect {
                Dialect::Endpoints => json!({
                    "colibriClass": "LastNEndpointsChangeEvent", "lastNEndpoints": endpoints,
                }),
                Dialect::Sources => json!({
                    "colibriClass": "ForwardedSources", "forwardedSources": sources,
                }),
            },
            BridgeMessage::SenderConstraint { source, max_height } => match dialect {
                Dialect::Endpoints => json!({
                    "colibriClass": "SenderVideoConstraints",
                    "videoConstraints": {"idealHeight": max_height},
                }),
                Dialect::Sources => json!({
                    "colibriClass": "SenderSourceConstraints",
                    "sourceName": source, "maxHeight": max_height,
                }),
            },
            BridgeMessage::ConnectionStats { downlink_bps } => json!({
                "colibriClass": "ConnectionStats", "estimatedDownlinkBandwidth": downlink_bps,
            }),
            BridgeMessage::Error { message } => json!({
                "colibriClass": "Error", "error": message,
            }),
        };
        v.to_string()
    }
}

#[cfg(test)]
mod tests;
