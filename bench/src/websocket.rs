//! WebSocket settings shared by the bench's XMPP and bridge-channel clients.

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Small buffers: tungstenite zeroes its read buffer (128 KiB by default)
/// every time the stream is polled, which cost the generator a third of its
/// CPU; stanzas and bridge messages are a few hundred bytes each.
pub(crate) fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(8192)
}
