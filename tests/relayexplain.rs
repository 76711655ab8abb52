//! relayexplain end to end: for a table of cases (each its own client
//! address), what relayexplain says (verdict and rule per recipient) must
//! be what a real session with the same facts gets from a real tcpserver +
//! relaycheck + smtpd (our checkpassword, real relayallow entries, a real
//! relaydeny ban) and what smtpd, relaycheck and tcpserver log; the
//! counters it shows must move with real refusals; and `--log` explains
//! the real log lines the sessions left.

#[path = "smtpd_support/mod.rs"]
mod smtpd_support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use relaygate::{b64, bin, need, run_with_input, TempDir};
use smtpd_support::{Client, Mx, Setup};

/// One case: the client, the envelope, and what must happen.
struct Case {
    name: &'static str,
    ip: &'static str,
    user: Option<&'static str>,
    from: &'static str,
    rcpts: &'static [&'static str],
    /// The rule relayexplain and smtpd must name for each recipient (a
    /// prefix of the `rule=` text), and whether it is accepted.
    want: &'static [(&'static str, bool)],
}

const CASES: &[Case] = &[
    Case {
        name: "relayclients network",
        ip: "127.0.3.9",
        user: None,
        from: "a@outside.example",
        rcpts: &["c@victim.test"],
        want: &[("relayclients", true)],
    },
    Case {
        name: "tcprules RELAYCLIENT",
        ip: "127.0.0.20",
        user: None,
        from: "a@outside.example",
        rcpts: &["c@victim.test"],
        want: &[("relayclient-env", true)],
    },
    Case {
        name: "POP-before-SMTP, fresh",
        ip: "127.0.0.24",
        user: None,
        from: "pop@example.org",
        rcpts: &["c@victim.test"],
        want: &[("relaytable user=pop@example.org", true)],
    },
    Case {
        name: "POP-before-SMTP, expired",
        ip: "127.0.0.25",
        user: None,
        from: "pop@example.org",
        rcpts: &["c@victim.test"],
        want: &[("norelay", false)],
    },
    Case {
        name: "AUTH user",
        ip: "127.0.0.1",
        user: Some("u@example.org"),
        from: "u@example.org",
        rcpts: &["c@victim.test", "someone@example.org"],
        want: &[("auth", true), ("rcpthosts", true)],
    },
    Case {
        name: "AUTH user, sender not owned",
        ip: "127.0.0.1",
        user: Some("u@example.org"),
        from: "boss@example.org",
        rcpts: &["c@victim.test"],
        want: &[("senderlogin", false)],
    },
    Case {
        name: "relayrules",
        ip: "127.0.0.23",
        user: None,
        from: "boss@partner.example",
        rcpts: &["c@victim.test"],
        want: &[("relayrules", true)],
    },
    Case {
        name: "relaymailfrom, domain without accounts",
        ip: "127.0.0.28",
        user: None,
        from: "friend@outside.example",
        rcpts: &["c@victim.test"],
        want: &[("relaymailfrom", true)],
    },
    Case {
        name: "relaymailfrom, our domain, an enabled account",
        ip: "127.0.0.29",
        user: None,
        from: "u@example.org",
        rcpts: &["c@victim.test"],
        want: &[("relaymailfrom", true)],
    },
    Case {
        name: "relaymailfrom, our domain, forged (no account)",
        ip: "127.0.0.30",
        user: None,
        from: "forged@example.org",
        rcpts: &["c@victim.test"],
        want: &[("norelay", false)],
    },
    Case {
        name: "badrcptto",
        ip: "127.0.0.31",
        user: None,
        from: "a@outside.example",
        rcpts: &["bad@example.org", "good@example.org"],
        want: &[("badrcptto", false), ("rcpthosts", true)],
    },
    Case {
        name: "a stranger: norelay",
        ip: "127.0.0.27",
        user: None,
        from: "a@outside.example",
        rcpts: &["c@victim.test", "x@example.org"],
        want: &[("norelay", false), ("rcpthosts", true)],
    },
    Case {
        name: "a ban",
        ip: "127.0.0.26",
        user: None,
        from: "a@outside.example",
        rcpts: &["x@example.org"],
        want: &[("deny cause=manual", false)],
    },
    Case {
        name: "a denied IP",
        ip: "127.0.0.21",
        user: None,
        from: "a@outside.example",
        rcpts: &["x@example.org"],
        want: &[("deny key=127.0.0.21", false)],
    },
];

/// The tables and the server all cases share.
struct World {
    mx: Mx,
    tables: TempDir,
}

impl World {
    fn env(&self) -> Vec<(String, PathBuf)> {
        vec![
            ("CONTROLDIR".into(), self.mx.control.clone()),
            ("RELAYDIR".into(), self.tables.join("relay")),
            ("DENYDIR".into(), self.tables.join("deny")),
            ("STATEDIR".into(), self.tables.join("state")),
        ]
    }

    /// Run a program with the world's directories (bounded).
    fn run(&self, prog: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin(prog));
        cmd.args(args)
            .env_remove("RELAYCLIENT")
            .env_remove("RBLSMTPD")
            .env_remove("REQUIREAUTH")
            .env_remove("RELAY_CLEAR_MINUTES");
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run_with_input(&mut cmd, b"", Duration::from_secs(60))
    }

    fn explain(&self, c: &Case) -> (String, Option<i32>) {
        let mut args = vec!["-i", c.ip, "-f", c.from];
        if let Some(u) = c.user {
            args.extend(["-u", u]);
        }
        for r in c.rcpts {
            args.extend(["-t", r]);
        }
        let out = self.run("relayexplain", &args, &[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.stderr.is_empty(),
            "{}: stderr {}",
            c.name,
            String::from_utf8_lossy(&out.stderr)
        );
        (text, out.status.code())
    }
}

fn start() -> Option<World> {
    if !need("tcpserver") || !need("tcprules") {
        return None;
    }
    let tables = TempDir::new("relayexplain");
    for d in ["relay", "deny", "state"] {
        std::fs::create_dir_all(tables.join(d)).unwrap();
    }
    let mut setup = Setup::default()
        .rules("127.0.0.20:allow,RELAYCLIENT=\"\"\n127.0.0.21:deny\n:allow\n")
        .control("relayclients", "127.0.3.0/24\n")
        .control("relayrules", "@partner.example 127.0.0.23\n")
        .control("relaymailfrom", "friend@outside.example\n@example.org\n")
        .control("badrcptto", "bad@example.org\n");
    for (k, d) in [
        ("RELAYDIR", "relay"),
        ("DENYDIR", "deny"),
        ("STATEDIR", "state"),
    ] {
        setup = setup.env(k, &tables.join(d).to_string_lossy());
    }
    setup.before = vec!["relaycheck".into()];
    setup.args = vec![
        bin("checkpassword").to_string_lossy().into_owned(),
        "true".into(),
    ];
    let w = World {
        mx: Mx::start(setup),
        tables,
    };
    let out = run_with_input(
        Command::new(bin("userdb"))
            .args(["add", "u@example.org"])
            .env("CONTROLDIR", &w.mx.control),
        b"secret\n",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "userdb add: {out:?}");
    // POP/IMAP logins recorded by the real relayallow; one made stale
    for ip in ["127.0.0.24", "127.0.0.25"] {
        let out = w.run(
            "relayallow",
            &["true"],
            &[("TCPREMOTEIP", ip), ("USER", "pop@example.org")],
        );
        assert!(out.status.success(), "relayallow: {out:?}");
    }
    let stale = w.tables.join("relay/127.0.0.25");
    let st = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(st.success());
    let out = w.run("relaydeny", &["add", "127.0.0.26", "600", "manual"], &[]);
    assert!(out.status.success(), "relaydeny: {out:?}");
    Some(w)
}

/// relayexplain's `verdict: rcpt=<..> verdict=.. rule=.. stage=..` lines:
/// (rcpt, accepted, rule, stage).
fn verdicts(text: &str) -> Vec<(String, bool, String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("verdict: rcpt="))
        .map(|l| {
            let (rcpt, rest) = l.split_once(' ').unwrap();
            let accepted = rest.starts_with("verdict=accepted");
            let rule = rest.split_once("rule=").unwrap().1;
            let (rule, stage) = rule.split_once(" stage=").unwrap();
            let stage = stage.split(' ').next().unwrap();
            (
                rcpt.to_string(),
                accepted,
                rule.to_string(),
                stage.to_string(),
            )
        })
        .collect()
}

/// A real session with the case's facts: the greeting and the replies
/// to MAIL and each RCPT (nothing after a refused greeting or MAIL). No
/// message is sent: the decisions are all made at RCPT.
fn session(w: &World, c: &Case) -> (String, Vec<String>) {
    let mut cl = Client::connect(c.ip, &w.mx.addr);
    let greeting = cl.reply();
    if !greeting.starts_with("220") {
        return (greeting, Vec::new());
    }
    assert!(cl.cmd("EHLO client.test").starts_with("250"), "{}", c.name);
    if let Some(u) = c.user {
        let r = cl.cmd(&format!(
            "AUTH PLAIN {}",
            b64(format!("\0{u}\0secret").as_bytes())
        ));
        assert!(r.starts_with("235"), "{}: AUTH: {r}", c.name);
    }
    let mut replies = vec![cl.cmd(&format!("MAIL FROM:<{}>", c.from))];
    if replies[0].starts_with("250") {
        for r in c.rcpts {
            replies.push(cl.cmd(&format!("RCPT TO:<{r}>")));
        }
    }
    cl.cmd("QUIT");
    (greeting, replies)
}

/// smtpd's `rule=` text for `rcpt` from `ip` (the whole rest of the line).
fn logged_rule(log: &str, ip: &str, rcpt: &str) -> Option<(bool, String)> {
    let key = format!(" ip={ip} rcpt=<{rcpt}> verdict=");
    let line = log.lines().rev().find(|l| l.contains(&key))?;
    let rest = line.split_once(&key)?.1;
    let accepted = rest.starts_with("accepted");
    Some((accepted, rest.split_once("rule=")?.1.to_string()))
}

fn check(w: &World, c: &Case) {
    let (text, code) = w.explain(c);
    let got = verdicts(&text);
    assert_eq!(got.len(), c.rcpts.len(), "{}: {text}", c.name);
    let all_ok = c.want.iter().all(|(_, ok)| *ok);
    assert_eq!(
        code,
        Some(if all_ok { 0 } else { 100 }),
        "{}: {text}",
        c.name
    );
    for ((rcpt, accepted, rule, _), (want_rule, want_ok)) in got.iter().zip(c.want) {
        assert_eq!(accepted, want_ok, "{}: {rcpt}: {text}", c.name);
        assert!(
            rule.starts_with(want_rule),
            "{}: {rcpt} rule={rule}: {text}",
            c.name
        );
    }
    let (greeting, replies) = session(w, c);
    let stage = got[0].3.as_str();
    match stage {
        "tcpserver" => {
            assert_eq!(greeting, "", "{}: a denied client gets no greeting", c.name);
            let log = w.mx.log_with("tcpserver: deny");
            assert!(log.contains("tcpserver: deny"), "{}: {log}", c.name);
        }
        "relaycheck" => {
            assert!(greeting.starts_with("421 4.7.0"), "{}: {greeting}", c.name);
            let want = format!("relaycheck: info: ip={} rule={}", c.ip, got[0].2);
            let log = w.mx.log_with(&want);
            assert!(log.contains(&want), "{}: {want} not in {log}", c.name);
        }
        _ if c.want[0].0 == "senderlogin" => {
            assert!(
                replies[0].starts_with("553 5.7.1"),
                "{}: {replies:?}",
                c.name
            );
            let want = format!(
                "ip={} event=mail from=<{}> verdict=refused rule=senderlogin",
                c.ip, c.from
            );
            let log = w.mx.log_with(&want);
            assert!(log.contains(&want), "{}: {want} not in {log}", c.name);
        }
        _ => {
            assert!(
                replies[0].starts_with("250"),
                "{}: MAIL {replies:?}",
                c.name
            );
            for (i, (rcpt, accepted, rule, _)) in got.iter().enumerate() {
                let bare = rcpt.trim_matches(['<', '>']);
                let reply = &replies[i + 1];
                assert_eq!(
                    reply.starts_with("250"),
                    *accepted,
                    "{}: {rcpt} {reply}",
                    c.name
                );
                let key = format!(" ip={} rcpt=<{bare}> verdict=", c.ip);
                let log = w.mx.log_with(&key);
                let (ok, logged) = logged_rule(&log, c.ip, bare)
                    .unwrap_or_else(|| panic!("{}: no log line for {rcpt}: {log}", c.name));
                assert_eq!(ok, *accepted, "{}: {rcpt}", c.name);
                assert_eq!(
                    &logged, rule,
                    "{}: {rcpt}: smtpd logged rule={logged}",
                    c.name
                );
            }
        }
    }
}

#[test]
fn the_explanation_agrees_with_the_running_chain() {
    let Some(w) = start() else { return };
    for c in CASES {
        check(&w, c);
    }
    // the counters shown move with the real refusals: the stranger's one
    // norelay counts toward probelimits, the relayclients network's one
    // relayed recipient toward its sending limit
    let stranger = &CASES[11];
    assert_eq!(stranger.ip, "127.0.0.27");
    let (text, _) = w.explain(stranger);
    assert!(text.contains("probelimits: 1 refused"), "{text}");
    let (text, _) = w.explain(&CASES[0]);
    assert!(
        text.contains("sendlimits: 1 relayed recipients for ip=127.0.3.9"),
        "{text}"
    );
    explain_real_log_lines(&w);
}

/// `--log` on the lines the sessions above left: every smtpd RCPT line
/// and relaycheck's refusal are explained with their rule.
fn explain_real_log_lines(w: &World) {
    let log = w.mx.server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| {
            (l.starts_with("smtpd: ") && l.contains(" rcpt="))
                || l.starts_with("relaycheck: info:")
                || l.contains("rule=senderlogin")
                || l.starts_with("tcpserver: deny")
        })
        .collect();
    assert!(lines.len() >= 15, "{log}");
    for l in lines {
        let out = w.run("relayexplain", &["--log", l], &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{l}: {text}");
        assert!(
            text.contains("from: ") && text.contains("change: "),
            "{l}: {text}"
        );
        if let Some(rule) = l
            .split_once("rule=")
            .map(|(_, r)| r.split(' ').next().unwrap())
        {
            assert!(text.contains(&format!("rule {rule}: ")), "{l}: {text}");
        }
    }
    let out = w.run("relayexplain", &["--log", "kernel: eth0 up"], &[]);
    assert_eq!(out.status.code(), Some(100));
}

#[test]
fn usage_and_trouble_are_111() {
    let out = Command::new(bin("relayexplain"))
        .arg("-f")
        .arg("a@b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("relayexplain: usage: "));
    // an unreadable rules cdb (a directory) is trouble, as for tcpserver
    let dir = TempDir::new("relayexplain-trouble");
    std::fs::create_dir_all(dir.join("control/tcp.smtp.cdb")).unwrap();
    let out = Command::new(bin("relayexplain"))
        .args(["-i", "192.0.2.7", "-t", "c@d.example"])
        .env("CONTROLDIR", dir.join("control"))
        .env("RELAYDIR", dir.join("relay"))
        .env("DENYDIR", dir.join("deny"))
        .env("STATEDIR", dir.join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(111), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("relayexplain: fatal: unable to read ")
    );
}

/// rblsmtpd's stage: with `RBLSMTPD` set (no DNS), relayexplain gives the
/// reply the real rblsmtpd sends that client, and stops it there.
#[test]
fn rblsmtpd_from_the_environment_agrees_with_rblsmtpd() {
    let dir = TempDir::new("relayexplain-rbl");
    for (value, code) in [("-go away", "553"), ("slow down", "451")] {
        let out = Command::new(bin("relayexplain"))
            .args(["-i", "192.0.2.7", "-t", "c@example.org"])
            .env("CONTROLDIR", dir.join("control"))
            .env("RELAYDIR", dir.join("relay"))
            .env("DENYDIR", dir.join("deny"))
            .env("STATEDIR", dir.join("state"))
            .env("RBLSMTPD", value)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(100), "{text}");
        let v = verdicts(&text);
        assert_eq!(v.len(), 1, "{text}");
        assert_eq!(
            (v[0].2.as_str(), v[0].3.as_str()),
            ("rbl base=RBLSMTPD", "rblsmtpd")
        );
        // the real rblsmtpd, -t 0: the refusal once, no conversation
        let real = Command::new(bin("rblsmtpd"))
            .args(["-t", "0", "true"])
            .env("TCPREMOTEIP", "192.0.2.7")
            .env("RBLSMTPD", value)
            .output()
            .unwrap();
        let real = String::from_utf8_lossy(&real.stdout);
        let line = real.lines().next().unwrap_or("").trim_end();
        assert!(line.starts_with(code), "{real:?}");
        let shown = text
            .lines()
            .find(|l| l.starts_with("verdict: rcpt="))
            .unwrap();
        assert!(
            shown.ends_with(&format!("reply=\"{line}\"")),
            "{shown} vs {line}"
        );
    }
}
