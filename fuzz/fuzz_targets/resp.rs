//! rgstate's Redis client fed arbitrary bytes as the server's answers to a
//! pipeline of three commands: never a panic, every call ends (the bytes
//! end: an error, never a wait), and a length the bytes claim allocates no
//! more than the bytes bring.
#![no_main]
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rgstate::net::Stream;
use rgstate::resp::{Conn, Value};

fuzz_target!(|data: &[u8]| {
    // what one write into a socket pair takes at once
    if data.len() > 64 * 1024 {
        return;
    }
    let (ours, mut server) = UnixStream::pair().expect("socketpair");
    server.write_all(data).expect("write the answers");
    server
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut conn = Conn::over(Stream::Unix(ours));
    let requests: Vec<Vec<&[u8]>> = vec![vec![b"GET", b"rg:relay:192.0.2.1"]; 3];
    let deadline = Instant::now() + Duration::from_secs(10);
    if let Ok(replies) = conn.pipeline(&requests, deadline) {
        assert_eq!(replies.len(), 3);
        for r in &replies {
            if let Value::Bulk(b) = r {
                assert!(b.len() <= data.len());
            }
        }
    }
});
