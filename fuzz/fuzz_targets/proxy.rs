//! The PROXY protocol header parser (tcpserver -y) on arbitrary bytes.
//!
//! Never panics; a header it accepts is within the spec's bounds, parses
//! the same from exactly its own bytes, and every shorter prefix of it is
//! `Incomplete` (so the reader never consumes a byte past the header);
//! `Incomplete` is only ever said of bytes that still fit in a header.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tcpserver::proxy::{parse, Error, Header, V1_MAX, V2_MAX};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok((header, len)) => {
            assert!(len <= data.len() && len <= V2_MAX);
            let head = &data[..len];
            assert_eq!(parse(head), Ok((header, len)));
            if head.starts_with(b"P") {
                assert!(len <= V1_MAX && head.ends_with(b"\r\n"));
            }
            for n in 0..len {
                assert_eq!(parse(&data[..n]), Err(Error::Incomplete), "prefix {n}");
            }
            if let Header::Proxied {
                source,
                destination,
            } = header
            {
                // IPv4-mapped addresses are folded, as everywhere
                for a in [source, destination] {
                    assert_eq!(rgcore::ip::fold(a.ip()), a.ip());
                }
            }
        }
        Err(Error::Incomplete) => assert!(data.len() < V2_MAX),
        Err(_) => {}
    }
});
