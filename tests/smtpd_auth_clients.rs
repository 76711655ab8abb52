//! SMTP AUTH over TLS with real clients and real accounts: swaks, Python's
//! smtplib and openssl s_client against tcpserver + smtpd + our
//! checkpassword + users.cdb made by userdb, judged by the queued
//! envelopes; the STARTTLS injection case with valid credentials; and the
//! service run scripts in scripts/service/ started for real.
//! (tests/smtpd_auth.rs holds the protocol-level AUTH tests.)

#[path = "smtpd_support/mod.rs"]
mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use relaygate::{bin, bin_dir, free_port, need, run_with_input, wait_port, Server, TempDir};
use support::*;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn userdb(control: &Path, args: &[&str], input: &str) {
    let out = run_with_input(
        Command::new(bin("userdb"))
            .args(args)
            .env("CONTROLDIR", control),
        input.as_bytes(),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "userdb {args:?}: {}", text(&out));
}

/// Accounts: u@example.org (secret), d@example.org (disabled, secret),
/// n@example.org (secret, no CRAM-MD5).
fn accounts(control: &Path) {
    userdb(control, &["add", "u@example.org"], "secret\n");
    userdb(control, &["add", "d@example.org"], "secret\n");
    userdb(control, &["disable", "d@example.org"], "");
    userdb(control, &["add", "-n", "n@example.org"], "secret\n");
}

/// tcpserver + smtpd with our checkpassword, a certificate and the
/// accounts; `env` for smtpd (SMTPS, REQUIREAUTH...).
fn start(env: &[(&str, &str)]) -> Option<Mx> {
    let args = vec![bin("checkpassword").display().to_string(), "true".into()];
    let mx = start_tls(env, args)?;
    accounts(&mx.control);
    Some(mx)
}

fn swaks(mx: &Mx, src: &str, args: &[&str]) -> Output {
    run_with_input(
        Command::new("swaks")
            .args(["--server", &mx.addr, "--local-interface", src])
            .args(["--timeout", "60", "--from", "u@example.org"])
            .args(args),
        b"",
        Duration::from_secs(120),
    )
}

fn python(mx: &Mx, script: &str) -> (bool, String) {
    let full = format!("{PRELUDE}{script}");
    let out = run_with_input(
        Command::new("python3").arg("-c").arg(&full).arg(&mx.addr),
        b"",
        Duration::from_secs(120),
    );
    (out.status.success(), text(&out))
}

const PRELUDE: &str = r#"
import smtplib, ssl, sys, socket
host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def tls_session(src="127.0.0.5"):
    s = smtplib.SMTP(host, port, source_address=(src, 0), timeout=60)
    s.ehlo("client.test")
    s.starttls(context=ctx)
    s.ehlo("client.test")
    return s
"#;

/// Recipients of all queued messages, sorted.
fn rcpts(mx: &Mx) -> Vec<String> {
    let mut r = mx.queued_rcpts();
    r.sort();
    r
}

#[test]
fn swaks_starttls_every_mechanism_from_a_remote_client() {
    if !need("swaks") {
        return;
    }
    let Some(mx) = start(&[]) else { return };
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let to = format!("{}@victim.test", mech.to_lowercase());
        let out = swaks(
            &mx,
            "127.0.0.5",
            &["--tls", "--to", &to, "--auth", mech]
                .iter()
                .chain(&["--auth-user", "u@example.org", "--auth-password", "secret"])
                .copied()
                .collect::<Vec<_>>(),
        );
        assert!(out.status.success(), "{mech}: {}", text(&out));
        assert!(text(&out).contains("235 2.7.0"), "{mech}: {}", text(&out));
    }
    // wrong password, disabled account, unknown user: no relay, same reply
    for (user, pw) in [
        ("u@example.org", "wrong"),
        ("d@example.org", "secret"),
        ("nobody@example.org", "secret"),
    ] {
        let out = swaks(
            &mx,
            "127.0.0.5",
            &["--tls", "--to", "x@victim.test", "--auth", "PLAIN"]
                .iter()
                .chain(&["--auth-user", user, "--auth-password", pw])
                .copied()
                .collect::<Vec<_>>(),
        );
        assert!(!out.status.success(), "{user}: {}", text(&out));
        assert!(text(&out).contains("535 5.7.8"), "{user}: {}", text(&out));
    }
    assert_eq!(
        rcpts(&mx),
        [
            "cram-md5@victim.test",
            "login@victim.test",
            "plain@victim.test"
        ]
    );
    for m in mx.queued() {
        assert_eq!(m.sender, b"u@example.org");
        let msg = String::from_utf8_lossy(&m.message);
        assert!(
            msg.contains("ESMTPSA (authenticated user u@example.org)"),
            "{msg}"
        );
        assert!(!msg.contains("secret"));
    }
}

#[test]
fn swaks_smtps_and_requireauth() {
    if !need("swaks") {
        return;
    }
    let Some(mx) = start(&[("SMTPS", "1"), ("REQUIREAUTH", "1")]) else {
        return;
    };
    let out = swaks(
        &mx,
        "127.0.0.5",
        &["--tlsc", "--to", "far@victim.test", "--auth", "LOGIN"]
            .iter()
            .chain(&["--auth-user", "U@Example.org", "--auth-password", "secret"])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", text(&out));
    // without AUTH, MAIL is refused on the submission service
    let out = swaks(&mx, "127.0.0.5", &["--tlsc", "--to", "local@example.org"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("530 5.7.0"), "{}", text(&out));
    assert_eq!(rcpts(&mx), ["far@victim.test"]);
    let msg = String::from_utf8_lossy(&mx.queued()[0].message).into_owned();
    // smtpd names the user as the client typed it (it learns only the
    // exit status of checkpassword)
    assert!(
        msg.to_lowercase()
            .contains("authenticated user u@example.org"),
        "{msg}"
    );
}

#[test]
fn smtplib_starttls_login_and_failures() {
    let Some(mx) = start(&[]) else { return };
    let (ok, out) = python(
        &mx,
        r#"
# no mechanism before TLS from 127.0.0.5 (CRAM-MD5 neither), all after
s = smtplib.SMTP(host, port, source_address=("127.0.0.5", 0), timeout=60)
code, ehlo = s.ehlo("client.test")
assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo, ehlo
s.starttls(context=ctx)
code, ehlo = s.ehlo("client.test")
assert b"STARTTLS" not in ehlo and b"PLAIN" in ehlo and b"LOGIN" in ehlo, ehlo
s.login("u@example.org", "secret")        # smtplib picks CRAM-MD5 first
assert not s.sendmail("u@example.org", ["one@victim.test"], "Subject: 1\r\n\r\nbody\r\n")
s.quit()

# each mechanism explicitly
for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
    s = tls_session()
    s.user, s.password = "u@example.org", "secret"
    s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")))
    assert not s.sendmail("u@example.org", ["%s@victim.test" % mech.lower()], "Subject: m\r\n\r\nx\r\n")
    s.quit()

# the same answer for a wrong password, a disabled and an unknown account
answers = []
for user, pw in (("u@example.org", "wrong"), ("d@example.org", "secret"), ("nobody@example.org", "secret")):
    s = tls_session()
    s.user, s.password = user, pw
    try:
        s.auth("PLAIN", s.auth_plain)
        raise SystemExit("login accepted for %s" % user)
    except smtplib.SMTPAuthenticationError as e:
        answers.append((e.smtp_code, e.smtp_error))
    s.close()
assert answers[0] == answers[1] == answers[2] == (535, b"5.7.8 authentication failed"), answers

# CRAM-MD5 for an account created with -n fails, PLAIN works
s = tls_session()
s.user, s.password = "n@example.org", "secret"
try:
    s.auth("CRAM-MD5", s.auth_cram_md5)
    raise SystemExit("CRAM-MD5 accepted without keys")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535
s.auth("PLAIN", s.auth_plain)
assert not s.sendmail("n@example.org", ["nocram@victim.test"], "Subject: n\r\n\r\nx\r\n")
s.quit()

# without AUTH (or after failed AUTH) no relaying
s = tls_session()
try:
    s.sendmail("u@example.org", ["stranger@victim.test"], "Subject: no\r\n\r\nx\r\n")
    raise SystemExit("relayed without AUTH")
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients["stranger@victim.test"][0] == 553, e.recipients
s.quit()
print("done")
"#,
    );
    assert!(ok, "{out}");
    assert_eq!(
        rcpts(&mx),
        [
            "cram-md5@victim.test",
            "login@victim.test",
            "nocram@victim.test",
            "one@victim.test",
            "plain@victim.test"
        ]
    );
}

#[test]
fn smtplib_three_failures_close_and_auth_does_not_survive_starttls() {
    let Some(mx) = start(&[]) else { return };
    let (ok, out) = python(
        &mx,
        r#"
s = tls_session()
s.user, s.password = "u@example.org", "wrong"
for i in range(2):
    try:
        s.auth("PLAIN", s.auth_plain)
        raise SystemExit("accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535
try:
    s.auth("PLAIN", s.auth_plain)
    raise SystemExit("accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535
# the third failure is followed by 421 and the close
try:
    code, msg = s.getreply()
    assert code == 421, (code, msg)
    s.noop()
    raise SystemExit("still open after 3 failures")
except smtplib.SMTPServerDisconnected:
    pass

# AUTH (CRAM-MD5, allowed in clear to exactly 127.0.0.1) then STARTTLS:
# authentication is gone
s = smtplib.SMTP(host, port, source_address=("127.0.0.1", 0), timeout=60)
s.ehlo("client.test")
s.login("u@example.org", "secret")
s.starttls(context=ctx)
s.ehlo("client.test")
try:
    s.sendmail("u@example.org", ["after-tls@victim.test"], "Subject: x\r\n\r\nx\r\n")
    raise SystemExit("AUTH survived STARTTLS")
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients["after-tls@victim.test"][0] == 553, e.recipients
# and it can authenticate again under TLS
s.login("u@example.org", "secret")
assert not s.sendmail("u@example.org", ["again@victim.test"], "Subject: y\r\n\r\ny\r\n")
s.quit()
print("done")
"#,
    );
    assert!(ok, "{out}");
    assert_eq!(rcpts(&mx), ["again@victim.test"]);
}

#[test]
fn smtplib_smtp_ssl() {
    let Some(mx) = start(&[("SMTPS", "1")]) else {
        return;
    };
    let (ok, out) = python(
        &mx,
        r#"
s = smtplib.SMTP_SSL(host, port, source_address=("127.0.0.5", 0), timeout=60, context=ctx)
code, ehlo = s.ehlo("client.test")
assert b"STARTTLS" not in ehlo and b"AUTH" in ehlo and b"PLAIN" in ehlo, ehlo
s.user, s.password = "u@example.org", "secret"
s.auth("PLAIN", s.auth_plain)
assert not s.sendmail("u@example.org", ["ssl@victim.test"], "Subject: ssl\r\n\r\nx\r\n")
s.quit()
print("done")
"#,
    );
    assert!(ok, "{out}");
    assert_eq!(rcpts(&mx), ["ssl@victim.test"]);
    let m = &mx.queued()[0];
    assert!(String::from_utf8_lossy(&m.message).contains("ESMTPSA"));
}

#[test]
fn starttls_injection_with_valid_credentials_never_authenticates() {
    // CVE-2011-0411 style: AUTH with a good password and a relay attempt
    // pipelined in the same packet as STARTTLS. They must not run, before
    // or after the handshake.
    let Some(mx) = start(&[]) else { return };
    let plain = "AHVAZXhhbXBsZS5vcmcAc2VjcmV0"; // \0u@example.org\0secret
    let mut c = mx.client("127.0.0.1");
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    c.send(
        format!(
            "STARTTLS\r\nAUTH PLAIN {plain}\r\nMAIL FROM:<u@example.org>\r\nRCPT TO:<injected@victim.test>\r\n"
        )
        .as_bytes(),
    );
    let r = c.rest();
    assert!(!r.contains("235"), "AUTH ran: {r}");
    assert!(r.contains("554 5.5.0"), "{r}");
    assert!(c.closed());
    assert!(mx.queued().is_empty());
    assert!(
        !mx.server.log().contains("result=ok"),
        "{}",
        mx.server.log()
    );
}

#[test]
fn openssl_s_client_starttls_session() {
    if !need("openssl") {
        return;
    }
    let Some(mx) = start(&[]) else { return };
    // openssl s_client does the STARTTLS dance; the session is driven line
    // by line (waiting for each reply), from 127.0.0.5 where PLAIN needs TLS
    let (ok, out) = python(
        &mx,
        r#"
import subprocess, select, time, base64
p = subprocess.Popen(["openssl", "s_client", "-starttls", "smtp", "-connect", "%s:%d" % (host, port),
                      "-quiet", "-crlf", "-bind", "127.0.0.5:0", "-name", "client.test"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
buf = b""
def reply():
    global buf
    end = time.time() + 60
    while time.time() < end:
        lines = buf.split(b"\r\n")
        for i, l in enumerate(lines[:-1]):
            if len(l) >= 4 and l[3:4] == b" ":
                buf = b"\r\n".join(lines[i + 1:])
                return b"\r\n".join(lines[:i + 1]).decode()
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
    raise SystemExit("no reply; got %r" % buf)
def cmd(line):
    p.stdin.write(line.encode() + b"\n"); p.stdin.flush()
    return reply()
r = cmd("EHLO client.test")
assert "PLAIN" in r and "STARTTLS" not in r, r
r = cmd("AUTH PLAIN " + base64.b64encode(b"\0u@example.org\0secret").decode())
assert r.startswith("235"), r
assert cmd("MAIL FROM:<u@example.org>").startswith("250")
assert cmd("RCPT TO:<sclient@victim.test>").startswith("250")
assert cmd("DATA").startswith("354")
assert cmd("Subject: s_client\n\nhello\n.").startswith("250")
cmd("QUIT")
p.stdin.close()
p.wait(timeout=30)
print("done")
"#,
    );
    assert!(ok, "{out}");
    assert_eq!(rcpts(&mx), ["sclient@victim.test"]);
}

// ---- scripts/service ----

/// scripts/service/NAME/run with its settings pointed at this test.
fn service_script(name: &str, tmp: &TempDir, port: u16) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/service")
        .join(name)
        .join("run");
    let body = fs::read_to_string(&src).unwrap();
    let set = |var: &str, val: &str, body: String| -> String {
        body.lines()
            .map(|l| {
                if l.starts_with(&format!("{var}=")) {
                    format!("{var}={val}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let mut body = body;
    for (var, val) in [
        ("BINDIR", bin_dir().display().to_string()),
        ("USER", "root".into()),
        ("PORT", port.to_string()),
        ("ADDR", "127.0.0.1".into()),
        ("CONTROLDIR", tmp.join("control").display().to_string()),
        ("RELAYDIR", tmp.join("relay").display().to_string()),
        ("DENYDIR", tmp.join("deny").display().to_string()),
        ("SPOOLDIR", tmp.join("spool").display().to_string()),
    ] {
        body = set(var, &val, body);
    }
    let path = tmp.join(format!("{name}.run"));
    fs::write(&path, body).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn service_dirs(tmp: &TempDir) {
    for d in ["control", "relay", "deny", "spool/tmp", "spool/new"] {
        fs::create_dir_all(tmp.join(d)).unwrap();
    }
    tmp.write("control/me", "mx.example.org\n");
    tmp.write("control/rcpthosts", "example.org\n");
    make_cert(&tmp.join("control"));
    accounts(&tmp.join("control"));
}

fn queued_in(spool: &Path) -> Vec<String> {
    let mut v: Vec<String> = rgspool::list(spool)
        .unwrap_or_default()
        .iter()
        .flat_map(|p| rgspool::read(p).unwrap().recipients)
        .map(|r| String::from_utf8_lossy(&r).into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn service_run_scripts_serve() {
    if !need("python3") || !need("openssl") {
        return;
    }
    if ["tcpserver", "smtpd", "relaycheck", "checkpassword"]
        .iter()
        .any(|p| !bin_dir().join(p).exists())
    {
        panic!("build tcpserver, smtpd, relaycheck and checkpassword first");
    }
    let tmp = TempDir::new("service");
    service_dirs(&tmp);
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for name in ["smtp", "submission", "smtps"] {
        let port = free_port();
        let script = service_script(name, &tmp, port);
        // run's `exec 2>&1` sends the log to stdout: point stdout at the
        // Server's log file (its stderr) first
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("exec sh \"$0\" >&2").arg(&script);
        servers.push(Server::start(cmd, &tmp.join(format!("{name}.log"))));
        wait_port(&format!("127.0.0.1:{port}"), Duration::from_secs(30));
        ports.push(port);
    }
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
smtp, sub, smtps = (int(x) for x in sys.argv[1:4])
# port 25: local delivery without AUTH, relaying with AUTH after STARTTLS
s = smtplib.SMTP("127.0.0.1", smtp, source_address=("127.0.0.5", 0), timeout=60)
s.ehlo("c.test")
assert not s.sendmail("x@s.test", ["local@example.org"], "Subject: l\r\n\r\nx\r\n")
s.starttls(context=ctx); s.ehlo("c.test")
s.login("u@example.org", "secret")
assert not s.sendmail("u@example.org", ["smtp@victim.test"], "Subject: a\r\n\r\nx\r\n")
s.quit()
# 587: MAIL before AUTH refused, then AUTH after STARTTLS
s = smtplib.SMTP("127.0.0.1", sub, source_address=("127.0.0.5", 0), timeout=60)
s.ehlo("c.test")
code, msg = s.mail("u@example.org")
assert code == 530, (code, msg)
s.rset()
s.starttls(context=ctx); s.ehlo("c.test")
s.login("u@example.org", "secret")
assert not s.sendmail("u@example.org", ["submission@victim.test"], "Subject: b\r\n\r\nx\r\n")
s.quit()
# 465: implicit TLS
s = smtplib.SMTP_SSL("127.0.0.1", smtps, source_address=("127.0.0.5", 0), timeout=60, context=ctx)
s.login("u@example.org", "secret")
assert not s.sendmail("u@example.org", ["smtps@victim.test"], "Subject: c\r\n\r\nx\r\n")
s.quit()
print("done")
"#;
    let out = run_with_input(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(ports.iter().map(|p| p.to_string())),
        b"",
        Duration::from_secs(120),
    );
    let logs: String = ["smtp", "submission", "smtps"]
        .iter()
        .map(|n| fs::read_to_string(tmp.join(format!("{n}.log"))).unwrap_or_default())
        .collect();
    assert!(out.status.success(), "{}\n{logs}", text(&out));
    assert_eq!(
        queued_in(&tmp.join("spool")),
        [
            "local@example.org",
            "smtp@victim.test",
            "smtps@victim.test",
            "submission@victim.test"
        ]
    );
    // the tcpserver -v lines reach the log (exec 2>&1 in run)
    assert!(logs.contains("tcpserver: status:"), "{logs}");
    drop(servers);
}

#[test]
fn service_log_scripts_are_valid_sh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/service");
    for name in ["smtp", "submission", "smtps"] {
        for f in ["run", "log/run"] {
            let p = dir.join(name).join(f);
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            assert!(mode & 0o111 != 0, "{} executable", p.display());
            let out = Command::new("sh").arg("-n").arg(&p).output().unwrap();
            assert!(out.status.success(), "{}: {}", p.display(), text(&out));
            let mut s = String::new();
            fs::File::open(&p).unwrap().read_to_string(&mut s).unwrap();
            assert!(s.starts_with("#!/bin/sh\n"));
        }
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn relaymailfrom_local_senders_must_be_enabled_accounts_of_users_cdb() {
    // relay rules 5/6 (SPEC section 5) read users.cdb as userdb writes it:
    // with accounts in example.org, a sender @example.org relays through
    // relaymailfrom only when it is an account with login enabled
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(
        Setup::default()
            .control("relaymailfrom", "@example.org\n@other.test\n")
            .control("relayrules", "@example.org 127.0.0.0/8\n"),
    );
    accounts(&mx.control);
    let attempt = |sender: &str, rcpt: &str| -> String {
        let mut c = mx.client("127.0.0.5");
        assert!(c.cmd("HELO c.test").starts_with("250"));
        assert!(c.cmd(&format!("MAIL FROM:<{sender}>")).starts_with("250"));
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        if r.starts_with("250") {
            assert!(c.data("Subject: r\r\n\r\nx").starts_with("250"));
        }
        c.cmd("QUIT");
        r
    };
    assert!(attempt("u@example.org", "a@victim.test").starts_with("250"));
    assert!(
        attempt("U@EXAMPLE.ORG", "b@victim.test").starts_with("250"),
        "any case"
    );
    assert!(
        attempt("n@example.org", "c@victim.test").starts_with("250"),
        "-n is still an account"
    );
    assert!(attempt("forged@example.org", "x@victim.test").starts_with("553"));
    assert!(
        attempt("d@example.org", "y@victim.test").starts_with("553"),
        "disabled"
    );
    // a domain without accounts: relaymailfrom alone decides (forgeable)
    assert!(attempt("anyone@other.test", "d@victim.test").starts_with("250"));
    // disabling takes effect on the next transaction, no restart
    userdb(&mx.control, &["disable", "u@example.org"], "");
    assert!(attempt("u@example.org", "z@victim.test").starts_with("553"));
    assert_eq!(
        rcpts(&mx),
        [
            "a@victim.test",
            "b@victim.test",
            "c@victim.test",
            "d@victim.test"
        ]
    );
}

#[test]
fn plaintext_mechanisms_offered_to_127_0_0_1_only() {
    let Some(mx) = start(&[]) else { return };
    for (src, plain) in [("127.0.0.1", true), ("127.0.0.2", false)] {
        let mut c = mx.client(src);
        let e = c.cmd("EHLO client.test");
        // every mechanism or none: CRAM-MD5 in clear is as bad (SPEC 6)
        assert_eq!(e.contains("AUTH"), plain, "{src}: {e}");
        assert_eq!(e.contains("CRAM-MD5"), plain, "{src}: {e}");
        assert_eq!(
            e.contains("PLAIN") && e.contains("LOGIN"),
            plain,
            "{src}: {e}"
        );
        assert!(e.contains("STARTTLS"), "{src}: {e}");
        let r = c.cmd("AUTH PLAIN AHVAZXhhbXBsZS5vcmcAc2VjcmV0");
        assert_eq!(r.starts_with("235"), plain, "{src}: {r}");
        c.cmd("QUIT");
    }
}
