//! remote end to end against real next hops on loopback: Postfix's
//! smtp-sink (SMTP and LMTP, over TCP and a unix socket, soft and hard
//! rejects), relaygate's own smtpd (per-recipient 553, byte-exact arrival,
//! STARTTLS opportunistic and required, AUTH), listeners that stall mid-DATA
//! (timeouts), dnsmasq for MX order, fallback and null MX, and the exit
//! codes. Every peer is started and stopped by its test.

#[path = "peers/mod.rs"]
mod peers;
#[path = "smtpd_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peers::ca::TestCa;
use peers::dns::{Dns, Record};
use peers::sink::Sink;
use relaygate::{bin, need, run_with_input, Server, TempDir};
use support::{Mx, Setup};

/// What one run of remote gave.
#[derive(Debug)]
struct Run {
    code: i32,
    lines: Vec<String>,
    stderr: String,
}

impl Run {
    /// The line for recipient `i`, split as `[status, index, host, ip, reply]`.
    fn rcpt(&self, i: usize) -> Vec<String> {
        let l = self
            .lines
            .iter()
            .find(|l| l.split(' ').nth(1) == Some(&i.to_string()))
            .unwrap_or_else(|| panic!("no line for recipient {i}: {self:?}"));
        let mut f: Vec<String> = l.splitn(5, ' ').map(str::to_string).collect();
        f.resize(5, String::new());
        f
    }
    fn status(&self, i: usize) -> String {
        self.rcpt(i)[0].clone()
    }
    fn reply(&self, i: usize) -> String {
        self.rcpt(i)[4].clone()
    }
}

fn parse_run(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        lines: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A control directory with `helohost`, plus `files`.
fn controls(tmp: &TempDir, files: &[(&str, &str)]) -> PathBuf {
    tmp.write("control/helohost", "relay.test\n");
    for (name, content) in files {
        tmp.write(format!("control/{name}"), content);
    }
    tmp.join("control")
}

fn command(control: &Path, env: &[(&str, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("remote"));
    cmd.args(args)
        .env("CONTROLDIR", control)
        .env_remove("DNSRESOLVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Run remote with `message` on a pipe.
fn remote(control: &Path, env: &[(&str, String)], args: &[&str], message: &[u8]) -> Run {
    let mut cmd = command(control, env, args);
    parse_run(run_with_input(&mut cmd, message, Duration::from_secs(60)))
}

/// Run remote with the file `input` as descriptor 0 (killed after 60 s).
fn remote_file(control: &Path, args: &[&str], input: &Path) -> Run {
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "60"])
        .arg(bin("remote"))
        .args(args)
        .env("CONTROLDIR", control)
        .stdin(std::fs::File::open(input).expect("open input"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    parse_run(cmd.output().expect("run remote"))
}

/// A message with every trap: dots at line starts, a lone dot, 8-bit
/// bytes, a CR inside a line, a long line, and no final line end.
fn tricky_message() -> Vec<u8> {
    let mut m = b"From: a@s.test\nSubject: dots\n\n.\n..\n.leading dot\nmid.dle\n".to_vec();
    m.extend_from_slice(b"caf\xc3\xa9 \xff\n");
    m.extend_from_slice(&vec![b'x'; 3000]);
    m.extend_from_slice(b"\n\nlast line without LF");
    m
}

#[test]
fn sink_gets_envelope_and_exact_body() {
    let tmp = TempDir::new("remote-sink");
    let Some(sink) = Sink::start(&tmp, &peers::next_ip(), &[]) else {
        return;
    };
    let ctl = controls(&tmp, &[]);
    let msg = tricky_message();
    let port = sink.port.to_string();
    let r = remote(
        &ctl,
        &[],
        &["-p", &port, &sink.ip, "s@s.test", "a@r.test", "b@r.test"],
        &msg,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.lines.len(), 2, "{r:?}");
    for i in 0..2 {
        let f = r.rcpt(i);
        assert_eq!(f[0], "ok", "{r:?}");
        assert_eq!(
            (f[2].as_str(), f[3].as_str()),
            (sink.ip.as_str(), sink.ip.as_str())
        );
        assert!(f[4].starts_with("250 "), "{r:?}");
    }
    let got = sink.wait_for(1, Duration::from_secs(10));
    let m = &got[0];
    assert_eq!(m.mail_from, "s@s.test");
    assert_eq!(m.rcpts, vec!["a@r.test", "b@r.test"]);
    assert!(m.mail_args.contains("BODY=8BITMIME"), "{}", m.mail_args);
    assert_eq!(m.helo, "relay.test");
    assert_eq!(m.proto, "ESMTP");
    let mut want = msg.clone();
    want.push(b'\n');
    assert_eq!(m.body, want);
}

#[test]
fn spool_file_regular_file_and_null_sender() {
    let tmp = TempDir::new("remote-spoolfile");
    let Some(sink) = Sink::start(&tmp, &peers::next_ip(), &[]) else {
        return;
    };
    let ctl = controls(&tmp, &[]);
    let port = sink.port.to_string();
    // a spool file as smtpd writes it
    let spool = tmp.join("spool");
    std::fs::create_dir_all(spool.join("tmp")).unwrap();
    std::fs::create_dir_all(spool.join("new")).unwrap();
    let mut w = rgspool::SpoolWriter::create(&spool).expect("spool writer");
    w.write(b"Subject: spooled\n\n.body\n").expect("write");
    let env = rgspool::envelope(b"s@s.test", &[b"a@r.test"]);
    let id = w.commit(&env).expect("commit");
    let file = spool.join("new").join(&id);
    let r = remote_file(
        &ctl,
        &["-S", "-p", &port, &sink.ip, "#@[]", "a@r.test"],
        &file,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status(0), "ok", "{r:?}");
    // the same spool file on a pipe
    let bytes = std::fs::read(&file).unwrap();
    let r = remote(
        &ctl,
        &[],
        &["-S", "-p", &port, &sink.ip, "x@s.test", "b@r.test"],
        &bytes,
    );
    assert_eq!(r.status(0), "ok", "{r:?}");
    // a plain message in a regular file
    let plain = tmp.write("plain", b"Subject: plain\n\nline\n");
    let r = remote_file(
        &ctl,
        &["-p", &port, &sink.ip, "y@s.test", "c@r.test"],
        &plain,
    );
    assert_eq!(r.status(0), "ok", "{r:?}");
    let got = sink.wait_for(3, Duration::from_secs(10));
    let by_rcpt = |rc: &str| got.iter().find(|m| m.rcpts == vec![rc]).expect(rc).clone();
    let a = by_rcpt("a@r.test");
    assert_eq!(a.mail_from, "", "null sender sent as <>");
    assert_eq!(a.body, b"Subject: spooled\n\n.body\n");
    assert_eq!(by_rcpt("b@r.test").body, b"Subject: spooled\n\n.body\n");
    assert_eq!(by_rcpt("c@r.test").body, b"Subject: plain\n\nline\n");
    // a damaged spool file is trouble before any result
    let bad = tmp.write("bad", b"rgspool1 garbage\n");
    let r = remote_file(
        &ctl,
        &["-S", "-p", &port, &sink.ip, "s@s.test", "a@r.test"],
        &bad,
    );
    assert_eq!(r.code, 111, "{r:?}");
    assert!(r.lines.is_empty());
    assert!(
        r.stderr
            .starts_with("remote: fatal: unable to read spool file"),
        "{r:?}"
    );
}

#[test]
fn sink_rejects_give_the_result_table() {
    let tmp = TempDir::new("remote-rejects");
    let ctl = controls(&tmp, &[]);
    // (smtp-sink options, status for both recipients, reply prefix)
    let cases: &[(&[&str], &str, &str)] = &[
        (&["-r", "rcpt"], "temp", "450 "),
        (&["-f", "rcpt"], "perm", "500 "),
        (&["-f", "mail"], "perm", "500 "),
        (&["-r", "mail"], "temp", "450 "),
        (&["-f", "."], "perm", "500 "),
        (&["-r", "."], "temp", "450 "),
        (&["-f", "data"], "perm", "500 "),
        (&["-f", "ehlo,helo"], "temp", "500 "),
        (&["-f", "connect"], "temp", "500 "),
    ];
    for (args, status, reply) in cases {
        let Some(sink) = Sink::start(&tmp, &peers::next_ip(), args) else {
            return;
        };
        let port = sink.port.to_string();
        let r = remote(
            &ctl,
            &[],
            &["-p", &port, &sink.ip, "s@s.test", "a@r.test", "b@r.test"],
            b"x\n",
        );
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        for i in 0..2 {
            assert_eq!(&r.status(i), status, "{args:?}: {r:?}");
            assert!(r.reply(i).starts_with(reply), "{args:?}: {r:?}");
        }
    }
}

#[test]
fn sink_disconnects_and_delays() {
    let tmp = TempDir::new("remote-drops");
    let ctl = controls(&tmp, &[("timeoutremote", "2\n")]);
    // dropped after the data: the hop may have it or not, temp
    let Some(sink) = Sink::start(&tmp, &peers::next_ip(), &["-q", "."]) else {
        return;
    };
    let port = sink.port.to_string();
    let r = remote(
        &ctl,
        &[],
        &["-p", &port, &sink.ip, "s@s.test", "a@r.test"],
        b"x\n",
    );
    assert_eq!((r.code, r.status(0).as_str()), (0, "temp"), "{r:?}");
    assert!(r.reply(0).contains("end of data"), "{r:?}");
    // no reply to DATA within timeoutremote
    let Some(sink) = Sink::start(&tmp, &peers::next_ip(), &["-w", "30"]) else {
        return;
    };
    let port = sink.port.to_string();
    let t = Instant::now();
    let r = remote(
        &ctl,
        &[],
        &["-p", &port, &sink.ip, "s@s.test", "a@r.test"],
        b"x\n",
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(r.status(0), "temp", "{r:?}");
    assert!(r.reply(0).contains("timed out"), "{r:?}");
}

#[test]
fn lmtp_over_tcp_and_unix_socket() {
    let tmp = TempDir::new("remote-lmtp");
    let Some(sink) = Sink::start(&tmp, &peers::next_ip(), &["-L"]) else {
        return;
    };
    let ctl = controls(&tmp, &[]);
    let port = sink.port.to_string();
    let r = remote(
        &ctl,
        &[],
        &[
            "-l", "-p", &port, &sink.ip, "s@s.test", "a@r.test", "b@r.test",
        ],
        b"Subject: lmtp\n\nhi\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        (r.status(0), r.status(1)),
        ("ok".into(), "ok".into()),
        "{r:?}"
    );
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].proto, "LMTP");
    assert_eq!(got[0].body, b"Subject: lmtp\n\nhi\n");

    // the same over a unix socket
    let dir = tmp.join("unix");
    std::fs::create_dir_all(dir.join("dump")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("dump"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sock = dir.join("lmtp.sock");
    let mut cmd = Command::new("smtp-sink");
    cmd.args(["-u", "nobody", "-L", "-d"])
        .arg(format!("{}/m.", dir.join("dump").display()))
        .arg(format!("unix:{}", sock.display()))
        .arg("10");
    let _server = Server::start(cmd, &dir.join("sink.log"));
    assert!(
        peers::wait_until(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        }),
        "smtp-sink on {}",
        sock.display()
    );
    let path = sock.to_string_lossy().into_owned();
    let r = remote(&ctl, &[], &["-l", &path, "s@s.test", "u@r.test"], b"unix\n");
    assert_eq!(r.code, 0, "{r:?}");
    let f = r.rcpt(0);
    assert_eq!(
        (f[0].as_str(), f[2].as_str(), f[3].as_str()),
        ("ok", path.as_str(), "-")
    );
    // TLS cannot be required over a unix socket
    let r = remote(
        &ctl,
        &[],
        &["-lt", &path, "s@s.test", "u@r.test"],
        b"unix\n",
    );
    assert_eq!(r.status(0), "temp", "{r:?}");
    // nothing listening on the path
    let gone = dir.join("none.sock").to_string_lossy().into_owned();
    let r = remote(&ctl, &[], &["-l", &gone, "s@s.test", "u@r.test"], b"x\n");
    assert_eq!((r.code, r.status(0).as_str()), (0, "temp"), "{r:?}");
    assert!(r.reply(0).starts_with("unable to connect"), "{r:?}");
}

/// smtpd with our checkpassword and u@example.org/secret in users.cdb.
fn smtpd_with_auth(setup: Setup) -> Mx {
    let mut setup = setup;
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
    mx
}

fn port_of(mx: &Mx) -> String {
    mx.addr.rsplit_once(':').unwrap().1.to_string()
}

#[test]
fn smtpd_per_recipient_553_and_byte_exact_spool() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default().control("badrcptto", "bad@example.org\n"));
    let tmp = TempDir::new("remote-smtpd");
    let ctl = controls(&tmp, &[]);
    let msg = tricky_message();
    let port = port_of(&mx);
    let r = remote(
        &ctl,
        &[],
        &[
            "-p",
            &port,
            "127.0.0.1",
            "s@s.test",
            "good@example.org",
            "bad@example.org",
            "other@example.org",
        ],
        &msg,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.status(0), "ok", "{r:?}");
    assert_eq!(r.status(1), "perm", "{r:?}");
    assert!(r.reply(1).starts_with("553 "), "{r:?}");
    assert_eq!(r.status(2), "ok", "{r:?}");
    assert!(
        r.reply(0).contains("id="),
        "smtpd names its spool id: {r:?}"
    );
    let q = mx.queued();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].sender, b"s@s.test");
    assert_eq!(
        q[0].recipients,
        vec![b"good@example.org".to_vec(), b"other@example.org".to_vec()]
    );
    let mut want = msg.clone();
    want.push(b'\n');
    assert_eq!(peers::without_trace(&q[0].message), &want[..]);
}

#[test]
fn smtpd_starttls_opportunistic_required_and_auth() {
    if !need("tcpserver") || !need("openssl") {
        return;
    }
    let tmp = TempDir::new("remote-tls");
    let ca = TestCa::new(&tmp.join("ca"));
    let issued = ca.issue("localhost", &[]);
    let mx = smtpd_with_auth(Setup::default());
    std::fs::copy(&issued.chain_and_key, mx.control.join("servercert.pem")).unwrap();
    let port = port_of(&mx);
    let plain = controls(&tmp, &[]);
    let send = |ctl: &Path, flags: &[&str], target: &str, rcpt: &str| {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["-p", &port, target, "u@example.org", rcpt]);
        remote(ctl, &[], &args, b"Subject: tls\n\nx\n")
    };
    // opportunistic: encrypted without any roots
    let r = send(&plain, &[], "127.0.0.1", "a@example.org");
    assert_eq!(r.status(0), "ok", "{r:?}");
    // required: verified against remotecas.pem, for the name we asked
    let tmp2 = TempDir::new("remote-tls-cas");
    let cas = std::fs::read_to_string(ca.cert_path()).unwrap();
    let verified = controls(&tmp2, &[("remotecas.pem", &cas)]);
    let r = send(&verified, &["-t"], "localhost", "b@example.org");
    assert_eq!(r.status(0), "ok", "{r:?}");
    assert_eq!(r.rcpt(0)[2], "localhost");
    // required, but the certificate names another host (127.0.0.1 is not
    // in it) or chains to no root we trust
    let r = send(&verified, &["-t"], "127.0.0.1", "c@example.org");
    assert_eq!(r.status(0), "temp", "{r:?}");
    assert!(r.reply(0).contains("TLS handshake failed"), "{r:?}");
    let r = send(&plain, &["-t"], "localhost", "c@example.org");
    assert_eq!(r.status(0), "temp", "{r:?}");
    assert!(r.reply(0).contains("TLS handshake failed"), "{r:?}");
    let q = mx.queued();
    assert_eq!(q.len(), 2, "nothing sent without verified TLS");
    for m in &q {
        let m = String::from_utf8_lossy(&m.message);
        assert!(m.contains(" with ESMTPS"), "{m}");
    }
    // AUTH over TLS from remoteauth: relaying to a foreign domain
    let r = send(&verified, &["-t"], "localhost", "far@victim.test");
    assert_eq!(r.status(0), "perm", "no credentials, no relaying: {r:?}");
    let tmp3 = TempDir::new("remote-auth");
    let authed = controls(
        &tmp3,
        &[
            ("remotecas.pem", &cas),
            ("remoteauth", "localhost u@example.org secret\n"),
        ],
    );
    let r = send(&authed, &["-t"], "localhost", "far@victim.test");
    assert_eq!(r.status(0), "ok", "{r:?}");
    let last = mx
        .queued()
        .into_iter()
        .find(|m| m.recipients == vec![b"far@victim.test".to_vec()]);
    let last = last.expect("relayed message queued");
    let text = String::from_utf8_lossy(&last.message);
    assert!(
        text.contains("ESMTPSA (authenticated user u@example.org)"),
        "{text}"
    );
    // a wrong password: the hop refuses AUTH, nothing sent, temp
    let tmp4 = TempDir::new("remote-badauth");
    let bad = controls(
        &tmp4,
        &[
            ("remotecas.pem", &cas),
            ("remoteauth", "localhost u@example.org wrong\n"),
        ],
    );
    let r = send(&bad, &["-t"], "localhost", "far@victim.test");
    assert_eq!(r.status(0), "temp", "{r:?}");
    assert!(r.reply(0).starts_with("535"), "{r:?}");
}

#[test]
fn smtpd_without_starttls_when_tls_required() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default());
    let tmp = TempDir::new("remote-notls");
    let ctl = controls(&tmp, &[]);
    let port = port_of(&mx);
    let args = ["-t", "-p", &port, "127.0.0.1", "s@s.test", "a@example.org"];
    let r = remote(&ctl, &[], &args, b"x\n");
    assert_eq!((r.code, r.status(0).as_str()), (0, "temp"), "{r:?}");
    assert_eq!(r.reply(0), "TLS required but STARTTLS not offered");
    // and opportunistic goes on in plain text
    let r = remote(&ctl, &[], &args[1..], b"x\n");
    assert_eq!(r.status(0), "ok", "{r:?}");
}

/// A peer that speaks SMTP up to 354 and then, with `read_data`, reads the
/// message and never answers; without, stops reading at all until told
/// (the sender of the pair) that the client gave up. Listens on
/// 127.0.0.1; serves one connection.
fn staller(read_data: bool) -> (std::thread::JoinHandle<()>, u16, mpsc::Sender<()>) {
    let (done, wait) = mpsc::channel::<()>();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let _ = w.write_all(b"220 staller\r\n");
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let cmd = line.to_ascii_uppercase();
            line.clear();
            let reply: &[u8] = if cmd.starts_with("EHLO") {
                b"250-staller\r\n250 8BITMIME\r\n"
            } else if cmd.starts_with("DATA") {
                let _ = w.write_all(b"354 go\r\n");
                break;
            } else {
                b"250 ok\r\n"
            };
            let _ = w.write_all(reply);
        }
        if read_data {
            // swallow everything until the client gives up
            let mut sink = [0u8; 65536];
            while matches!(r.read(&mut sink), Ok(n) if n > 0) {}
        } else {
            let _ = wait.recv_timeout(Duration::from_secs(30));
        }
    });
    (h, port, done)
}

#[test]
fn stall_mid_data_is_temp_within_timeoutremote() {
    let tmp = TempDir::new("remote-stall");
    let ctl = controls(&tmp, &[("timeoutremote", "2\n")]);
    // the peer takes the message but never answers the final dot
    let (h, port, _done) = staller(true);
    let t = Instant::now();
    let p = port.to_string();
    let r = remote(
        &ctl,
        &[],
        &["-p", &p, "127.0.0.1", "s@s.test", "a@r.test"],
        b"x\n",
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!((r.code, r.status(0).as_str()), (0, "temp"), "{r:?}");
    assert!(
        r.reply(0)
            .contains("timed out waiting for reply to end of data"),
        "{r:?}"
    );
    h.join().unwrap();
    // the peer stops reading in the middle of a big message
    let (h, port, done) = staller(false);
    let big = vec![b'y'; 32 << 20];
    let t = Instant::now();
    let p = port.to_string();
    let r = remote(
        &ctl,
        &[],
        &["-p", &p, "127.0.0.1", "s@s.test", "a@r.test"],
        &big,
    );
    done.send(()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    assert_eq!(r.status(0), "temp", "{r:?}");
    assert!(
        r.reply(0).contains("timed out sending the message"),
        "{r:?}"
    );
    h.join().unwrap();
}

#[test]
fn mx_order_fallback_and_null_mx() {
    let tmp = TempDir::new("remote-mx");
    let ip1 = peers::next_ip();
    let ip2 = peers::next_ip();
    let Some(sink) = Sink::start(&tmp, &ip2, &[]) else {
        return;
    };
    let records = [
        // the better MX refuses connections (nothing listens there)
        Record::mx("mx.test", 10, "mx1.mx.test"),
        Record::mx("mx.test", 20, "mx2.mx.test"),
        Record::a("mx1.mx.test", &ip1),
        Record::a("mx2.mx.test", &ip2),
        // one host, two addresses: ::1 (tried first, refused), then the sink
        Record::aaaa("two.test", "::1"),
        Record::a("two.test", &ip2),
        Record::null_mx("null.test"),
        Record::mx("dangling.test", 10, "nowhere.dangling.test"),
    ];
    let Some(dns) = Dns::start(&tmp, &records) else {
        return;
    };
    let ctl = controls(&tmp, &[]);
    let env = [("DNSRESOLVER", dns.addr.clone())];
    let port = sink.port.to_string();
    let run = |args: &[&str]| remote(&ctl, &env, args, b"Subject: mx\n\nx\n");
    let r = run(&["-m", "-p", &port, "mx.test", "s@s.test", "a@mx.test"]);
    assert_eq!(r.code, 0, "{r:?}");
    let f = r.rcpt(0);
    assert_eq!(
        (f[0].as_str(), f[2].as_str(), f[3].as_str()),
        ("ok", "mx2.mx.test", ip2.as_str()),
        "{r:?}"
    );
    let r = run(&["-p", &port, "two.test", "s@s.test", "b@two.test"]);
    let f = r.rcpt(0);
    assert_eq!(
        (f[0].as_str(), f[3].as_str()),
        ("ok", ip2.as_str()),
        "{r:?}"
    );
    assert_eq!(sink.wait_for(2, Duration::from_secs(10)).len(), 2);
    // null MX and a domain that does not exist: perm, nothing tried
    let r = run(&["-m", "-p", &port, "null.test", "s@s.test", "a@null.test"]);
    assert_eq!((r.code, r.status(0).as_str()), (0, "perm"), "{r:?}");
    assert!(r.reply(0).contains("null MX"), "{r:?}");
    let r = run(&[
        "-m",
        "-p",
        &port,
        "nonesuch.test",
        "s@s.test",
        "a@nonesuch.test",
    ]);
    assert_eq!(r.status(0), "perm", "{r:?}");
    // an MX host without address, and every address refusing: temp
    let r = run(&[
        "-m",
        "-p",
        &port,
        "dangling.test",
        "s@s.test",
        "a@dangling.test",
    ]);
    assert_eq!(r.status(0), "temp", "{r:?}");
    let r = run(&["-p", &port, "mx1.mx.test", "s@s.test", "a@mx.test"]);
    let f = r.rcpt(0);
    assert_eq!(
        (f[0].as_str(), f[2].as_str(), f[3].as_str()),
        ("temp", "mx1.mx.test", ip1.as_str()),
        "{r:?}"
    );
    assert!(f[4].starts_with("unable to connect"), "{r:?}");
}

#[test]
fn exit_codes() {
    let tmp = TempDir::new("remote-exit");
    let ctl = controls(&tmp, &[]);
    // usage
    for args in [
        &["only-target"][..],
        &["-x", "h", "s", "r"],
        &["-p", "0", "h", "s", "r"],
    ] {
        let r = remote(&ctl, &[], args, b"");
        assert_eq!(r.code, 100, "{args:?}: {r:?}");
        assert!(r.lines.is_empty());
        assert!(r.stderr.contains("remote: usage:"), "{r:?}");
    }
    // an unreadable control file: trouble before any result
    std::fs::create_dir_all(ctl.join("timeoutremote")).unwrap();
    let r = remote(&ctl, &[], &["127.0.0.1", "s@s.test", "r@r.test"], b"x\n");
    assert_eq!(r.code, 111, "{r:?}");
    assert!(r.lines.is_empty());
    assert!(
        r.stderr
            .starts_with("remote: fatal: unable to read control file timeoutremote"),
        "{r:?}"
    );
}

/// A peer that offers STARTTLS and answers the handshake with plain text
/// (a broken TLS setup), then takes mail in plain text: serves two
/// connections; returns what DATA carried.
fn tls_breaker() -> (std::thread::JoinHandle<Vec<String>>, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..2 {
            let Ok((s, _)) = l.accept() else { break };
            s.set_read_timeout(Some(Duration::from_secs(20))).ok();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let _ = w.write_all(b"220 breaker\r\n");
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let cmd = line.to_ascii_uppercase();
                line.clear();
                if cmd.starts_with("STARTTLS") {
                    let _ = w.write_all(b"220 go ahead\r\nthis is not TLS\r\n");
                    break;
                } else if cmd.starts_with("DATA") {
                    let _ = w.write_all(b"354 go\r\n");
                    let mut body = String::new();
                    while r.read_line(&mut line).unwrap_or(0) > 0 && line != ".\r\n" {
                        body.push_str(&line);
                        line.clear();
                    }
                    line.clear();
                    got.push(body);
                    let _ = w.write_all(b"250 plain ok\r\n");
                } else if cmd.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n");
                    break;
                } else if cmd.starts_with("EHLO") {
                    let _ = w.write_all(b"250-breaker\r\n250 STARTTLS\r\n");
                } else {
                    let _ = w.write_all(b"250 ok\r\n");
                }
            }
        }
        got
    });
    (h, port)
}

#[test]
fn failed_opportunistic_handshake_retries_without_tls() {
    let tmp = TempDir::new("remote-tlsretry");
    let ctl = controls(&tmp, &[]);
    let (h, port) = tls_breaker();
    let p = port.to_string();
    let r = remote(
        &ctl,
        &[],
        &["-p", &p, "127.0.0.1", "s@s.test", "a@r.test"],
        b"hi\n",
    );
    assert_eq!((r.code, r.status(0).as_str()), (0, "ok"), "{r:?}");
    assert_eq!(r.reply(0), "250 plain ok");
    assert!(
        r.stderr
            .contains("remote: warning: host=127.0.0.1 ip=127.0.0.1 TLS handshake failed"),
        "{r:?}"
    );
    assert_eq!(h.join().unwrap(), vec!["hi\r\n".to_string()]);
}
