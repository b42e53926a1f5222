//! Everything the engine does with bytes from the network: parse a message
//! (datagram or stream-framed) and read the headers registration uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipprofile::sip::message::masked_for_log;
use sipprofile::sip::message::{Message, NameAddr, split_list};
use sipprofile::sip::transport::{Frame, Framer, frame};
use sipprofile::sip::uri::Uri;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    while let Frame::Message(m) = frame(&mut buf) {
        let _ = Message::parse(&m);
    }
    // The same bytes in uneven chunks frame the same messages.
    let mut framer = Framer::default();
    'chunks: for chunk in data.chunks(1 + data.first().map_or(0, |b| usize::from(*b) % 97)) {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Frame::Message(m) => {
                    let _ = Message::parse(&m);
                }
                Frame::NeedMore => break,
                Frame::Invalid => break 'chunks, // the engine closes the stream
            }
        }
    }
    assert!(
        framer.examined <= 8 * data.len() as u64 + 8,
        "framing is not linear"
    );
    let _ = masked_for_log(&String::from_utf8_lossy(data));
    if let Ok(msg) = Message::parse(data) {
        let _ = msg.status();
        let _ = msg.cseq();
        let _ = msg.tag("To");
        if let Some(via) = msg.top_via() {
            let _ = via.param("branch");
            let _ = via.param("received");
            let _ = via.param("rport");
        }
        for c in msg.header_list("Contact") {
            if let Some(na) = NameAddr::parse(c) {
                let _ = na.param("expires");
                let _ = Uri::parse(na.uri).map(|u| u.to_string());
            }
        }
        for h in [
            "Service-Route",
            "P-Associated-URI",
            "Min-Expires",
            "Retry-After",
        ] {
            for v in msg.header_list(h) {
                let _ = split_list(v);
            }
        }
    }
});
