//! `POST /conference-request/v1` (protocol §2.1): the current client's HTTP
//! form of the conference request, for the web front door to mount.
//!
//! ```no_run
//! # fn run(focus: std::sync::Arc<focus::Focus>) {
//! let routes: axum::Router = focus::http::router(focus);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use crate::service::{Focus, RequestError};
use crate::start_muted::StartMutedPolicy;

/// Routes to mount into the front door.
pub fn router(focus: Arc<Focus>) -> Router {
    Router::new()
        .route("/conference-request/v1", post(conference_request))
        .with_state(focus)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    room: String,
    #[serde(default)]
    machine_uid: Option<String>,
    /// String values as the client sends them; numbers are taken too.
    #[serde(default)]
    properties: HashMap<String, serde_json::Value>,
}

async fn conference_request(
    State(focus): State<Arc<Focus>>,
    body: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            "a JSON body with a room is needed\n",
        )
            .into_response();
    };
    let _ = request.machine_uid;
    let properties: Vec<(&str, String)> = request
        .properties
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k.as_str(), s.clone()),
            other => (k.as_str(), other.to_string()),
        })
        .collect();
    let start_muted =
        StartMutedPolicy::from_properties(properties.iter().map(|(k, v)| (*k, v.as_str())));
    match focus.request(&request.room, start_muted).await {
        Ok(()) => Json(json!({
            "ready": true,
            "focusJid": focus.jid(),
            "properties": {"authentication": "false"},
        }))
        .into_response(),
        Err(e @ RequestError::BadRoom(_)) => {
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
