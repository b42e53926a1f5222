//! The server's socket protocol: whatever bytes a peer sends, framing and
//! decoding return a message or an error, never a panic or an unbounded
//! allocation; what decodes encodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipprofile::protocol::frame::{decode, encode, read_frame};
use sipprofile::protocol::{Hello, ToClient, ToServer, Welcome};

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(Some(payload)) = read_frame(&mut input) {
        if let Ok(m) = decode::<ToServer>(&payload) {
            let _ = encode(&m);
        }
        if let Ok(m) = decode::<ToClient>(&payload) {
            let _ = encode(&m);
        }
        let _ = decode::<Hello>(&payload);
        let _ = decode::<Welcome>(&payload);
    }
});
