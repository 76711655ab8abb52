//! Many front-ends, one state (SPEC section 9) on a real Redis started by
//! the tests: two tcpserver + relaycheck + smtpd front-ends on different
//! 127.0.0.x addresses share POP-before-SMTP grants (a login through
//! Dovecot, our checkpassword and relayallow), bans (relaydeny) and
//! counters (rgstate's `state` example from two hosts' processes); keys
//! expire by TTL; and the faults: Redis stopped, paused (SIGSTOP) and
//! restarted, with every connection answered within RELAYSTATE_TIMEOUT.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relaygate::{bin_dir, TempDir};

#[path = "dovecot/mod.rs"]
mod dovecot;
#[path = "frontend/mod.rs"]
mod frontend;
#[path = "peers/mod.rs"]
mod peers;
#[path = "smtpd_support/mod.rs"]
mod support;

use frontend::{bound, host_env, names, probe, relays, stderr, text, FrontEnd};
use peers::redis::Redis;
use support::{transaction, Client, Mx, Setup};

/// The first reply to a connection from `src`: the greeting, or
/// relaycheck's 421.
fn first_words(fe: &FrontEnd, src: &str) -> String {
    let mut c = Client::connect(src, &fe.mx.addr);
    let words = c.reply();
    if words.starts_with("220 ") {
        c.cmd("QUIT");
    }
    words
}

/// Lines of `log` (a front-end's stderr) that contain `what`.
fn count_lines(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn a_pop_login_on_one_front_end_grants_relaying_on_the_other_with_a_ttl() {
    if !relaygate::need("python3") || !dovecot::available() {
        return;
    }
    let tmp = TempDir::new("shared-pop");
    let Some(redis) = Redis::start(&tmp, Some(("relaygate", "r3dis-pw"))) else {
        return;
    };
    let url = redis.url(0);
    // the POP/IMAP host: Dovecot with checkpassword + relayallow, its
    // own (unused) RELAYDIR, RELAYSTATE set in the wrapper
    let control = dovecot::control_with_user(tmp.path(), "joe@example.org", "pop-secret");
    let popdir = tmp.join("pop-relay");
    std::fs::create_dir(&popdir).unwrap();
    let Some(d) = dovecot::Dovecot::start(&tmp, &control, &popdir, &["relayallow"]) else {
        return;
    };
    pass_relaystate(&d, &url);

    let a = FrontEnd::start("127.0.0.31", "RELAYSTATE", &url);
    // B logs in to the same Redis through its Unix socket
    let b = FrontEnd::start("127.0.0.32", "RELAYSTATE", &redis.unix_url(0));
    let src = "127.0.0.41";
    assert!(
        !relays(&a, src) && !relays(&b, src),
        "no relaying before a login"
    );

    assert!(
        d.pop3_login_from(src, "joe@example.org", "pop-secret"),
        "POP3 login refused: {}",
        d.log()
    );
    assert!(
        names(&popdir).is_empty(),
        "the grant went to Redis, not RELAYDIR"
    );
    assert_eq!(
        redis
            .cli(0, &["GET", &format!("rg:relay:{src}")])
            .lines()
            .nth(1),
        Some("USER=joe@example.org"),
        "the key and its value (relaytable(5))"
    );
    let ttl: i64 = redis
        .cli(0, &["PTTL", &format!("rg:relay:{src}")])
        .parse()
        .unwrap();
    assert!(
        ttl > 3_500_000 && ttl <= 3_600_000,
        "TTL RELAY_CLEAR_MINUTES: {ttl}"
    );

    assert!(relays(&a, src), "front-end A: {}", a.mx.server.log());
    assert!(relays(&b, src), "front-end B: {}", b.mx.server.log());
    assert!(
        !relays(&a, "127.0.0.42") && !relays(&b, "127.0.0.42"),
        "only that address"
    );
    let env = a.run("relaycheck", &["env"], &[("TCPREMOTEIP", src)]);
    assert!(
        text(&env).contains("RELAYUSER=joe@example.org\n"),
        "{}",
        text(&env)
    );

    // the reader's RELAY_CLEAR_MINUTES holds as well as the writer's TTL
    let env = a.run(
        "relaycheck",
        &["env"],
        &[("TCPREMOTEIP", src), ("RELAY_CLEAR_MINUTES", "0")],
    );
    assert!(!text(&env).contains("RELAYCLIENT="), "{}", text(&env));
    // a grant written with one minute lives one minute in Redis
    let short = a.run(
        "relayallow",
        &["true"],
        &[("TCPREMOTEIP", "127.0.0.43"), ("RELAY_CLEAR_MINUTES", "1")],
    );
    assert!(
        short.status.success() && short.stderr.is_empty(),
        "{}",
        stderr(&short)
    );
    let ttl: i64 = redis
        .cli(0, &["PTTL", "rg:relay:127.0.0.43"])
        .parse()
        .unwrap();
    assert!(ttl > 50_000 && ttl <= 60_000, "TTL one minute: {ttl}");

    // the wrong password is no grant and one log line, nothing else
    for wrong in [&url, &redis.unix_url(0)].map(|u| u.replace("r3dis-pw", "wrong")) {
        let env = a.run(
            "relaycheck",
            &["env"],
            &[("TCPREMOTEIP", src), ("RELAYSTATE", &wrong)],
        );
        assert!(env.status.success() && !text(&env).contains("RELAYCLIENT="));
        assert_eq!(
            count_lines(&stderr(&env), "relay grants off"),
            1,
            "{}",
            stderr(&env)
        );
        assert!(
            !stderr(&env).contains("wrong"),
            "no password in logs: {}",
            stderr(&env)
        );
    }
}

/// Let the checkpassword wrapper Dovecot runs pass RELAYSTATE on (Dovecot
/// cleans the environment of its auth process): the line SCALEOUT.md tells
/// administrators to add.
fn pass_relaystate(d: &dovecot::Dovecot, url: &str) {
    let wrapper = d.dir.join("checkpassword-wrapper");
    let script = std::fs::read_to_string(&wrapper).unwrap();
    let line = format!("RELAYSTATE='{url}'\nexport RELAYSTATE\nexec ");
    let edited = script.replacen("exec ", &line, 1);
    assert_ne!(edited, script, "the wrapper ends in exec");
    std::fs::write(&wrapper, edited).unwrap();
}

#[test]
fn a_ban_on_one_front_end_refuses_on_the_other_until_its_ttl() {
    let tmp = TempDir::new("shared-ban");
    let Some(redis) = Redis::start(&tmp, None) else {
        return;
    };
    let url = redis.url(2);
    // B reaches the same Redis through its Unix socket
    let unix = redis.unix_url(2);
    let a = FrontEnd::start("127.0.0.33", "RELAYSTATE", &url);
    let b = FrontEnd::start("127.0.0.34", "RELAYSTATE", &unix);
    let src = "127.0.0.44";
    assert!(first_words(&b, src).starts_with("220 "));

    let add = a.run("relaydeny", &["add", src, "3", "abuse-desk"], &[]);
    assert!(
        add.status.success() && add.stderr.is_empty(),
        "{}",
        stderr(&add)
    );
    for fe in [&a, &b] {
        let words = first_words(fe, src);
        assert!(words.starts_with("421 4.7.0"), "banned everywhere: {words}");
        assert!(fe.deny_entries().is_empty(), "in Redis, not DENYDIR");
    }
    let log = b.mx.log_with("rule=deny cause=abuse-desk");
    assert!(log.contains(&format!("table={unix},")), "{log}");
    let log = a.mx.log_with("rule=deny cause=abuse-desk");
    assert!(log.contains(&format!("table={url},")), "{log}");
    let list = b.run("relaydeny", &["list"], &[]);
    assert!(
        text(&list).starts_with(&format!("{src} cause=abuse-desk until=")),
        "{}",
        text(&list)
    );
    assert!(
        first_words(&a, "127.0.0.45").starts_with("220 "),
        "others pass"
    );

    // expiry by TTL: the key goes, both front-ends let the client in
    let end = Instant::now() + Duration::from_secs(10);
    while redis.cli(2, &["EXISTS", &format!("rg:ban:{src}")]) != "0" {
        assert!(Instant::now() < end, "the ban key never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    for fe in [&a, &b] {
        assert!(first_words(fe, src).starts_with("220 "), "ban over");
    }
    // lifting a ban on one host lifts it for all
    a.run("relaydeny", &["add", src, "600"], &[]);
    assert!(first_words(&b, src).starts_with("421 "));
    let del = b.run("relaydeny", &["del", src], &[]);
    assert_eq!(text(&del), format!("{src} removed\n"));
    assert!(first_words(&a, src).starts_with("220 "));
}

/// smtpd's own sending limit (`sendlimits`, per relaying client IP here)
/// counts in Redis: recipients accepted through one front-end use up the
/// limit on the other, and neither host's STATEDIR holds the counter.
#[test]
fn smtpd_sending_limit_counts_across_front_ends() {
    let tmp = TempDir::new("shared-sendlimit");
    let Some(redis) = Redis::start(&tmp, None) else {
        return;
    };
    let url = redis.url(3);
    let start = |host: &str| {
        let setup = Setup {
            before: vec!["relaycheck".into()],
            host: host.into(),
            ..Setup::default()
        }
        .rules("127.0.0.46:allow,RELAYCLIENT=\"\"\n:allow\n")
        .control("sendlimits", "default 5 3600\n");
        FrontEnd::start_with(setup, "RELAYSTATE", &url)
    };
    let (a, b) = (start("127.0.0.35"), start("127.0.0.36"));
    let src = "127.0.0.46";
    let send = |mx: &Mx, i: usize| {
        let rcpt = format!("<r{i}@elsewhere.test>");
        transaction(mx, src, "client.test", "<joe@example.org>", &[&rcpt])
            .into_iter()
            .next()
            .unwrap_or_default()
    };
    for i in 0..3 {
        let r = send(&a.mx, i);
        assert!(r.starts_with("250"), "{i} through a: {r}");
    }
    for i in 3..5 {
        let r = send(&b.mx, i);
        assert!(r.starts_with("250"), "{i} through b: {r}");
    }
    for (fe, i) in [(&a, 5), (&b, 6)] {
        let r = send(&fe.mx, i);
        assert!(
            r.starts_with("451 4.7.1"),
            "the shared limit of 5 holds: {r}"
        );
    }
    assert!(b.mx.log_with("rule=sendlimit").contains("rule=sendlimit"));
    for fe in [&a, &b] {
        assert!(
            names(&fe.dirs.join("state")).is_empty(),
            "counted in Redis, not on the host"
        );
    }
}

/// rgstate's example program `state` (see tests/state.rs).
fn state_bin() -> PathBuf {
    let p = bin_dir().join("examples").join("state");
    assert!(
        p.exists(),
        "{} not built: run `cargo build --examples -p rgstate` first",
        p.display()
    );
    p
}

/// `state ARGS` with host `dirs`' environment, waiting for `go`.
fn state_cmd(dirs: &TempDir, url: &str, go: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(state_bin());
    c.args(args).env("RGSTATE_GO", go);
    c.envs(host_env(dirs, "RELAYSTATE", url));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn wait_all(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn a_limit_counts_across_hosts_exactly_under_concurrency() {
    let tmp = TempDir::new("shared-count");
    let Some(redis) = Redis::start(&tmp, Some(("relaygate", "pw"))) else {
        return;
    };
    let url = redis.url(1);
    let hosts: Vec<TempDir> = (0..2)
        .map(|i| {
            let t = TempDir::new(&format!("host{i}"));
            std::fs::create_dir(t.join("state")).unwrap();
            std::fs::create_dir(t.join("deny")).unwrap();
            t
        })
        .collect();
    let go = tmp.join("go");
    // 8 processes, 4 per host, 20 tries each at a limit of 50: exactly 50
    let key = "send:joe@example.org";
    let children: Vec<Child> = (0..8)
        .map(|i| {
            state_cmd(
                &hosts[i % 2],
                &url,
                &go,
                &["take", key, "60000", "50", "20"],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    std::fs::write(&go, "").unwrap();
    let outs = wait_all(children);
    let taken: u64 = outs
        .iter()
        .map(|o| {
            assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(o));
            text(o).trim().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(taken, 50, "exactly the limit, across both hosts");
    for h in &hosts {
        let c = state_cmd(h, &url, &go, &["count", key, "60000"])
            .output()
            .unwrap();
        assert_eq!(text(&c).trim(), "50");
        assert!(
            names(&h.join("state")).is_empty(),
            "nothing counted in STATEDIR"
        );
    }
    // plain hits add up too, and the key carries the window's TTL
    let hits: Vec<Child> = (0..4)
        .map(|i| {
            state_cmd(
                &hosts[i % 2],
                &url,
                &go,
                &["hit", "authfail:192.0.2.7", "60000", "25"],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    wait_all(hits);
    let c = state_cmd(
        &hosts[1],
        &url,
        &go,
        &["count", "authfail:192.0.2.7", "60000"],
    )
    .output()
    .unwrap();
    assert_eq!(text(&c).trim(), "100");
    let ttl: i64 = redis
        .cli(1, &["PTTL", "rg:c:authfail:192.0.2.7"])
        .parse()
        .unwrap();
    assert!(ttl > 50_000 && ttl <= 61_000, "{ttl}");
}

/// Time one call of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

#[test]
fn redis_stopped_paused_and_restarted_fails_closed_for_grants_and_back_to_files_for_bans() {
    let tmp = TempDir::new("shared-faults");
    let Some(mut redis) = Redis::start(&tmp, None) else {
        return;
    };
    let url = redis.url(0);
    let a = FrontEnd::start("127.0.0.35", "RELAYSTATE", &url);
    let src = "127.0.0.46";
    let login = |fe: &FrontEnd| fe.run("relayallow", &["true"], &[("TCPREMOTEIP", src)]);
    let o = login(&a);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    let (_, foreign, local) = probe(&a, src);
    assert!(foreign && local, "granted while Redis is up");

    for fault in ["paused", "stopped"] {
        match fault {
            "paused" => redis.pause(),
            _ => {
                redis.resume();
                redis.stop();
            }
        }
        let before = count_lines(&a.mx.server.log(), "relay grants off");
        let (waited, foreign, local) = probe(&a, src);
        assert!(waited < bound(), "{fault}: greeting after {waited:?}");
        assert!(
            !foreign,
            "{fault}: no relaying through an unreachable table"
        );
        assert!(local, "{fault}: mail for local domains still accepted");
        let log = a.mx.log_with("relay grants off");
        assert_eq!(
            count_lines(&log, "relay grants off") - before,
            1,
            "{fault}: one line\n{log}"
        );

        // a login still runs its program, in bounded time
        let (o, waited) = timed(|| login(&a));
        assert!(
            o.status.success() && waited < bound(),
            "{fault}: {waited:?} {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("unable to record"), "{}", stderr(&o));

        // bans fall back to this host's DENYDIR: limits hold per host
        let ban_ip = if fault == "paused" {
            "127.0.0.47"
        } else {
            "127.0.0.48"
        };
        let (o, waited) = timed(|| a.run("relaydeny", &["add", ban_ip, "600", "probelimits"], &[]));
        assert!(
            o.status.success() && waited < bound(),
            "{fault}: {waited:?} {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("bans and counters in STATEDIR and DENYDIR"),
            "{}",
            stderr(&o)
        );
        assert!(a.deny_entries().contains(&ban_ip.to_string()));
        let (words, waited) = timed(|| first_words(&a, ban_ip));
        assert!(
            words.starts_with("421 4.7.0") && waited < bound(),
            "{fault}: {words} {waited:?}"
        );

        // counters too
        let go = tmp.join("go");
        std::fs::write(&go, "").unwrap();
        let (o, waited) = timed(|| {
            state_cmd(
                &a.dirs,
                &url,
                &go,
                &["hit", "send:joe@example.org", "60000", "3"],
            )
            .output()
            .unwrap()
        });
        // the host's own count goes on from one outage to the next
        let want = if fault == "paused" { "3" } else { "6" };
        assert_eq!(text(&o).trim(), want, "{}", stderr(&o));
        assert!(waited < bound(), "{fault}: counted after {waited:?}");
    }
    assert!(!a.mx.server.log().contains("panicked"));

    // back up: works again without restarting anything
    redis.restart();
    let o = login(&a);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    let (_, foreign, local) = probe(&a, src);
    assert!(
        foreign && local,
        "granted again after the restart: {}",
        a.mx.server.log()
    );
    assert!(
        first_words(&a, "127.0.0.47").starts_with("421 "),
        "a ban written during the outage holds"
    );
}
