//! The envelope address parser and the relay decision on arbitrary bytes.
//!
//! Input: `MAIL argument \n RCPT argument`. Never panics; and whatever the
//! bytes, an unauthenticated stranger gets a recipient accepted only for a
//! local domain (or as a listed relaymailfrom sender), with the address
//! checked being the address queued.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rgpolicy::addr::{parse_mail, parse_rcpt, Path};
use rgpolicy::controls::Controls;
use rgpolicy::decide::{decide_rcpt, Client, Rule};

/// A fixed control directory, written once per process.
fn control_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rgpolicy-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, text) in [
            ("me", "mx.example.org\n"),
            (
                "rcpthosts",
                "example.org\nmx.example.org\n.lists.example.org\n",
            ),
            ("relaymailfrom", "@allowed.example\n"),
            ("badmailfrom", "@*.spam.example\n"),
            ("badrcptto", "trap@example.org\n"),
        ] {
            std::fs::write(dir.join(name), text).expect("control file");
        }
        dir
    })
}

fn is_local(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    d == "example.org" || d == "mx.example.org" || d.ends_with(".lists.example.org")
}

fn stranger() -> Client {
    Client {
        ip: rgcore::ip::parse("203.0.113.9"),
        local_ip: rgcore::ip::parse("192.0.2.25"),
        ..Client::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_mail(data);
    let _ = parse_rcpt(data);
    let (from, to) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"<>"[..], data),
    };
    let (Ok(sender), Ok(rcpt)) = (parse_mail(from), parse_rcpt(to)) else {
        return;
    };
    let mut ctl = Controls::with_databytes_env(control_dir().clone(), None);
    let d =
        decide_rcpt(&stranger(), &sender.path, &rcpt.path, &mut ctl).expect("controls readable");
    if let Path::Mailbox(m) = &rcpt.path {
        // the first look-ups scan the text, later ones use the index: same answers
        let first = ctl.in_rcpthosts(&m.domain).expect("rcpthosts");
        for _ in 0..5 {
            assert_eq!(ctl.in_rcpthosts(&m.domain).expect("rcpthosts"), first);
        }
        if rgpolicy::addr::literal_ip(&m.domain).is_none() {
            assert_eq!(first, is_local(&m.domain), "{}", m.domain);
        }
    }
    let Some(queued) = d.queued() else {
        return;
    };
    assert_eq!(queued, rcpt.path.queued());
    if d.rule == Rule::Relaymailfrom {
        // the one relay grant a stranger can have: the listed sender domain
        let Path::Mailbox(s) = &sender.path else {
            panic!("null sender relayed")
        };
        let dom = s.domain.to_ascii_lowercase();
        assert_eq!(dom.strip_suffix('.').unwrap_or(&dom), "allowed.example");
        return;
    }
    match &rcpt.path {
        Path::Postmaster => assert_eq!(d.rule, Rule::Postmaster),
        Path::Mailbox(m) => {
            assert_eq!(d.rule, Rule::Rcpthosts, "{d:?}");
            assert_eq!(queued.matches('@').count(), 1, "{queued}");
            assert!(!m.local.contains(['%', '!', '@']));
            let ours = rgpolicy::addr::literal_ip(&m.domain).is_some();
            assert!(ours || is_local(&m.domain), "{queued}");
        }
        Path::Null => panic!("null recipient accepted"),
    }
});
