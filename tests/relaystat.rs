//! relaystat end to end, on logs a real chain writes: tcpserver (with a
//! deny rule), relaycheck (with a ban), smtpd (accepted, norelay, failed
//! AUTH) and `deliver -1` with `remote` to a second smtpd (delivered,
//! bounced, deferred, a DSN). The same logs are read plain, through the
//! real multilog, s6-log and svlogd, and as journald writes them (short and
//! export); the textfile is parsed by prometheus_client and scraped
//! through a real node_exporter's textfile collector.

#[path = "smtpd_support/mod.rs"]
mod smtpd_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use relaygate::{
    b64, bin, connect_from, free_port, need, run_with_input, wait_port, Server, TempDir,
};
use smtpd_support::{Client, Mx, Setup};

/// What the chain logged: smtpd's front end (tcpserver, relaycheck,
/// smtpd on stderr) and deliver's run; `hop` is where mail went.
struct Logs {
    server: String,
    deliver: String,
    hop: String,
    dead: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The logs, made once for every test here (the chain takes seconds).
fn logs() -> Option<&'static Logs> {
    static LOGS: OnceLock<Option<Logs>> = OnceLock::new();
    LOGS.get_or_init(|| need("tcpserver").then(produce))
        .as_ref()
}

fn produce() -> Logs {
    let dir = TempDir::new("relaystat-chain");
    let deny = dir.join("deny");
    std::fs::create_dir_all(&deny).unwrap();
    std::fs::write(
        deny.join("127.0.0.8"),
        format!("until={}\ncause=authfailures\n", now() + 3600),
    )
    .unwrap();
    let mut setup = Setup::default()
        .rules("127.0.0.9:deny\n:allow\n")
        .control("rcpthosts", "example.org\ndown.test\n")
        .env("DENYDIR", &deny.to_string_lossy())
        .env("RELAYDIR", &dir.join("relay").to_string_lossy());
    setup.before = vec!["relaycheck".into()];
    setup.args = vec![
        bin("checkpassword").to_string_lossy().into_owned(),
        "true".into(),
    ];
    let mx = Mx::start(setup);
    let out = run_with_input(
        Command::new(bin("userdb"))
            .args(["add", "u@example.org"])
            .env("CONTROLDIR", &mx.control),
        b"secret\n",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "userdb add: {out:?}");
    sessions(&mx);
    let hop = Mx::start(Setup {
        host: "127.0.0.10".into(),
        ..Setup::default()
            .control("rcpthosts", "example.org\n")
            .control("badrcptto", "b@example.org\n")
    });
    let dead = free_port();
    std::fs::write(
        mx.control.join("smtproutes"),
        format!("down.test:127.0.0.11:{dead}\n:{}\n", hop.addr),
    )
    .unwrap();
    let o = run_with_input(
        Command::new(bin("deliver"))
            .arg("-1")
            .env("CONTROLDIR", &mx.control)
            .env("SPOOLDIR", &mx.spool)
            .env_remove("DNSRESOLVER"),
        b"",
        Duration::from_secs(120),
    );
    let deliver = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "deliver -1: {deliver}");
    Logs {
        server: mx.log_with("verdict=denied"),
        deliver,
        hop: hop.addr.split(':').next().unwrap().to_string(),
        dead: "127.0.0.11".into(),
    }
}

/// The sessions whose lines relaystat must count.
fn sessions(mx: &Mx) {
    // 127.0.0.2: one message, three recipients of ours
    let mut c = mx.client("127.0.0.2");
    assert!(c.cmd("EHLO a").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    for r in ["a@example.org", "b@example.org", "c@down.test"] {
        let reply = c.cmd(&format!("RCPT TO:<{r}>"));
        assert!(reply.starts_with("250"), "{r}: {reply}");
    }
    assert!(c.data("Subject: stat\r\n\r\nbody").starts_with("250"));
    c.cmd("QUIT");
    // 127.0.0.3: two relay attempts
    let mut c = mx.client("127.0.0.3");
    assert!(c.cmd("EHLO b").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<x@spam.test>").starts_with("250"));
    for r in ["x@victim.test", "y@victim.test"] {
        assert!(c.cmd(&format!("RCPT TO:<{r}>")).starts_with("553"));
    }
    c.cmd("QUIT");
    // 127.0.0.1 (where cleartext AUTH is allowed without TLS): two failed
    // logins, then in another session a good one
    let mut c = mx.client("127.0.0.1");
    assert!(c.cmd("EHLO c").starts_with("250"));
    for _ in 0..2 {
        let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0wrong")));
        assert!(r.starts_with("535"), "{r}");
    }
    c.cmd("QUIT");
    let mut c = mx.client("127.0.0.1");
    assert!(c.cmd("EHLO d").starts_with("250"));
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")));
    assert!(r.starts_with("235"), "{r}");
    c.cmd("QUIT");
    // 127.0.0.8 is banned (relaycheck), 127.0.0.9 denied (tcpserver)
    let mut banned = Client::connect("127.0.0.8", &mx.addr);
    assert!(banned.reply().starts_with("421"));
    let mut denied = connect_from("127.0.0.9", &mx.addr);
    let mut rest = Vec::new();
    let _ = denied.read_to_end(&mut rest);
    assert!(rest.is_empty(), "tcpserver -x deny says nothing");
}

/// relaystat with `args`, `input` on stdin: its stdout (exit 0 asserted).
fn relaystat(args: &[&str], input: &[u8]) -> String {
    let o = run_with_input(
        Command::new(bin("relaystat")).args(args),
        input,
        Duration::from_secs(60),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "relaystat {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The row of a report table that starts with `first` (after the indent).
fn row<'a>(report: &'a str, first: &str) -> Vec<&'a str> {
    report
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first} in\n{report}"))
}

/// Everything the chain did, as relaystat must report it; `dated` when
/// the log had time stamps (then the per-hour table has the totals).
fn check_report(r: &str, l: &Logs, dated: bool, what: &str) {
    let ctx = format!("{what}:\n{r}");
    // tcpserver: the harness's two probes (wait_port, the greeting), four
    // sessions, the banned client; the denied one
    let conn = |v: &str| -> Vec<&str> {
        let l = r
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("tcpserver {v} ")));
        l.unwrap_or_else(|| panic!("no tcpserver {v}: {ctx}"))
            .split_whitespace()
            .collect()
    };
    assert_eq!(conn("ok")[2], "7", "{ctx}");
    assert_eq!(conn("deny")[2], "1", "{ctx}");
    assert_eq!(row(r, "smtpd")[2], "6", "smtpd sessions: {ctx}");
    assert_eq!(row(r, "rcpthosts")[1..], ["3", "0"], "{ctx}");
    assert_eq!(row(r, "norelay")[1..], ["0", "2"], "{ctx}");
    assert!(r.contains("messages: accepted 1"), "{ctx}");
    assert_eq!(row(r, "127.0.0.3")[1], "2", "top refused: {ctx}");
    assert_eq!(row(r, "127.0.0.8")[1], "1", "{ctx}");
    assert_eq!(row(r, "127.0.0.9")[1], "1", "{ctx}");
    assert!(r.contains("AUTH: failed 2, ok 1"), "{ctx}");
    assert_eq!(row(r, "u@example.org")[1], "2", "failed by user: {ctx}");
    assert_eq!(row(r, "127.0.0.1")[1], "2", "failed by ip: {ctx}");
    assert_eq!(row(r, "authfailures")[1..], ["0", "1"], "bans: {ctx}");
    // deliver: a and the DSN delivered to the hop, b bounced there, c waits
    assert_eq!(row(r, &l.hop)[1..], ["2", "0", "1"], "{ctx}");
    assert_eq!(row(r, &l.dead)[1..], ["0", "1", "0"], "{ctx}");
    assert!(r.contains("bounce messages: 1 sent, 0 dropped"), "{ctx}");
    assert!(r.contains(" 0 skipped"), "{ctx}");
    if dated {
        let hours: Vec<Vec<&str>> = r
            .lines()
            .skip_while(|l| !l.starts_with("per hour"))
            .skip(2)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(!hours.is_empty() && hours.len() <= 2, "{ctx}");
        let col = |i: usize| -> u64 { hours.iter().map(|h| h[i].parse::<u64>().unwrap()).sum() };
        // hour label is two words: date, time
        assert_eq!(
            (
                col(2),
                col(3),
                col(4),
                col(5),
                col(6),
                col(7),
                col(8),
                col(9)
            ),
            (8, 3, 2, 2, 0, 2, 1, 1),
            "{ctx}"
        );
    } else {
        assert!(!r.contains("per hour"), "{ctx}");
    }
}

fn both(l: &Logs) -> String {
    format!("{}{}", l.server, l.deliver)
}

#[test]
fn plain_stderr_capture() {
    let Some(l) = logs() else { return };
    let r = relaystat(&[], both(l).as_bytes());
    check_report(&r, l, false, "plain");
    // files and stdin ("-") add up
    let d = TempDir::new("relaystat-files");
    let a = d.write("server.log", &l.server);
    let r2 = relaystat(&[a.to_str().unwrap(), "-"], l.deliver.as_bytes());
    assert_eq!(r, r2.replace(a.to_str().unwrap(), "-"));
}

/// Feed `text` through a real logger (`argv`, writing into `dir`) and
/// return what it wrote to `dir/current`.
fn through_logger(argv: &[&str], dir: &Path, text: &str) -> String {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {argv:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < end, "{argv:?} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(dir.join("current")).unwrap()
}

#[test]
fn real_multilog_s6_log_and_svlogd() {
    let Some(l) = logs() else { return };
    let text = both(l);
    let d = TempDir::new("relaystat-loggers");
    let mut ran = 0;
    for (tool, args, first) in [
        ("multilog", vec!["t"], '@'),
        ("s6-log", vec!["t"], '@'),
        ("s6-log", vec!["T"], '2'),
        ("svlogd", vec!["-tt"], '2'),
        ("svlogd", vec!["-t"], '@'),
    ] {
        if !need(tool) {
            continue;
        }
        let out = d.join(format!("{tool}{}", args.join("")));
        std::fs::create_dir_all(&out).unwrap();
        let mut argv = vec![tool];
        argv.extend(args.iter().copied());
        let o = out.to_str().unwrap();
        argv.push(o);
        let logged = through_logger(&argv, &out, &text);
        assert!(logged.starts_with(first), "{argv:?} wrote {logged}");
        check_report(&relaystat(&[], logged.as_bytes()), l, true, tool);
        ran += 1;
    }
    assert!(ran > 0 || std::env::var_os("CI").is_none());
}

/// `date -u` of `t` in `fmt`.
fn date(t: u64, fmt: &str) -> String {
    let o = Command::new("date")
        .arg("-u")
        .arg(format!("--date=@{t}"))
        .arg(format!("+{fmt}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn journald_short_short_iso_and_export() {
    let Some(l) = logs() else { return };
    // one hour ago, on the hour's start so every line is in one hour
    let t = (now() - 3600) / 3600 * 3600;
    let text = both(l);
    let (short, iso) = (date(t, "%b %e %H:%M:%S"), date(t, "%Y-%m-%dT%H:%M:%S+0000"));
    let mut s = String::new();
    let mut i = String::new();
    let mut e = String::new();
    for (n, line) in text.lines().enumerate() {
        let ident = match line.starts_with("deliver:") {
            true => "relaygate-deliver[77]",
            false => "relaygate-smtp[76]",
        };
        s.push_str(&format!("{short} mx {ident}: {line}\n"));
        i.push_str(&format!("{iso} mx {ident}: {line}\n"));
        e.push_str(&format!(
            "__CURSOR=s=x;i={n}\n__REALTIME_TIMESTAMP={}\n_PID=76\nSYSLOG_IDENTIFIER={}\nMESSAGE={line}\n\n",
            t * 1_000_000 + n as u64,
            ident.split('[').next().unwrap()
        ));
    }
    for (what, log) in [("short", &s), ("short-iso", &i), ("export", &e)] {
        let r = relaystat(&[], log.as_bytes());
        check_report(&r, l, true, what);
        assert!(r.contains("per hour (UTC)\n"), "{r}");
        assert!(r.contains(&date(t, "%Y-%m-%d %H:00")), "{what}: {r}");
        // --since after that hour leaves nothing
        let later = relaystat(&["--since", "30m"], log.as_bytes());
        assert!(later.contains(": 0 of relaygate's"), "{what}: {later}");
    }
}

#[test]
fn garbage_lines_are_skipped_and_counted() {
    let Some(l) = logs() else { return };
    let mut text = both(l);
    text.push_str(
        "@4000zzzz smtpd: pid=1\nsmtpd: pid=1 ip=1.2.3.4 rcpt=<x> verdict=accepted\n\u{0}\u{ff}\n",
    );
    text.push_str(&"x".repeat(100_000));
    text.push('\n');
    let r = relaystat(&[], text.as_bytes());
    assert!(r.contains(" 3 skipped"), "{r}");
    assert!(r.contains("line too long") || r.contains("rule="), "{r}");
    assert_eq!(row(&r, "norelay")[1..], ["0", "2"], "{r}");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn prometheus_textfile_parsed_and_scraped_by_node_exporter() {
    let Some(l) = logs() else { return };
    let d = TempDir::new("relaystat-prom");
    let prom = d.join("relaygate.prom");
    let out = relaystat(
        &["-q", "--prometheus", prom.to_str().unwrap()],
        both(l).as_bytes(),
    );
    assert!(out.is_empty(), "-q prints nothing: {out}");
    let text = std::fs::read_to_string(&prom).unwrap();
    for want in [
        "relaygate_rcpt_decisions_total{rule=\"norelay\",verdict=\"refused\"} 2\n",
        "relaygate_rcpt_decisions_total{rule=\"rcpthosts\",verdict=\"accepted\"} 3\n",
        "relaygate_deliveries_total{status=\"delivered\"} 2\n",
        "relaygate_deliveries_total{status=\"bounced\"} 1\n",
        "relaygate_deliveries_total{status=\"deferred\"} 1\n",
        "relaygate_auth_total{result=\"failed\"} 2\n",
        "relaygate_ban_refusals_total{cause=\"authfailures\"} 1\n",
        "relaygate_connections_total{stage=\"tcpserver\",verdict=\"deny\"} 1\n",
        "relaygate_log_lines_total{kind=\"skipped\"} 0\n",
        "# TYPE relaygate_rcpt_decisions_total counter\n",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    // no temp file left beside it
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // the Python client's parser (strict about the text format)
    if need("/usr/bin/python3") {
        let py = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nn=0\nfor f in p(open(sys.argv[1]).read()):\n  assert f.documentation, f.name\n  n+=len(f.samples)\nprint(n)\n";
        let o = Command::new("/usr/bin/python3")
            .args(["-c", py, prom.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "prometheus_client: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let n: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        assert!(n >= 20, "{n} samples");
    }
    // node_exporter's textfile collector reads it without error
    if need("prometheus-node-exporter") {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new("prometheus-node-exporter");
        cmd.arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                d.path().display()
            ))
            .arg(format!("--web.listen-address={addr}"));
        let _ne = Server::start(cmd, &d.join("node_exporter.log.txt"));
        wait_port(&addr, Duration::from_secs(20));
        let body = http_get(&addr, "/metrics");
        assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
        assert!(
            body.contains("relaygate_rcpt_decisions_total{rule=\"norelay\",verdict=\"refused\"} 2"),
            "{body}"
        );
        assert!(
            body.contains("relaygate_deliveries_total{status=\"delivered\"} 2"),
            "{body}"
        );
    }
}
