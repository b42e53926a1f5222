//! The SIP side: messages, URIs, digest, the per-profile registration state
//! machine and the engine thread that runs every registration of a server.

pub mod connections;
pub mod digest;
pub mod engine;
pub mod message;
pub mod netwatch;
pub mod registration;
pub mod resolve;
pub mod stun;
pub mod timers;
pub mod transport;
pub mod uas;
pub mod uri;
