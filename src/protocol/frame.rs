//! Frames on the server's socket: a 4-byte little-endian length, then one
//! message encoded with postcard. A frame over [`MAX_FRAME`], a short read or
//! bytes that do not decode are an error, never a panic (fuzzed:
//! `fuzz/fuzz_targets/protocol.rs`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;

/// The largest message either side accepts: a `SaveAll` of 100,000 profiles
/// fits.
pub const MAX_FRAME: usize = 256 << 20;

/// One message as a frame, ready to write.
pub fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let out = postcard::to_extend(msg, vec![0u8; 4])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    finish(out)
}

fn finish(mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// The message in one frame's payload.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> io::Result<T> {
    postcard::from_bytes(payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one frame's payload. `Ok(None)` at a clean end of stream (the peer
/// closed between frames).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Reads and decodes one message; end of stream is an error here.
pub fn read_message<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<T> {
    match read_frame(r)? {
        Some(p) => decode(&p),
        None => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Writes all of `bytes` with `MSG_NOSIGNAL`: a peer that went away is an
/// error here, not a SIGPIPE that kills the application.
pub fn send_all(sock: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    let s = socket2::SockRef::from(sock);
    while !bytes.is_empty() {
        match s.send_with_flags(bytes, libc::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Encodes and sends one message.
pub fn send_message<T: Serialize>(sock: &UnixStream, msg: &T) -> io::Result<()> {
    send_all(sock, &encode(msg)?)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    #[test]
    fn a_message_survives_a_round_trip() {
        let m = ToServer {
            call: 7,
            request: Request::Lookup {
                registry: 3,
                id: 42,
                token: Some(9),
            },
        };
        let f = encode(&m).unwrap();
        let back: ToServer = read_message(&mut &f[..]).unwrap();
        assert_eq!(back.call, 7);
        assert!(matches!(
            back.request,
            Request::Lookup {
                registry: 3,
                id: 42,
                token: Some(9)
            }
        ));
    }

    #[test]
    fn garbage_and_oversized_frames_are_errors() {
        assert!(read_message::<ToServer>(&mut &[3u8, 0, 0, 0, 0xff, 0xff, 0xff][..]).is_err());
        assert!(read_frame(&mut &[0xffu8, 0xff, 0xff, 0xff][..]).is_err());
        assert!(read_frame(&mut &[5u8, 0][..]).is_err());
        assert!(read_frame(&mut &[][..]).unwrap().is_none());
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert!(send_message(&a, &Hello::new()).is_err());
    }

    /// Real frames of each kind read back whole, one after another from one
    /// stream; with SIPPROFILE_WRITE_FUZZ_SEEDS naming a directory they are
    /// also written there as fuzzing seeds (`fuzz/seeds/protocol`).
    #[test]
    fn frames_of_each_kind_read_back_in_sequence() {
        let mut data = crate::profile::ProfileData::new(crate::profile::TypeInfo::ietf());
        data.aor = "sip:alice@example.com".into();
        let frames = [
            encode(&Hello::new()).unwrap(),
            encode(&ToServer {
                call: 1,
                request: Request::Save {
                    registry: 1,
                    item: Box::new(SaveItem {
                        token: 1,
                        data: data.clone(),
                        make_default: false,
                    }),
                },
            })
            .unwrap(),
            encode(&ToClient::Event {
                registry: 1,
                delivery: Delivery::Event {
                    id: 1,
                    event: Event::Registered,
                    snapshot: Some(std::sync::Arc::new(Snapshot {
                        data: Some(data),
                        seq: 9,
                        revision: 2,
                        info: Default::default(),
                        is_default: true,
                        enable_refusal: Some(Failure::new(Error::Argument, "no AOR")),
                    })),
                    published_ns: 5,
                },
            })
            .unwrap(),
        ];
        let stream: Vec<u8> = frames.concat();
        let mut input = &stream[..];
        assert_eq!(read_message::<Hello>(&mut input).unwrap(), Hello::new());
        let save: ToServer = read_message(&mut input).unwrap();
        assert!(matches!(save.request, Request::Save { registry: 1, .. }));
        let event: ToClient = read_message(&mut input).unwrap();
        assert!(matches!(
            event,
            ToClient::Event {
                registry: 1,
                delivery: Delivery::Event {
                    event: Event::Registered,
                    ..
                }
            }
        ));
        assert!(read_frame(&mut input).unwrap().is_none());
        if let Some(dir) = std::env::var_os("SIPPROFILE_WRITE_FUZZ_SEEDS") {
            for (i, f) in frames.iter().enumerate() {
                std::fs::write(std::path::Path::new(&dir).join(format!("seed-{i}")), f).unwrap();
            }
        }
    }
}
