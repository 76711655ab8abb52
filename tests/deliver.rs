//! deliver and remote end to end: messages leave the spool for real next hops
//! (relaygate's own smtpd, Postfix with required TLS and AUTH, Dovecot LMTP,
//! MX hosts found through dnsmasq), with retries, bounces, expiry and faults.

#[path = "peers/mod.rs"]
mod peers;
#[path = "smtpd_support/mod.rs"]
mod smtpd_support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use peers::dns::{Dns, Record};
use relaygate::{bin, run_with_input, Server, TempDir};
use smtpd_support::{Mx, Setup};

/// A spool with deliver's control directory.
struct Queue {
    dir: TempDir,
    spool: PathBuf,
    control: PathBuf,
    env: Vec<(String, String)>,
}

impl Queue {
    fn new(tag: &str) -> Queue {
        let dir = TempDir::new(tag);
        let spool = dir.join("spool");
        let control = dir.join("control");
        fs::create_dir_all(&control).unwrap();
        fs::create_dir_all(&spool).unwrap();
        dir.write("control/me", "mx.example.org\n");
        Queue {
            dir,
            spool,
            control,
            env: Vec::new(),
        }
    }

    fn control(&self, name: &str, content: &str) {
        fs::write(self.control.join(name), content).unwrap();
    }

    fn env(&mut self, k: &str, v: &str) {
        self.env.push((k.into(), v.into()));
    }

    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(bin(prog));
        c.env("CONTROLDIR", &self.control)
            .env("SPOOLDIR", &self.spool)
            .env_remove("DNSRESOLVER");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Queue one message through `spool` (the qmail-queue).
    fn inject(&self, sender: &str, rcpts: &[&str], message: &[u8]) {
        let mut env = format!("F{sender}\0").into_bytes();
        for r in rcpts {
            env.extend_from_slice(format!("T{r}\0").as_bytes());
        }
        env.push(0);
        let envfile = self.dir.write("env", &env);
        let msgfile = self.dir.write("msg", message);
        let st = self
            .command("spool")
            .stdin(fs::File::open(msgfile).unwrap())
            .stdout(fs::File::open(envfile).unwrap())
            .status()
            .unwrap();
        assert!(st.success(), "spool failed");
    }

    /// `deliver -1`: its log.
    fn once(&self) -> String {
        let o = run_with_input(
            self.command("deliver").arg("-1"),
            b"",
            Duration::from_secs(60),
        );
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "deliver -1 failed: {log}");
        log
    }

    fn daemon(&self) -> Server {
        Server::start(self.command("deliver"), &self.dir.join("deliver.log"))
    }

    fn ids(&self) -> Vec<String> {
        rgspool::list(&self.spool)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn list(&self) -> String {
        let o: Output = self.command("spool").arg("-l").output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Make every waiting recipient due (as SIGALRM does) for `deliver -1`.
    fn due_now(&self) {
        for e in fs::read_dir(self.spool.join("info")).unwrap() {
            let p = e.unwrap().path();
            let t = fs::read_to_string(&p).unwrap();
            let fixed: Vec<String> = t
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.splitn(7, ' ').collect();
                    if f.len() == 7 && f[2] == "pending" {
                        format!("{} {} {} {} 0 {} {}", f[0], f[1], f[2], f[3], f[5], f[6])
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            fs::write(&p, fixed.join("\n") + "\n").unwrap();
        }
    }
}

/// A receiving relaygate (tcpserver + smtpd + its own spool) that accepts
/// mail for `domains`: a next hop whose spool we can read.
fn hop(domains: &str, extra: &[(&str, &str)]) -> Mx {
    let mut s = Setup::default().control("rcpthosts", domains);
    for (k, v) in extra {
        s = s.control(k, v);
    }
    Mx::start(s)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    assert!(
        peers::wait_until(timeout, &mut f),
        "timed out waiting for {what}"
    );
}

const MSG: &[u8] = b"Subject: test\nMessage-ID: <t1@example.org>\n\nline one\n.starts with a dot\n..two dots\nlast\n";

#[test]
fn smarthost_delivery_per_recipient_results_and_dsn() {
    let next = hop(
        "dest.test\nexample.org\n",
        &[("badrcptto", "bad@dest.test\n")],
    );
    let q = Queue::new("deliver-smarthost");
    q.control("smtproutes", &format!(":{}\n", next.addr));
    q.inject(
        "ann@example.org",
        &["b@dest.test", "bad@dest.test", "c@dest.test"],
        MSG,
    );
    let log = q.once();
    // the message arrived once, both good recipients, bytes intact
    let got = next.queued();
    let orig: Vec<_> = got
        .iter()
        .filter(|m| m.sender == b"ann@example.org")
        .collect();
    assert_eq!(orig.len(), 1, "{log}");
    assert_eq!(
        orig[0].recipients,
        [b"b@dest.test".to_vec(), b"c@dest.test".to_vec()]
    );
    assert!(orig[0].message.ends_with(MSG), "body changed in transit");
    // the refused one became one DSN from <> to the sender, through the same route
    let dsn: Vec<_> = got.iter().filter(|m| m.sender.is_empty()).collect();
    assert_eq!(dsn.len(), 1, "{log}");
    assert_eq!(dsn[0].recipients, [b"ann@example.org".to_vec()]);
    let text = String::from_utf8_lossy(&dsn[0].message);
    assert!(text.contains("multipart/report"), "{text}");
    assert!(
        text.contains("Final-Recipient: rfc822; bad@dest.test"),
        "{text}"
    );
    assert!(
        text.contains("badrcptto"),
        "the hop's reply is quoted: {text}"
    );
    assert!(
        !text.contains("Final-Recipient: rfc822; b@dest.test"),
        "{text}"
    );
    assert!(log.contains("rcpt=<b@dest.test> route=smtp"), "{log}");
    assert!(log.contains("status=delivered"), "{log}");
    assert!(log.contains("rcpt=<bad@dest.test> route=smtp") && log.contains("status=bounced"));
    // every recipient done: the spool is empty, no state left behind
    assert!(q.ids().is_empty(), "{}", q.list());
    assert_eq!(fs::read_dir(q.spool.join("info")).unwrap().count(), 0);
}

#[test]
fn next_hop_down_then_back_is_retried_on_sigalrm() {
    let q = Queue::new("deliver-retry");
    let port = relaygate::free_port();
    q.control("smtproutes", &format!(":127.0.0.1:{port}\n"));
    q.inject("ann@example.org", &["b@dest.test"], MSG);
    let mut d = q.daemon();
    wait_for("a deferral", Duration::from_secs(20), || {
        q.list().contains("pending attempts=1")
    });
    let list = q.list();
    assert!(list.contains("reply=") && list.contains("next="), "{list}");
    assert!(!q.spool.join("new").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".b")));
    // the hop comes up on that port; SIGALRM retries at once
    let next = Mx::start(
        Setup {
            host: "127.0.0.1".into(),
            ..Setup::default().control("rcpthosts", "dest.test\n")
        }
        .port(port),
    );
    d.signal_group("ALRM");
    wait_for("delivery after SIGALRM", Duration::from_secs(20), || {
        q.ids().is_empty()
    });
    assert_eq!(next.queued().len(), 1);
    d.signal_group("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0), "{}", d.log());
    let log = d.log();
    assert!(
        log.contains("status=deferred") && log.contains("status=delivered"),
        "{log}"
    );
    assert!(log.contains("deliver: info: stop"), "{log}");
}

#[test]
fn soft_refusal_and_a_stall_in_data_are_deferred_not_lost() {
    let ip = peers::next_ip();
    let Some(sink) = peers::sink::Sink::start(&TempDir::new("sink-w"), &ip, &["-r", "rcpt"]) else {
        return;
    };
    let q = Queue::new("deliver-soft");
    q.control("smtproutes", &format!(":{}\n", sink.addr));
    q.inject("ann@example.org", &["b@dest.test"], MSG);
    let log = q.once();
    assert!(
        log.contains("status=deferred") && log.contains("reply=\"4"),
        "{log}"
    );
    assert_eq!(q.ids().len(), 1, "kept for a retry");
    drop(sink);
    // a hop that answers DATA only after 30 s: timeoutremote 2 defers it
    let stall = peers::sink::Sink::start(&TempDir::new("sink-w"), &ip, &["-w", "30"]).unwrap();
    q.control("smtproutes", &format!(":{}\n", stall.addr));
    q.control("timeoutremote", "2\n");
    q.due_now();
    let t = std::time::Instant::now();
    let log = q.once();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "bounded by timeoutremote"
    );
    assert!(log.contains("status=deferred"), "{log}");
    assert!(q.list().contains("pending attempts=2"), "{}", q.list());
}

#[test]
fn queuelifetime_expiry_bounces_with_the_last_reply() {
    let back = hop("example.org\n", &[]);
    let q = Queue::new("deliver-expiry");
    let dead = relaygate::free_port();
    q.control(
        "smtproutes",
        &format!("dest.test:127.0.0.1:{dead}\nexample.org:{}\n", back.addr),
    );
    q.control("queuelifetime", "1\n");
    q.inject("ann@example.org", &["b@dest.test"], MSG);
    std::thread::sleep(Duration::from_millis(2100));
    let log = q.once();
    assert!(log.contains("status=bounced"), "{log}");
    let dsn = back.queued();
    assert_eq!(dsn.len(), 1, "{log}");
    let text = String::from_utf8_lossy(&dsn[0].message);
    assert!(text.contains("Status: 5.4.7"), "{text}");
    assert!(text.contains("expired"), "{text}");
    assert!(q.ids().is_empty());
}

#[test]
fn null_sender_failures_never_bounce_back() {
    let q = Queue::new("deliver-null");
    let back = hop("example.org\n", &[("badrcptto", "gone@example.org\n")]);
    q.control("smtproutes", &format!(":{}\n", back.addr));
    // a bounce that fails: dropped with a log line, nothing sent anywhere
    q.inject("", &["gone@example.org"], MSG);
    let log = q.once();
    assert!(log.contains("bounce=dropped"), "{log}");
    assert!(back.queued().is_empty());
    assert!(q.ids().is_empty());
    // with doublebounceto: one DSN there, from the double-bounce sender,
    // which goes out as <>; its own failure is dropped again
    q.control("doublebounceto", "postmaster@example.org\n");
    q.inject("", &["gone@example.org"], MSG);
    let log = q.once();
    let got = back.queued();
    assert_eq!(got.len(), 1, "{log}");
    assert_eq!(got[0].sender, b"", "sent as <>");
    assert_eq!(got[0].recipients, [b"postmaster@example.org".to_vec()]);
    q.control("doublebounceto", "gone@example.org\n");
    q.inject("", &["gone@example.org"], MSG);
    let log = q.once();
    assert!(log.contains("a double bounce failed"), "{log}");
    assert_eq!(back.queued().len(), 1, "no loop");
}

#[test]
fn mx_preference_fallback_and_null_mx_through_real_dns() {
    if !peers::is_root() {
        return;
    }
    // two MX hosts on port 25: the preferred one refuses connections
    let (down, up) = (peers::next_ip(), peers::next_ip());
    let t = TempDir::new("deliver-mx");
    let Some(dns) = Dns::start(
        &t,
        &[
            Record::mx("mx.test", 10, "down.mx.test"),
            Record::mx("mx.test", 20, "up.mx.test"),
            Record::a("down.mx.test", &down),
            Record::a("up.mx.test", &up),
            Record::null_mx("nullmx.test"),
        ],
    ) else {
        return;
    };
    let next = Mx::start(
        Setup {
            host: up.clone(),
            ..Setup::default().control("rcpthosts", "mx.test\nexample.org\n")
        }
        .port(25),
    );
    let mut q = Queue::new("deliver-mx");
    let (k, v) = dns.env();
    q.env(k, &v);
    q.control("smtproutes", &format!("example.org:{}\n", next.addr));
    q.inject("ann@example.org", &["x@mx.test", "y@nullmx.test"], MSG);
    let log = q.once();
    assert!(
        log.contains(&format!(
            "rcpt=<x@mx.test> route=mx host=up.mx.test ip={up} status=delivered"
        )),
        "{log}"
    );
    assert!(
        log.contains("rcpt=<y@nullmx.test> route=mx") && log.contains("status=bounced"),
        "{log}"
    );
    let got = next.queued();
    let delivered: Vec<_> = got.iter().filter(|m| !m.sender.is_empty()).collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].recipients, [b"x@mx.test".to_vec()]);
    let dsn: Vec<_> = got.iter().filter(|m| m.sender.is_empty()).collect();
    assert_eq!(dsn.len(), 1, "null MX bounced at once: {log}");
    assert!(String::from_utf8_lossy(&dsn[0].message).contains("y@nullmx.test"));
}

#[test]
fn lmtp_to_dovecot_delivers_and_bounces_into_the_senders_mailbox() {
    let t = TempDir::new("deliver-lmtp");
    let Some(lmtp) = peers::lmtp::Lmtp::start(&t, &["joe@local.test", "ann@local.test"]) else {
        return;
    };
    let q = Queue::new("deliver-lmtp");
    q.control(
        "lmtproutes",
        &format!("local.test:{}\n", lmtp.socket_path().display()),
    );
    q.inject(
        "ann@local.test",
        &["joe@local.test", "nobody@local.test", "ANN@local.test"],
        MSG,
    );
    let log = q.once();
    assert!(
        log.contains("rcpt=<joe@local.test> route=lmtp") && log.contains("status=delivered"),
        "{log}"
    );
    let joe = lmtp.wait_for("joe@local.test", 1, Duration::from_secs(10));
    // the body arrives as queued: dots unstuffed once, whatever line ends
    // Dovecot stores
    let stored = String::from_utf8_lossy(&joe[0]).replace("\r\n", "\n");
    assert!(
        stored.ends_with("\n\nline one\n.starts with a dot\n..two dots\nlast\n"),
        "{stored}"
    );
    // ann gets the message and the DSN for nobody@ (the same chain took it back)
    let ann = lmtp.wait_for("ann@local.test", 2, Duration::from_secs(10));
    let dsn: Vec<_> = ann
        .iter()
        .filter(|m| String::from_utf8_lossy(m).contains("multipart/report"))
        .collect();
    assert_eq!(dsn.len(), 1, "{log}");
    let text = String::from_utf8_lossy(dsn[0]);
    assert!(
        text.contains("nobody@local.test") && text.contains("550"),
        "{text}"
    );
    assert!(!text.contains("Final-Recipient: rfc822; joe@local.test"));
    assert!(q.ids().is_empty(), "{}", q.list());
}

#[test]
fn kill_9_of_deliver_and_remote_under_load_loses_nothing() {
    let next = hop("dest.test\nexample.org\n", &[]);
    let mut q = Queue::new("deliver-kill");
    // a private copy of remote, so that killing it cannot hit other tests
    let remote = q.dir.join("remote-under-test");
    fs::copy(bin("remote"), &remote).unwrap();
    q.env("REMOTE", remote.to_str().unwrap());
    q.control("smtproutes", &format!(":{}\n", next.addr));
    let n = 150;
    for i in 0..n {
        let body = format!("Subject: load {i}\nX-Seq: {i}\n\nbody {i}\n");
        q.inject(
            "ann@example.org",
            &["a@dest.test", "b@dest.test"],
            body.as_bytes(),
        );
    }
    for round in 0..3 {
        let d = q.daemon();
        std::thread::sleep(Duration::from_millis(300 + round * 200));
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(&remote)
            .status();
        std::thread::sleep(Duration::from_millis(100));
        d.signal_group("KILL");
        drop(d);
    }
    // afterwards a clean run finishes the work
    q.due_now();
    let log = q.once();
    assert!(q.ids().is_empty(), "{}\n{log}", q.list());
    let got = next.queued();
    let mut seen = vec![0; n];
    for m in got.iter().filter(|m| !m.sender.is_empty()) {
        assert_eq!(m.recipients.len(), 2);
        let text = String::from_utf8_lossy(&m.message);
        let seq: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("X-Seq: "))
            .and_then(|s| s.trim().parse().ok())
            .expect("X-Seq");
        seen[seq] += 1;
    }
    assert!(
        seen.iter().all(|&c| c >= 1),
        "every message delivered at least once: {seen:?}"
    );
    assert!(
        got.iter().all(|m| !m.sender.is_empty()),
        "no bounce for delivered mail"
    );
}

#[test]
fn a_full_disk_while_writing_state_keeps_the_message() {
    if !peers::is_root() {
        return;
    }
    let q = Queue::new("deliver-full");
    let mnt = q.dir.join("spool");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "mount tmpfs failed under CI"
        );
        return;
    }
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(mnt.clone());
    let dead = relaygate::free_port();
    q.control("smtproutes", &format!(":127.0.0.1:{dead}\n"));
    q.inject("ann@example.org", &["b@dest.test"], MSG);
    fs::create_dir_all(mnt.join("info")).unwrap();
    // fill the file system
    let filler = mnt.join("filler");
    let _ = fs::write(&filler, vec![b'x'; 1 << 20]);
    let o = run_with_input(q.command("deliver").arg("-1"), b"", Duration::from_secs(60));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("unable to update the queue"), "{log}");
    assert_eq!(q.ids().len(), 1, "the message is still queued");
    fs::remove_file(&filler).unwrap();
    let log = q.once();
    assert!(log.contains("status=deferred"), "{log}");
    assert!(q.list().contains("pending attempts=1"), "{}", q.list());
}

#[test]
fn stale_temp_files_are_removed_and_a_second_deliver_is_refused() {
    let q = Queue::new("deliver-tmp");
    fs::create_dir_all(q.spool.join("tmp")).unwrap();
    let old = q.spool.join("tmp/123.456.789");
    fs::write(&old, b"half a message").unwrap();
    let fresh = q.spool.join("tmp/999.1.2");
    fs::write(&fresh, b"being written").unwrap();
    let two_days = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_days)
        .unwrap();
    let mut d = q.daemon();
    wait_for("the start line", Duration::from_secs(10), || {
        d.log().contains("info: start")
    });
    assert!(!old.exists() && fresh.exists(), "{}", d.log());
    let o = run_with_input(q.command("deliver").arg("-1"), b"", Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another deliver"));
    d.signal_group("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0));
}

fn spool_id_from(reply: &str) -> String {
    reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn whole_chain_swaks_smtpd_spool_deliver_postfix_with_tls_and_auth() {
    if !peers::available(&["swaks", "postfix"]) {
        return;
    }
    let t = TempDir::new("deliver-chain");
    let ca = peers::ca::TestCa::new(&t.join("ca"));
    let pf_ip = peers::next_ip();
    let cert = ca.issue("smarthost.relay.test", &[&pf_ip]);
    let Some(pf) = peers::postfix::Postfix::start(
        &t,
        peers::postfix::PostfixOpts {
            ip: Some(pf_ip.clone()),
            hostname: "smarthost.relay.test".into(),
            domains: vec!["relay.test".into()],
            tls: Some(cert),
            require_tls: true,
            auth: vec![("relayuser".into(), "s3cret".into())],
            rejects: Vec::new(),
        },
    ) else {
        return;
    };
    // the inbound side: tcpserver + smtpd writing the spool deliver reads
    let inbound = Mx::start(Setup::default().rules("127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n"));
    let mut q = Queue::new("deliver-chain");
    q.spool = inbound.spool.clone();
    // a host name the certificate names, resolved by a real DNS server
    let Some(dns) = Dns::start(&t, &[Record::a("smarthost.relay.test", &pf_ip)]) else {
        return;
    };
    let (k, v) = dns.env();
    q.env(k, &v);
    q.control(
        "smtproutes",
        &format!(":smarthost.relay.test:{}:tls\n", pf.port),
    );
    fs::copy(ca.cert_path(), q.control.join("remotecas.pem")).unwrap();
    q.control("remoteauth", "smarthost.relay.test relayuser s3cret\n");
    let o = Command::new("swaks")
        .args(["--server", &inbound.addr, "--from", "ann@example.org"])
        .args(["--to", "friend@relay.test", "--header", "Subject: chain"])
        .args(["--body", "through the whole chain\n.dot\n"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let id = out
        .lines()
        .find(|l| l.contains(" 250 2.0.0 ok id="))
        .map(spool_id_from)
        .unwrap_or_default();
    assert_eq!(
        q.ids(),
        vec![id.clone()],
        "smtpd's 250 names the spool id: {out}"
    );
    let log = q.once();
    assert!(
        log.contains(&format!(
            "id={id} rcpt=<friend@relay.test> route=smtp host=smarthost.relay.test"
        )),
        "{log}"
    );
    let got = pf.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{log}\n{}", pf.log());
    assert_eq!(got[0].sender, "ann@example.org");
    assert_eq!(got[0].rcpt, "friend@relay.test");
    let text = String::from_utf8_lossy(&got[0].stored);
    assert!(text.contains("Subject: chain"), "{text}");
    assert!(text.contains("through the whole chain"), "{text}");
    let orig = String::from_utf8_lossy(got[0].original());
    assert!(
        orig.starts_with("Received: from "),
        "smtpd's Received comes first after Postfix's: {orig}"
    );
    assert!(
        text.contains("with ESMTPSA") || pf.log().contains("sasl_username=relayuser"),
        "{}",
        pf.log()
    );
    assert!(q.ids().is_empty());
}

#[test]
fn routes_file_errors_stop_deliver_with_a_clear_message() {
    let q = Queue::new("deliver-badroute");
    q.control("smtproutes", "example.org:host:notaport\n");
    let o = run_with_input(q.command("deliver").arg("-1"), b"", Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(111));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("deliver: fatal:") && err.contains("smtproutes line 1"),
        "{err}"
    );
}
