//! rgstate's MySQL client fed arbitrary bytes as the server's side of a
//! login and two queries (greeting, auth switch, OK, error and result-set
//! packets): never a panic, every call ends (the bytes end: an error,
//! never a wait), and no row holds more than the bytes brought.
#![no_main]
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rgstate::mysql::{Conn, Login, Outcome};
use rgstate::net::Stream;

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
    let login = Login {
        user: "relaygate",
        password: "secret",
        database: "indimail",
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let Ok(mut conn) = Conn::login_over(Stream::Unix(ours), &login, deadline) else {
        return;
    };
    for sql in ["SELECT email FROM relay", "DELETE FROM relay"] {
        match conn.query(sql, deadline) {
            Ok(Outcome::Rows(rows)) => {
                let size: usize = rows.iter().flatten().flatten().map(String::len).sum();
                assert!(size <= data.len());
            }
            Ok(Outcome::Done(_)) => {}
            Err(_) => return,
        }
    }
});
