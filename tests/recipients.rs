//! Recipient validation at RCPT (issue 11 item 7, SPEC section 8
//! `recipients` and `recipientcheck`): real clients through tcpserver +
//! smtpd on loopback, the list as text and as mkcdb's cdb, and a real
//! Dovecot LMTP server probed for users it knows, refusing one it does
//! not, down (450), and answers cached in STATEDIR until they expire.

#[path = "smtpd_support/mod.rs"]
mod support;

#[path = "peers/mod.rs"]
mod peers;

use std::fs;
use std::time::{Duration, Instant};

use relaygate::{bin, need, TempDir};
use support::*;

/// One RCPT per address in one transaction from `src`; the replies.
fn rcpts(mx: &Mx, src: &str, addrs: &[&str]) -> Vec<String> {
    let mut c = mx.client(src);
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c
        .cmd("MAIL FROM:<sender@elsewhere.test>")
        .starts_with("250"));
    let out = addrs
        .iter()
        .map(|a| c.cmd(&format!("RCPT TO:<{a}>")))
        .collect();
    c.cmd("QUIT");
    out
}

fn assert_codes(replies: &[String], addrs: &[&str], want: &[&str]) {
    for ((r, a), w) in replies.iter().zip(addrs).zip(want) {
        assert!(r.starts_with(w), "RCPT {a}: want {w}, got {r:?}");
    }
}

const LIST: &str = "# our users\njoe@example.org\nAnn@Example.ORG\n@any.example.org\n";

/// The list's verdicts, whichever form smtpd reads it from.
fn check_list(mx: &Mx) {
    let addrs = [
        "joe@example.org",
        "JOE@Example.Org",
        "ann@example.org",
        "bob@example.org",
        "whoever@any.example.org",
        "someone@sub.example.org",
        "x@backup.example.net",
        "postmaster@example.org",
    ];
    let r = rcpts(mx, "127.0.0.21", &addrs);
    let want = ["250", "250", "250", "550 5.1.1", "250", "250", "250", "250"];
    assert_codes(&r, &addrs, &want);
    let log = mx.log_with("rcpt=<bob@example.org> verdict=refused");
    assert!(
        log.contains("rcpt=<bob@example.org> verdict=refused rule=recipients check=list"),
        "{log}"
    );
}

#[test]
fn recipients_text_list() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default().control("recipients", LIST));
    check_list(&mx);
}

#[test]
fn recipients_cdb_from_mkcdb_and_a_newer_text_wins() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default());
    fs::write(mx.control.join("recipients"), LIST).unwrap();
    let out = std::process::Command::new(bin("mkcdb"))
        .arg(mx.control.join("recipients"))
        .output()
        .unwrap();
    assert!(out.status.success(), "mkcdb: {out:?}");
    // the cdb alone answers
    fs::remove_file(mx.control.join("recipients")).unwrap();
    check_list(&mx);
    // an address added to the text after the cdb was built counts at once
    fs::write(
        mx.control.join("recipients"),
        format!("{LIST}bob@example.org\n"),
    )
    .unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    fs::File::options()
        .write(true)
        .open(mx.control.join("recipients.cdb"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let r = rcpts(&mx, "127.0.0.21", &["bob@example.org", "eve@example.org"]);
    assert_codes(&r, &["bob", "eve"], &["250", "550 5.1.1"]);
}

#[test]
fn unknown_recipients_count_toward_the_error_limit() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default().control("recipients", LIST));
    let mut c = mx.client("127.0.0.22");
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<>").starts_with("250"));
    for i in 0..19 {
        let r = c.cmd(&format!("RCPT TO:<guess{i}@example.org>"));
        assert!(r.starts_with("550 5.1.1"), "{i}: {r}");
    }
    let r = c.cmd("RCPT TO:<guess19@example.org>");
    assert!(r.starts_with("550 5.1.1"), "{r}");
    assert!(c.reply().starts_with("421 4.7.0 too many errors"));
    assert!(c.closed());
}

/// Dovecot LMTP knowing joe@local.test, and an smtpd whose local domain
/// local.test is routed to it with `recipientcheck lmtp 2`.
struct LmtpSetup {
    mx: Mx,
    lmtp: Option<peers::lmtp::Lmtp>,
    state: TempDir,
    /// Dovecot's files; dropped after it (fields drop in order).
    _tmp: TempDir,
}

fn with_lmtp(extra: &[(&str, &str)]) -> Option<LmtpSetup> {
    if !need("tcpserver") {
        return None;
    }
    let tmp = TempDir::new("recipients-lmtp");
    let lmtp = peers::lmtp::Lmtp::start(&tmp, &["joe@local.test"])?;
    let state = TempDir::new("recipients-state");
    let deny = state.join("deny");
    fs::create_dir_all(state.join("state")).unwrap();
    fs::create_dir_all(&deny).unwrap();
    fs::create_dir_all(state.join("relay")).unwrap();
    let mut setup = Setup::default()
        .control("rcpthosts", "example.org\nlocal.test\n")
        .control(
            "lmtproutes",
            &format!("local.test:{}\n", lmtp.socket_path().display()),
        )
        .control("recipientcheck", "lmtp 2\n")
        .env("STATEDIR", state.join("state").to_str().unwrap())
        .env("DENYDIR", deny.to_str().unwrap())
        .env("RELAYDIR", state.join("relay").to_str().unwrap());
    for (k, v) in extra {
        setup = setup.control(k, v);
    }
    setup.before = vec!["relaycheck".into()];
    let mx = Mx::start(setup);
    Some(LmtpSetup {
        mx,
        lmtp: Some(lmtp),
        state,
        _tmp: tmp,
    })
}

#[test]
fn lmtp_probe_known_unknown_cache_expiry_and_down() {
    let Some(mut t) = with_lmtp(&[]) else { return };
    let mx = &t.mx;
    let addrs = [
        "joe@local.test",
        "JOE@LOCAL.TEST",
        "bob@local.test",
        "anyone@example.org",
    ];
    let r = rcpts(mx, "127.0.0.23", &addrs);
    // Dovecot folds user names to lower case (auth_username_format %Lu)
    assert_codes(&r, &addrs, &["250", "250", "550 5.1.1", "250"]);
    let log = mx.log_with("rcpt=<bob@local.test> verdict=refused");
    assert!(
        log.contains("rcpt=<bob@local.test> verdict=refused rule=recipients check=lmtp"),
        "{log}"
    );
    assert!(
        log.contains("event=recipient_probe rcpt=<bob@local.test> reply=550"),
        "{log}"
    );

    // bob becomes a user: the cached "unknown" holds until its 2 s pass
    let lmtp = t.lmtp.as_ref().unwrap();
    let users = lmtp.dir.join("users");
    let mut u = fs::read_to_string(&users).unwrap();
    u.push_str("bob@local.test:::::::\n");
    fs::write(&users, u).unwrap();
    let learned = Instant::now();
    let r = rcpts(mx, "127.0.0.23", &["bob@local.test"]);
    assert!(r[0].starts_with("550 5.1.1"), "cached answer: {r:?}");
    assert!(
        mx.log_with("check=lmtp cached=yes").contains(
            "rcpt=<bob@local.test> verdict=refused rule=recipients check=lmtp cached=yes"
        ),
        "the second answer came from the cache"
    );
    std::thread::sleep(Duration::from_millis(2200).saturating_sub(learned.elapsed()));
    let r = rcpts(mx, "127.0.0.23", &["bob@local.test"]);
    assert!(r[0].starts_with("250"), "re-probed after the TTL: {r:?}");

    // Dovecot stops: a recipient nobody has answered for is deferred
    t.lmtp.take();
    let r = rcpts(mx, "127.0.0.23", &["new@local.test", "joe@example.org"]);
    assert_codes(&r, &["new", "joe@example.org"], &["450 4.4.1", "250"]);
    let log = mx.log_with("rcpt=<new@local.test> verdict=refused");
    assert!(
        log.contains(
            "rcpt=<new@local.test> verdict=refused rule=recipients check=lmtp error=connect_"
        ),
        "{log}"
    );
    assert!(
        t.state.join("state").read_dir().unwrap().count() > 0,
        "answers cached in STATEDIR"
    );
}

/// A dictionary sweep of 100 names from one address: every guess is
/// refused, the 20-error limit ends each session, and `probelimits`
/// (default 30 in 600 s) bans the prober: relaycheck then refuses it at
/// connect while another address still gets in.
#[test]
fn a_dictionary_sweep_gets_the_prober_banned() {
    let Some(t) = with_lmtp(&[]) else { return };
    let mx = &t.mx;
    let names: Vec<String> = (0..100).map(|i| format!("user{i:03}@local.test")).collect();
    let (mut refused, mut sessions, mut banned) = (0, 0, false);
    let mut left = names.iter();
    'sweep: while left.len() > 0 {
        let mut c = Client::connect("127.0.0.24", &mx.addr);
        let g = c.reply();
        if !g.starts_with("220") {
            assert!(g.starts_with("421"), "refused at connect: {g}");
            banned = true;
            break;
        }
        sessions += 1;
        assert!(c.cmd("EHLO sweep.test").starts_with("250"));
        assert!(c.cmd("MAIL FROM:<>").starts_with("250"));
        for n in left.by_ref() {
            let r = c.cmd(&format!("RCPT TO:<{n}>"));
            if r.starts_with("550 5.1.1") {
                refused += 1;
                continue;
            }
            assert!(r.starts_with("421") || r.is_empty(), "{n}: {r}");
            continue 'sweep;
        }
    }
    eprintln!("sweep: {refused} guesses refused in {sessions} sessions, then refused at connect: {banned}");
    assert!(
        banned,
        "never refused at connect: {refused} refused in {sessions} sessions"
    );
    assert!(
        (30..=31).contains(&refused),
        "banned after {refused} guesses"
    );
    let log = mx.log_with("rule=probelimits");
    assert!(log.contains("rule=probelimits"), "{log}");
    // someone else is unaffected
    let r = rcpts(mx, "127.0.0.25", &["joe@local.test"]);
    assert!(r[0].starts_with("250"), "{r:?}");
}

/// 40 unknown local recipients (two sessions of 20 errors) from `src`;
/// then: is `src` still greeted?
fn stale_sweep(mx: &Mx, src: &str) -> bool {
    for s in 0..2 {
        let mut c = Client::connect(src, &mx.addr);
        if !c.reply().starts_with("220") {
            return false;
        }
        assert!(c.cmd("EHLO relay.test").starts_with("250"));
        assert!(c.cmd("MAIL FROM:<list@relay.test>").starts_with("250"));
        for i in 0..20 {
            if !c
                .cmd(&format!("RCPT TO:<old{s}x{i}@example.org>"))
                .starts_with("550")
            {
                break;
            }
        }
    }
    let mut c = Client::connect(src, &mx.addr);
    c.reply().starts_with("220")
}

/// A client trusted to relay (here: in relayclients) that hits stale
/// local addresses is refused them but never banned for it; an untrusted
/// client doing the same is.
#[test]
fn a_relay_client_is_not_banned_for_stale_addresses() {
    if !need("tcpserver") {
        return;
    }
    let state = TempDir::new("recipients-trusted");
    for d in ["state", "deny", "relay"] {
        fs::create_dir_all(state.join(d)).unwrap();
    }
    let mut setup = Setup::default()
        .control("recipients", LIST)
        .control("relayclients", "127.0.0.26\n")
        .env("STATEDIR", state.join("state").to_str().unwrap())
        .env("DENYDIR", state.join("deny").to_str().unwrap())
        .env("RELAYDIR", state.join("relay").to_str().unwrap());
    setup.before = vec!["relaycheck".into()];
    let mx = Mx::start(setup);
    assert!(
        stale_sweep(&mx, "127.0.0.26"),
        "the relay client was banned"
    );
    assert!(
        !stale_sweep(&mx, "127.0.0.27"),
        "the stranger was not banned"
    );
}
