//! The agent's control socket (`agent/src/control/proto/`): framing and
//! request decoding, as the daemon reads what a local client writes.
//!
//! First byte even: the rest is the byte stream a client writes to the
//! daemon; frames are read as requests under `MAX_REQUEST` until the
//! stream ends or a frame is refused. Odd: the same for replies under
//! `MAX_REPLY`, as the CLI reads them.
//!
//! Properties: a length over the cap is refused before its body is read;
//! a decoded message written with `write_frame` reads back to the same
//! JSON; and reading never consumes more bytes than the stream holds.

#![no_main]

use cyrcles_agent::control::proto::{
    FrameError, MAX_REPLY, MAX_REQUEST, Reply, Request, read_frame, write_frame,
};
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(
    init: cyrcles_fuzz::write_seeds("control", cyrcles_fuzz::seeds::control_seeds),
    |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        stream::<Request>(rest, MAX_REQUEST);
    } else {
        stream::<Reply>(rest, MAX_REPLY);
    }
    }
);

fn stream<T: Serialize + DeserializeOwned>(data: &[u8], max: usize) {
    let mut reader: &[u8] = data;
    for _ in 0..8 {
        let before = reader.len();
        let header = reader
            .get(..4)
            .map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize);
        match block_on(read_frame::<_, T>(&mut reader, max)) {
            Ok(None) => {
                assert!(before < 4, "clean end reported with a whole header left");
                return;
            }
            Ok(Some(msg)) => {
                let len = header.unwrap_or_else(|| panic!("a frame without a header"));
                assert!(len <= max);
                assert_eq!(before - reader.len(), 4 + len, "frame length not honoured");
                round_trip(&msg, max);
            }
            Err(FrameError::TooLarge(n)) => {
                assert_eq!(Some(n), header);
                assert!(n > max);
                // Nothing past the header was read.
                assert_eq!(before - reader.len(), 4);
                return;
            }
            Err(_) => return,
        }
    }
}

fn round_trip<T: Serialize + DeserializeOwned>(msg: &T, max: usize) {
    let json = serde_json::to_vec(msg).unwrap_or_else(|e| panic!("serialize: {e}"));
    let mut buf = Vec::new();
    block_on(write_frame(&mut buf, msg)).unwrap_or_else(|e| panic!("write_frame: {e}"));
    if json.len() > max {
        // Re-encoding may grow (escapes are normalized); nothing to read back.
        return;
    }
    let mut r: &[u8] = &buf;
    let back: T = block_on(read_frame(&mut r, max))
        .unwrap_or_else(|e| panic!("read back: {e}"))
        .unwrap_or_else(|| panic!("read back: nothing"));
    let again = serde_json::to_vec(&back).unwrap_or_else(|e| panic!("serialize again: {e}"));
    assert_eq!(json, again, "a message does not survive its own framing");
    assert!(r.is_empty());
}
