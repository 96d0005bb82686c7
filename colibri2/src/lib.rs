//! Colibri2 over XMPP: the bridge API in the wire form stock Jicofo speaks
//! (protocol §4), so an operator can keep Prosody and Jicofo and swap in our
//! bridge. [`bridge::run`] logs the bridge into the XMPP server, joins Jicofo's
//! brewery room with its stats and answers Colibri2 requests with
//! [`sfu::bridge::Bridge`].

pub mod bridge;
pub mod codec;
pub mod scram;
pub mod xmpp;
