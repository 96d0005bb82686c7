//! The signaling server's HTTP face, mounted by the web front door:
//! `/xmpp-websocket`, `/http-bind`, and Prosody's `mod_muc_size` API
//! (`/room-size`, `/room`, `/sessions`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use crate::hub::Hub;
use crate::transport::{bosh, websocket};

/// State the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub bosh: Arc<bosh::BoshSessions>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The routes of the signaling server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/xmpp-websocket", get(websocket::handler))
        .route(
            "/http-bind",
            get(bosh::get).post(bosh::post).options(bosh::options),
        )
        .route("/room-size", get(room_size))
        .route("/room", get(room))
        .route("/sessions", get(sessions))
        .with_state(state)
}

/// Finds the room named by `?room=&domain=` as `mod_muc_size` does.
async fn snapshot(
    state: &AppState,
    q: &HashMap<String, String>,
) -> Result<crate::muc::RoomSnapshot, Response> {
    let Some(room) = q.get("room").filter(|r| !r.is_empty()) else {
        return Err((StatusCode::BAD_REQUEST, "room parameter missing\n").into_response());
    };
    if let Some(domain) = q.get("domain")
        && !domain.eq_ignore_ascii_case(&state.hub.env.domain)
    {
        return Err(StatusCode::NOT_FOUND.into_response());
    }
    state
        .hub
        .muc
        .snapshot(room)
        .await
        .ok_or_else(|| StatusCode::NOT_FOUND.into_response())
}

/// `GET /room-size?room=&domain=` → `{"participants":N}` (focus not counted).
async fn room_size(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match snapshot(&state, &q).await {
        Ok(s) => Json(serde_json::json!({ "participants": s.participants.len() })).into_response(),
        Err(r) => r,
    }
}

/// `GET /room?room=&domain=` → the occupants (focus not listed).
async fn room(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    match snapshot(&state, &q).await {
        Ok(s) => {
            let list: Vec<_> = s
                .participants
                .into_iter()
                .map(|(jid, name, email)| serde_json::json!({ "jid": jid, "display_name": name, "email": email }))
                .collect();
            Json(list).into_response()
        }
        Err(r) => r,
    }
}

/// `GET /sessions` → the number of client sessions, as text.
async fn sessions(State(state): State<AppState>) -> String {
    state.hub.session_count().to_string()
}
