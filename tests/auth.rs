//! userdb, checkpassword and the Dovecot passdb, end to end: the real
//! programs, the users/users.cdb files they share, tinycdb reading our cdb,
//! Dovecot's own hashes and CRAM-MD5 keys, and Dovecot logging users in
//! through our checkpassword.

#[path = "dovecot/mod.rs"]
mod dovecot;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use relaygate::{bin, have, need, run, run_with_input, TempDir};
use rgauth::{run_checkpassword, CheckOutcome};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn userdb(ctl: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(
        &bin("userdb"),
        args,
        &[("CONTROLDIR", ctl.to_str().unwrap())],
        stdin,
    )
}

/// `userdb add ADDRESS` with PASSWORD on stdin; panics unless it worked.
fn add(ctl: &Path, args: &[&str], password: &str) {
    let mut a = vec!["add"];
    a.extend_from_slice(args);
    let out = userdb(ctl, &a, format!("{password}\n").as_bytes());
    assert_eq!(
        out.status.code(),
        Some(0),
        "userdb {a:?}: {}",
        text(&out.stderr)
    );
}

/// Run `checkpassword PROG...` with `input` on fd 3 (through sh, which moves
/// its stdin there), CONTROLDIR set, stdin /dev/null.
fn checkpassword(ctl: &Path, input: &[u8], prog: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec 3<&0 </dev/null; exec \"$@\"")
        .arg("sh")
        .arg(bin("checkpassword"))
        .args(prog)
        .env("CONTROLDIR", ctl);
    run_with_input(&mut cmd, input, Duration::from_secs(60))
}

const SHOW_ENV: &[&str] = &[
    "sh",
    "-c",
    "echo \"USER=$USER HOME=$HOME AUTHUSER=$AUTHUSER\"",
];

fn setup() -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new("auth");
    let ctl = tmp.join("control");
    fs::create_dir_all(&ctl).unwrap();
    (tmp, ctl)
}

// ---- userdb ----

#[test]
fn userdb_manages_users_and_cdb() {
    let (_tmp, ctl) = setup();
    add(&ctl, &["Joe@Example.ORG"], "s3cret");
    add(&ctl, &["-n", "-d", "/home/ann", "ann@example.org"], "pw2");
    add(&ctl, &["bob@other.test"], "pw3");

    let users = fs::read_to_string(ctl.join("users")).unwrap();
    assert!(
        !users.contains("s3cret") && !users.contains("pw2"),
        "no plaintext: {users}"
    );
    let joe = users
        .lines()
        .find(|l| l.starts_with("joe@example.org:"))
        .unwrap();
    let f: Vec<&str> = joe.splitn(5, ':').collect();
    assert_eq!(f[1], "+");
    assert!(f[2].starts_with("$6$rounds=10000$"), "{joe}");
    assert_eq!(f[3].len(), 64, "CRAM-MD5 key pair");
    let ann = users
        .lines()
        .find(|l| l.starts_with("ann@example.org:"))
        .unwrap();
    assert!(ann.ends_with("::/home/ann"), "-n: no CRAM-MD5 keys: {ann}");
    assert_eq!(
        fs::metadata(ctl.join("users"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let out = userdb(&ctl, &["list"], b"");
    assert_eq!(
        text(&out.stdout),
        "ann@example.org login=enabled cram-md5=no home=/home/ann\n\
         bob@other.test login=enabled cram-md5=yes home=/\n\
         joe@example.org login=enabled cram-md5=yes home=/\n"
    );

    let out = userdb(&ctl, &["disable", "JOE@example.org"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&userdb(&ctl, &["list", "joe@example.org"], b"").stdout).contains("login=disabled")
    );

    // the users.cdb layout HACKING.md promises, read by our reader
    let cdb = rgcdb::Cdb::open(&ctl.join("users.cdb")).unwrap();
    assert_eq!(cdb.get(b"joe@example.org").unwrap().unwrap()[0], b'-');
    assert_eq!(cdb.get(b"ann@example.org").unwrap().unwrap()[0], b'+');
    assert_eq!(cdb.get(b"@example.org").unwrap().unwrap(), b"");
    assert_eq!(cdb.get(b"@other.test").unwrap().unwrap(), b"");
    assert_eq!(cdb.iter().count(), 5);

    let out = userdb(&ctl, &["del", "bob@other.test"], b"");
    assert_eq!(out.status.code(), Some(0));
    let cdb = rgcdb::Cdb::open(&ctl.join("users.cdb")).unwrap();
    assert_eq!(
        cdb.get(b"@other.test").unwrap(),
        None,
        "domain key goes with its last account"
    );
    assert_eq!(cdb.get(b"bob@other.test").unwrap(), None);

    let leftovers: Vec<_> = fs::read_dir(&ctl)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn userdb_refuses_misuse() {
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "pw");
    let cases: &[(&[&str], &[u8])] = &[
        (&["add", "joe@example.org"], b"pw\n"), // exists
        (&["add", "JOE@EXAMPLE.ORG"], b"pw\n"), // exists, any case
        (&["add", "new@example.org"], b"\n"),   // empty password
        (&["add", "new@example.org"], b""),     // no password at all
        (&["add", "new@example.org", "password-on-argv"], b"pw\n"),
        (&["add", "not-an-address"], b"pw\n"),
        (&["add", "a:b@example.org"], b"pw\n"),
        (&["passwd", "nobody@example.org"], b"pw\n"),
        (&["del", "nobody@example.org"], b""),
        (&["frobnicate"], b""),
        (&[], b""),
    ];
    let before = fs::read(ctl.join("users")).unwrap();
    for (args, input) in cases {
        let out = userdb(&ctl, args, input);
        assert_eq!(
            out.status.code(),
            Some(100),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.starts_with("userdb: "), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(
        fs::read(ctl.join("users")).unwrap(),
        before,
        "nothing changed"
    );
    assert!(userdb(&ctl, &["list"], b"")
        .stdout
        .starts_with(b"joe@example.org"));
}

#[test]
fn userdb_list_never_prints_secrets() {
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "pw");
    let users = fs::read_to_string(ctl.join("users")).unwrap();
    let line = users.lines().last().unwrap();
    let hash = line.split(':').nth(2).unwrap();
    let cram = line.split(':').nth(3).unwrap();
    for args in [&["list"][..], &["list", "joe@example.org"][..]] {
        let out = text(&userdb(&ctl, args, b"").stdout);
        assert!(
            !out.contains(hash) && !out.contains(cram) && !out.contains("$6$"),
            "{out}"
        );
    }
}

#[test]
fn users_cdb_reads_with_tinycdb() {
    if !need("cdb") {
        return;
    }
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "pw");
    let out = run(
        Path::new("cdb"),
        [
            "-q",
            ctl.join("users.cdb").to_str().unwrap(),
            "@example.org",
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "tinycdb finds the domain key");
    let out = run(
        Path::new("cdb"),
        [
            "-q",
            ctl.join("users.cdb").to_str().unwrap(),
            "joe@example.org",
        ],
        &[],
        b"",
    );
    assert!(out.stdout.starts_with(b"+$6$"), "{}", text(&out.stdout));
}

#[test]
fn hand_edited_users_with_a_dovecot_hash() {
    // An administrator migrating from Dovecot pastes doveadm's hashes into
    // users and runs `userdb make`.
    if !need("doveadm") {
        return;
    }
    let (_tmp, ctl) = setup();
    let out = run(
        Path::new("doveadm"),
        ["pw", "-s", "SHA512-CRYPT", "-p", "migrated"],
        &[],
        b"",
    );
    let hash = text(&out.stdout)
        .trim()
        .trim_start_matches("{SHA512-CRYPT}")
        .to_string();
    assert!(hash.starts_with("$6$"), "{hash}");
    let out = run(
        Path::new("doveadm"),
        ["pw", "-s", "CRAM-MD5", "-p", "migrated"],
        &[],
        b"",
    );
    let cram = text(&out.stdout)
        .trim()
        .trim_start_matches("{CRAM-MD5}")
        .to_string();
    fs::write(
        ctl.join("users"),
        format!("# migrated\nold@example.org:+:{hash}:{cram}:\n"),
    )
    .unwrap();
    let out = userdb(&ctl, &["make"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = checkpassword(&ctl, b"old@example.org\0migrated\0\0", &["true"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "Dovecot's SHA512-CRYPT hash works"
    );
    let ch = b"<42.1@mx.example.org>";
    let digest = rgauth::cram::hex(&rgauth::CramKeys::from_password(b"migrated").digest(ch));
    let input = [
        &b"old@example.org\0"[..],
        digest.as_bytes(),
        b"\0",
        ch,
        b"\0",
    ]
    .concat();
    assert_eq!(
        checkpassword(&ctl, &input, &["true"]).status.code(),
        Some(0),
        "Dovecot's CRAM-MD5 keys work"
    );

    // a broken hand edit: make refuses, naming the line, and keeps the cdb
    let before = fs::read(ctl.join("users.cdb")).unwrap();
    fs::write(ctl.join("users"), "# x\nold@example.org:+:nonsense::\n").unwrap();
    let out = userdb(&ctl, &["make"], b"");
    assert_eq!(out.status.code(), Some(100));
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read(ctl.join("users.cdb")).unwrap(), before);
}

#[test]
fn cram_keys_match_doveadm() {
    if !need("doveadm") {
        return;
    }
    let (_tmp, ctl) = setup();
    for pw in ["secret", "tanstaaftanstaaf", &"long".repeat(30)] {
        let (_t, ctl2) = setup();
        add(&ctl2, &["u@example.org"], pw);
        let ours = fs::read_to_string(ctl2.join("users")).unwrap();
        let ours = ours
            .lines()
            .last()
            .unwrap()
            .split(':')
            .nth(3)
            .unwrap()
            .to_string();
        let out = run(
            Path::new("doveadm"),
            ["pw", "-s", "CRAM-MD5", "-p", pw],
            &[],
            b"",
        );
        assert_eq!(
            text(&out.stdout).trim(),
            format!("{{CRAM-MD5}}{ours}"),
            "password {pw}"
        );
    }
    drop(ctl);
}

// ---- checkpassword ----

#[test]
fn checkpassword_good_login_sets_env_and_execs() {
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "s3cret");
    add(&ctl, &["-d", "/home/ann", "ann@example.org"], "pw");
    let out = checkpassword(&ctl, b"joe@example.org\0s3cret\0\0", SHOW_ENV);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "USER=joe@example.org HOME=/ AUTHUSER=joe@example.org\n"
    );
    // case-insensitive address, home set, no trailing NUL after the extra
    let out = checkpassword(&ctl, b"Ann@Example.Org\0pw\x00123456", SHOW_ENV);
    assert_eq!(
        text(&out.stdout),
        "USER=ann@example.org HOME=/home/ann AUTHUSER=ann@example.org\n"
    );
}

/// Two accounts with password s3cret: joe@example.org, and
/// off@example.org with login disabled.
fn joe_and_disabled_off(ctl: &Path) {
    add(ctl, &["joe@example.org"], "s3cret");
    add(ctl, &["off@example.org"], "s3cret");
    assert_eq!(
        userdb(ctl, &["disable", "off@example.org"], b"")
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn checkpassword_bad_credentials_all_answer_1() {
    let (_tmp, ctl) = setup();
    joe_and_disabled_off(&ctl);
    let cases: &[&[u8]] = &[
        b"joe@example.org\0wrong\0\0",
        b"joe@example.org\0S3CRET\0\0",
        b"joe@example.org\0\0\0",
        b"nobody@example.org\0s3cret\0\0",
        b"off@example.org\0s3cret\0\0",
        b"@example.org\0\0\0",
        b"joe\0s3cret\0\0",
        b"\0\0\0",
    ];
    for input in cases {
        let out = checkpassword(&ctl, input, &["sh", "-c", "echo RAN"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(input));
        assert!(out.stdout.is_empty(), "prog must not run");
        assert!(
            out.stderr.is_empty(),
            "bad credentials are not an error: {}",
            text(&out.stderr)
        );
    }
    // over 512 bytes: bad credentials, as djb's checkpassword
    let mut long = b"joe@example.org\0".to_vec();
    long.extend_from_slice(&[b'x'; 600]);
    long.extend_from_slice(b"\0\0");
    assert_eq!(checkpassword(&ctl, &long, &["true"]).status.code(), Some(1));
}

#[test]
fn checkpassword_cram_md5() {
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "s3cret");
    add(&ctl, &["-n", "ann@example.org"], "s3cret");
    let ch = rgauth::cram_challenge("mx.example.org");
    // the digest computed independently, by Python's hmac module
    let digest = if have("python3") {
        let out = run(
            Path::new("python3"),
            ["-c", "import hmac,hashlib,sys; print(hmac.new(b's3cret', sys.argv[1].encode(), hashlib.md5).hexdigest())", &ch],
            &[],
            b"",
        );
        text(&out.stdout).trim().to_string()
    } else {
        rgauth::cram::hex(&rgauth::CramKeys::from_password(b"s3cret").digest(ch.as_bytes()))
    };
    let input = |user: &str, d: &str, c: &str| format!("{user}\0{d}\0{c}\0").into_bytes();
    let code = |i: Vec<u8>| checkpassword(&ctl, &i, &["true"]).status.code();
    assert_eq!(code(input("joe@example.org", &digest, &ch)), Some(0));
    assert_eq!(
        code(input("joe@example.org", &digest.to_uppercase(), &ch)),
        Some(0)
    );
    assert_eq!(
        code(input("joe@example.org", &digest, "<other@mx.example.org>")),
        Some(1)
    );
    assert_eq!(
        code(input("joe@example.org", &digest, "")),
        Some(1),
        "no challenge: a password"
    );
    assert_eq!(
        code(input("ann@example.org", &digest, &ch)),
        Some(1),
        "-n account"
    );
    assert_eq!(code(input("nobody@example.org", &digest, &ch)), Some(1));
    // a plaintext password still works with a challenge present
    assert_eq!(code(input("joe@example.org", "s3cret", &ch)), Some(0));
}

#[test]
fn checkpassword_misuse_and_trouble() {
    let (tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "pw");
    // no program: 2
    let out = checkpassword(&ctl, b"joe@example.org\0pw\0\0", &[]);
    assert_eq!(out.status.code(), Some(2));
    // malformed input: 2
    assert_eq!(
        checkpassword(&ctl, b"joe@example.org", &["true"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        checkpassword(&ctl, b"joe@example.org\0pw", &["true"])
            .status
            .code(),
        Some(2)
    );
    // fd 3 not open: 2
    let out = run(
        &bin("checkpassword"),
        ["true"],
        &[("CONTROLDIR", ctl.to_str().unwrap())],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // the program cannot be run: 111
    let out = checkpassword(&ctl, b"joe@example.org\0pw\0\0", &["/nonexistent/prog"]);
    assert_eq!(out.status.code(), Some(111));
    assert!(
        text(&out.stderr).starts_with("checkpassword: fatal: unable to run"),
        "{}",
        text(&out.stderr)
    );
    // users.cdb unreadable: 111, and so for an unknown user too
    let cdb = ctl.join("users.cdb");
    fs::rename(&cdb, tmp.join("saved.cdb")).unwrap();
    fs::create_dir(&cdb).unwrap();
    for input in [
        &b"joe@example.org\0pw\0\0"[..],
        b"nobody@example.org\0pw\0\0",
    ] {
        let out = checkpassword(&ctl, input, &["true"]);
        assert_eq!(out.status.code(), Some(111), "{}", text(&out.stderr));
    }
    fs::remove_dir(&cdb).unwrap();
    // users.cdb absent: no accounts, 1
    assert_eq!(
        checkpassword(&ctl, b"joe@example.org\0pw\0\0", &["true"])
            .status
            .code(),
        Some(1)
    );
    // a corrupt cdb: 111, never a crash
    fs::write(&cdb, b"garbage").unwrap();
    let out = checkpassword(&ctl, b"joe@example.org\0pw\0\0", &["true"]);
    assert_eq!(out.status.code(), Some(111), "{}", text(&out.stderr));
}

#[test]
fn run_checkpassword_drives_our_checkpassword() {
    // the library call smtpd makes, against the real program
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "pw");
    add(&ctl, &["off@example.org"], "pw");
    userdb(&ctl, &["disable", "off@example.org"], b"");
    // env(1) sets CONTROLDIR for the child only (smtpd's children inherit
    // it from smtpd's environment)
    let mut ctl_var = OsString::from("CONTROLDIR=");
    ctl_var.push(&ctl);
    let argv: Vec<OsString> = vec![
        "env".into(),
        ctl_var.clone(),
        bin("checkpassword").into(),
        "true".into(),
    ];
    assert_eq!(
        run_checkpassword(&argv, b"joe@example.org", b"pw", b""),
        CheckOutcome::Ok
    );
    assert_eq!(
        run_checkpassword(&argv, b"joe@example.org", b"px", b""),
        CheckOutcome::Bad
    );
    assert_eq!(
        run_checkpassword(&argv, b"off@example.org", b"pw", b""),
        CheckOutcome::Bad
    );
    assert_eq!(
        run_checkpassword(&argv, b"who@example.org", b"pw", b""),
        CheckOutcome::Bad
    );
    let ch = rgauth::cram_challenge("mx.example.org");
    let d = rgauth::cram::hex(&rgauth::CramKeys::from_password(b"pw").digest(ch.as_bytes()));
    assert_eq!(
        run_checkpassword(&argv, b"joe@example.org", d.as_bytes(), ch.as_bytes()),
        CheckOutcome::Ok
    );
    let argv: Vec<OsString> = vec![
        "env".into(),
        ctl_var,
        bin("checkpassword").into(),
        "/nonexistent".into(),
    ];
    assert!(matches!(
        run_checkpassword(&argv, b"joe@example.org", b"pw", b""),
        CheckOutcome::Temp(_)
    ));
}

#[test]
fn users_cdb_group_survives_rebuilds() {
    // chgrp users.cdb once for smtpd's or Dovecot's uid; userdb keeps it
    if !have("id") {
        return;
    }
    let (_tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "pw");
    let gid = fs::metadata(ctl.join("users.cdb"))
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .unwrap();
    let other = if gid == 0 { 1 } else { gid }; // daemon: any group we may chown to as root
    if std::os::unix::fs::chown(ctl.join("users.cdb"), None, Some(other)).is_err() {
        eprintln!("skipping: cannot chgrp (not root)");
        return;
    }
    add(&ctl, &["ann@example.org"], "pw");
    let m = fs::metadata(ctl.join("users.cdb")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&m), other);
    assert_eq!(m.permissions().mode() & 0o777, 0o640);
}

// ---- Dovecot ----

#[test]
fn dovecot_logs_in_through_checkpassword() {
    let (tmp, ctl) = setup();
    joe_and_disabled_off(&ctl);
    let Some(d) = dovecot::Dovecot::start(&tmp, &ctl, &tmp.join("relay"), &[]) else {
        return;
    };
    assert!(
        d.pop3_login("joe@example.org", "s3cret"),
        "good password: {}",
        d.log()
    );
    assert!(
        d.pop3_login("JOE@example.org", "s3cret"),
        "any case: {}",
        d.log()
    );
    assert!(!d.pop3_login("joe@example.org", "wrong"), "bad password");
    assert!(!d.pop3_login("off@example.org", "s3cret"), "disabled");
    assert!(!d.pop3_login("nobody@example.org", "s3cret"), "unknown");
    assert!(
        d.imap_login("joe@example.org", "s3cret"),
        "IMAP too: {}",
        d.log()
    );
    assert!(!d.imap_login("joe@example.org", "wrong"));
    // enabling takes effect at once: users.cdb is read per login and keeps
    // the group Dovecot reads it through
    assert_eq!(
        userdb(&ctl, &["enable", "off@example.org"], b"")
            .status
            .code(),
        Some(0)
    );
    assert!(d.pop3_login("off@example.org", "s3cret"), "{}", d.log());
    let log = d.log();
    assert!(log.contains("Login: user=<joe@example.org>"), "{log}");
    assert!(!log.contains("s3cret"), "no password in Dovecot's log");
}

#[test]
fn dovecot_with_unreadable_users_cdb_is_temporary_failure() {
    let (tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "s3cret");
    let Some(d) = dovecot::Dovecot::start(&tmp, &ctl, &tmp.join("relay"), &[]) else {
        return;
    };
    // back to root:root 0640: Dovecot's auth user cannot read it
    std::os::unix::fs::chown(ctl.join("users.cdb"), None, Some(0)).unwrap();
    assert!(!d.pop3_login("joe@example.org", "s3cret"));
    let log = d.log();
    assert!(
        log.contains("unable to open") || log.contains("status=111") || log.contains("Temporary"),
        "{log}"
    );
}

#[test]
fn userdb_asks_on_the_tty_twice_without_echo() {
    // script(1) gives userdb a terminal; the input is fed slowly so it
    // arrives after the no-echo prompt is up
    if !need("script") {
        return;
    }
    let (_tmp, ctl) = setup();
    let tty_add = |addr: &str, first: &str, second: &str| -> Output {
        let pipeline = format!(
            "(sleep 1; printf '%s\\n' '{first}'; sleep 1; printf '%s\\n' '{second}'; sleep 1) | \
             script -qec '{} add {addr}' /dev/null",
            bin("userdb").display()
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(pipeline).env("CONTROLDIR", &ctl);
        run_with_input(&mut cmd, b"", Duration::from_secs(60))
    };
    let out = tty_add("joe@example.org", "ttypass1", "ttypass1");
    let shown = text(&out.stdout);
    assert!(
        shown.contains("Password:") && shown.contains("Again:"),
        "{shown}"
    );
    assert!(!shown.contains("ttypass1"), "password echoed: {shown}");
    let out = checkpassword(&ctl, b"joe@example.org\0ttypass1\0\0", &["true"]);
    assert_eq!(out.status.code(), Some(0));
    // two different entries: nothing added
    let out = tty_add("ann@example.org", "one", "two");
    assert!(
        text(&out.stdout).contains("differ"),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&userdb(&ctl, &["list"], b"").stdout).contains("ann@"));
}

#[test]
fn dovecot_chain_records_pop_before_smtp() {
    // the helper as popbefore uses it: checkpassword relayallow reply
    let (tmp, ctl) = setup();
    add(&ctl, &["joe@example.org"], "s3cret");
    let relay = tmp.join("relay");
    fs::create_dir_all(&relay).unwrap();
    fs::set_permissions(&relay, fs::Permissions::from_mode(0o1777)).unwrap();
    let Some(d) = dovecot::Dovecot::start(&tmp, &ctl, &relay, &["relayallow"]) else {
        return;
    };
    assert!(!d.pop3_login_from("127.0.0.8", "joe@example.org", "wrong"));
    assert!(
        !relay.join("127.0.0.8").exists(),
        "a failed login records nothing"
    );
    assert!(
        d.pop3_login_from("127.0.0.9", "joe@example.org", "s3cret"),
        "{}",
        d.log()
    );
    let entry = fs::read_to_string(relay.join("127.0.0.9")).unwrap();
    assert_eq!(entry, "USER=joe@example.org\n");
}
