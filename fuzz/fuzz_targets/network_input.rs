//! The other bytes the engine takes from the network: STUN answers to its
//! keep-alives, requests sent to its Contact (and the response it builds),
//! and the kernel's rtnetlink messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipprofile::sip::message::Message;
use sipprofile::sip::{netwatch, stun, uas};

fuzz_target!(|data: &[u8]| {
    if stun::is_stun(data) {
        let _ = stun::binding_response(data);
    }
    if let Ok(msg) = Message::parse(data) {
        let peer = "192.0.2.1:5060".parse().unwrap();
        if let Some(response) = uas::answer(&msg, peer, |u| u.len() % 2 == 0) {
            // What we send must parse as a response.
            let r = Message::parse(&response).expect("our response parses");
            assert!(r.status().is_some());
        }
    }
    let mut changes = Vec::new();
    netwatch::parse_all(data, &mut changes);
});
