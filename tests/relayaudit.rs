//! relayaudit end to end: one control directory per lint finding (the
//! finding, its file and line, the exit status), a clean directory built
//! like the repository's `control/`, the abuse limits with their defaults
//! and from files, and the bans that relaydeny wrote. The control files
//! are compiled by the real tcprules, mkcdb and userdb.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use relaygate::{bin, run_with_input, TempDir};

/// A CONTROLDIR and a DENYDIR in a fresh temp directory.
struct Site {
    tmp: TempDir,
}

/// relayaudit's exit status and standard output.
struct Audit {
    code: i32,
    out: String,
    err: String,
}

impl Audit {
    /// The finding line that starts with `prefix` (`danger: tcp.smtp:3: `);
    /// panics with the whole output when there is none.
    fn finding(&self, prefix: &str) -> &str {
        self.finding_with(prefix, "")
    }
    /// The line that starts with `prefix` and contains `needle` (a line may
    /// have several findings).
    fn finding_with(&self, prefix: &str, needle: &str) -> &str {
        self.out
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "no line starting {prefix:?} with {needle:?} in:\n{}",
                    self.out
                )
            })
    }
    fn has(&self, prefix: &str) -> bool {
        self.out.lines().any(|l| l.starts_with(prefix))
    }
    fn dangers(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter(|l| l.starts_with("danger: "))
            .collect()
    }
}

impl Site {
    fn new(tag: &str) -> Site {
        let tmp = TempDir::new(tag);
        fs::create_dir(tmp.join("control")).unwrap();
        fs::create_dir(tmp.join("deny")).unwrap();
        Site { tmp }
    }
    fn ctl(&self) -> PathBuf {
        self.tmp.join("control")
    }
    fn deny(&self) -> PathBuf {
        self.tmp.join("deny")
    }
    fn file(&self, name: &str) -> PathBuf {
        self.ctl().join(name)
    }
    fn write(&self, name: &str, text: &str) -> &Site {
        fs::write(self.file(name), text).unwrap();
        self
    }
    fn chmod(&self, name: &str, mode: u32) {
        fs::set_permissions(self.file(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CONTROLDIR", self.ctl())
            .env("DENYDIR", self.deny())
            .env("STATEDIR", self.tmp.join("state"));
    }
    fn run(&self, prog: &str, args: &[&str], input: &[u8]) -> Output {
        let mut cmd = Command::new(bin(prog));
        cmd.args(args);
        if self.ctl().is_dir() {
            // mkcdb and tcprules are given names relative to CONTROLDIR
            cmd.current_dir(self.ctl());
        }
        self.env(&mut cmd);
        run_with_input(&mut cmd, input, Duration::from_secs(60))
    }
    fn ok(&self, prog: &str, args: &[&str], input: &[u8]) {
        let o = self.run(prog, args, input);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{prog} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    /// `tcprules NAME.cdb NAME.tmp < NAME`.
    fn tcprules(&self, name: &str) {
        let input = fs::read(self.file(name)).unwrap();
        self.ok(
            "tcprules",
            &[&format!("{name}.cdb"), &format!("{name}.tmp")],
            &input,
        );
    }
    fn mkcdb(&self, name: &str) {
        self.ok("mkcdb", &[name], b"");
    }
    fn audit(&self, args: &[&str]) -> Audit {
        let o = self.run("relayaudit", args, b"");
        Audit {
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Set the modification time of `name` to `secs` seconds ago.
    fn age(&self, name: &str, secs: u64) {
        fs::File::options()
            .write(true)
            .open(self.file(name))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }
}

/// A site built like the repository's `control/` (compiled as scripts/run
/// does), with rcpthosts set: relaygate's sample configuration.
fn sample_site(tag: &str) -> Site {
    let s = Site::new(tag);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("control");
    for e in fs::read_dir(&repo).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if !name.ends_with(".cdb") {
            fs::copy(e.path(), s.file(&name)).unwrap();
        }
    }
    s.tcprules("tcp.smtp");
    s.mkcdb("morercpthosts");
    s
}

// ---- a clean configuration ------------------------------------------------------------

#[test]
fn sample_control_dir_is_clean_and_exits_0() {
    let s = sample_site("ra-sample");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "{}\n{}", a.out, a.err);
    assert!(a.dangers().is_empty(), "{}", a.out);
    // the inventory people read is still there, then the new sections
    for part in [
        "rcpthosts: 2 domains\n",
        "tcp.smtp.cdb: RELAYCLIENT set for: 127.0.0.1\n",
        "stale: none\n",
        "== abuse limits ==\n",
        "== bans in DENYDIR ",
        "== findings ==\n",
        "findings: 0 danger, ",
    ] {
        assert!(a.out.contains(part), "{part:?} missing in:\n{}", a.out);
    }
    // example.org has no recipient check: said, but not dangerous
    a.finding("warning: rcpthosts:5: example.org: recipients are not checked at RCPT");
    // --quiet: the findings only
    let q = s.audit(&["--quiet"]);
    assert_eq!(q.code, 0);
    assert!(!q.out.is_empty());
    for l in q.out.lines() {
        assert!(
            l.starts_with("warning: ") || l.starts_with("info: "),
            "{l:?} in --quiet output"
        );
    }
}

// ---- tcp.smtp ----------------------------------------------------------------------------

#[test]
fn catch_all_relayclient_rule_is_danger() {
    let s = Site::new("ra-catchall");
    s.write("rcpthosts", "example.org\n").write(
        "tcp.smtp",
        "# rules\n127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow,RELAYCLIENT=\"\"\n",
    );
    s.tcprules("tcp.smtp");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100, "{}", a.out);
    let f = a.finding("danger: tcp.smtp:3: ");
    assert!(
        f.contains("`:allow,RELAYCLIENT=\"\"` lets every client relay"),
        "{f}"
    );
    assert!(f.contains("an open relay"), "{f}");
    assert_eq!(a.dangers().len(), 1, "{}", a.out);
    // the catch-all without RELAYCLIENT is what the sample has: clean
    s.write("tcp.smtp", "127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n");
    s.tcprules("tcp.smtp");
    assert_eq!(s.audit(&[]).code, 0);
}

#[test]
fn tcp_smtp_ranges_wider_than_a_16_are_danger() {
    let s = Site::new("ra-widetcp");
    s.write("rcpthosts", "example.org\n").write(
        "tcp.smtp",
        "192.0.2.0/16:allow,RELAYCLIENT=\"\"\n\
         10.:allow,RELAYCLIENT=\"\"\n\
         198.18.0.0/15:allow,RELAYCLIENT=\"\"\n\
         2001:db8::/24:allow,RELAYCLIENT=\"\"\n\
         2001:db8:1::/48:allow,RELAYCLIENT=\"\"\n\
         11.:allow\n",
    );
    s.tcprules("tcp.smtp");
    let a = s.audit(&["--quiet"]);
    assert_eq!(a.code, 100);
    assert!(
        !a.has("danger: tcp.smtp:1: "),
        "a /16 is not wider than a /16"
    );
    a.finding_with(
        "danger: tcp.smtp:2: ",
        "lets 10.0.0.0/8 relay, wider than a /16",
    );
    a.finding_with("danger: tcp.smtp:3: ", "lets 131072 addresses relay");
    a.finding_with(
        "danger: tcp.smtp:4: ",
        "lets an IPv6 /24 relay, wider than a /32",
    );
    assert!(!a.has("danger: tcp.smtp:5: "));
    assert!(
        !a.has("danger: tcp.smtp:6: "),
        "no RELAYCLIENT, no relaying"
    );
}

#[test]
fn a_rule_only_the_cdb_holds_is_named_by_its_key() {
    let s = Site::new("ra-cdbonly");
    s.write("rcpthosts", "example.org\n")
        .write("tcp.smtp", ":allow,RELAYCLIENT=\"\"\n");
    s.tcprules("tcp.smtp");
    // the text was fixed but never compiled, and it is older than the cdb
    // (copied from elsewhere): the cdb still opens the relay
    s.write("tcp.smtp", ":allow\n");
    s.age("tcp.smtp", 60);
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    assert!(a
        .out
        .contains("stale: tcp.smtp.cdb differs from tcp.smtp: 1 only in tcp.smtp (first: (the empty key)), 1 only in tcp.smtp.cdb (first: (the empty key)): rebuild it: tcprules tcp.smtp.cdb tcp.smtp.tmp < tcp.smtp\n"), "{}", a.out);
    a.finding_with(
        "danger: tcp.smtp.cdb: key (the empty key): ",
        "lets every client relay",
    );
    a.finding("danger: tcp.smtp.cdb: differs from tcp.smtp although not older");
}

// ---- NAT gateways and proxies --------------------------------------------------------------

#[test]
fn docker_gateway_trusted_to_relay_is_danger() {
    let s = Site::new("ra-docker");
    s.write("rcpthosts", "example.org\n").write(
        "tcp.smtp",
        "127.0.0.1:allow,RELAYCLIENT=\"\"\n172.17.0.1:allow,RELAYCLIENT=\"\"\n:allow\n",
    );
    s.tcprules("tcp.smtp");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    let f = a.finding("danger: tcp.smtp:2: the NAT gateway 172.17.0.1 ");
    assert!(f.contains("Docker default bridge docker0"), "{f}");
}

#[test]
fn qemu_gateway_in_relayclients_is_danger() {
    let s = Site::new("ra-qemu");
    s.write("rcpthosts", "example.org\n")
        .write("relayclients", "192.0.2.7\n10.0.2.0/24\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: relayclients:2: the NAT gateway 10.0.2.2 (QEMU/VirtualBox");
    // the same from the cdb (smtpd reads the cdb when there is one)
    s.mkcdb("relayclients");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: relayclients:2: the NAT gateway 10.0.2.2");
}

#[test]
fn gateway_with_its_own_rule_is_safe_and_router_address_warned() {
    // tcpserver's lookup order: the exact address wins over the prefix
    let s = Site::new("ra-gwrule");
    s.write("rcpthosts", "example.org\n").write(
        "tcp.smtp",
        "10.0.2.2:allow\n10.0.2.:allow,RELAYCLIENT=\"\"\n",
    );
    s.tcprules("tcp.smtp");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "{}", a.out);
    assert!(!a.out.contains("10.0.2.2"), "{}", a.out);
    let f = a.finding("warning: tcp.smtp:2: this lets 10.0.2.1, the usual router address");
    assert!(f.contains("`ADDRESS:allow`"), "{f}");
    // naming the router itself is the classic mistake
    s.write("tcp.smtp", "192.168.1.1:allow,RELAYCLIENT=\"\"\n");
    s.tcprules("tcp.smtp");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: tcp.smtp:1: 192.168.1.1 looks like the router of a private network");
}

#[test]
fn proxy_trusted_to_relay_is_danger_with_proxies() {
    let s = Site::new("ra-proxy");
    s.write("rcpthosts", "example.org\n").write(
        "tcp.smtp",
        "127.0.0.1:allow,RELAYCLIENT=\"\"\n192.0.2.:allow,RELAYCLIENT=\"\"\n:allow\n",
    );
    s.tcprules("tcp.smtp");
    assert_eq!(s.audit(&[]).code, 0, "no proxy named: nothing to say");
    let a = s.audit(&["--proxies", "198.51.100.4,192.0.2.9"]);
    assert_eq!(a.code, 100);
    let f = a.finding("danger: tcp.smtp:2: the load balancer 192.0.2.9 (--proxies) may relay");
    assert!(f.contains("`192.0.2.9:allow`"), "{f}");
    assert!(!a.out.contains("198.51.100.4"), "{}", a.out);
    // a proxy on loopback trusted through 127.0.0.1
    let a = s.audit(&["--proxies=127.0.0.1"]);
    assert_eq!(a.code, 100);
    a.finding("danger: tcp.smtp:1: the load balancer 127.0.0.1");
    // tcpserver -y's syntax; anything else is a usage error
    let a = s.audit(&["--proxies", "192.0.2.9,nonsense"]);
    assert_eq!(a.code, 100);
    assert!(a.err.contains("relayaudit: usage: "), "{}", a.err);
}

// ---- relayclients --------------------------------------------------------------------------

#[test]
fn wide_relayclients_entries_are_danger() {
    let s = Site::new("ra-wideclients");
    s.write("rcpthosts", "example.org\n").write(
        "relayclients",
        "# trusted\n192.0.2.0/16\n10.0.0.0/8:\n2001:db8::/20\n2001:db8:5::/48\n",
    );
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    assert!(!a.has("danger: relayclients:2: "));
    a.finding_with(
        "danger: relayclients:3: ",
        "lets 10.0.0.0/8 relay, wider than a /16",
    );
    a.finding_with("danger: relayclients:4: ", "wider than a /32");
    assert!(!a.has("danger: relayclients:5: "));
}

#[test]
fn relayclients_line_that_does_not_parse() {
    let s = Site::new("ra-badclient");
    s.write("rcpthosts", "example.org\n")
        .write("relayclients", "192.0.2.7\nnot-an-address\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "smtpd ignores the line: {}", a.out);
    a.finding("warning: relayclients:2: `not-an-address` does not parse");
    // with a cdb, mkcdb cannot rebuild it: the old cdb stays in force
    s.write("relayclients", "192.0.2.7\n");
    s.mkcdb("relayclients");
    s.write("relayclients", "192.0.2.7\nnot-an-address\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: relayclients:2: `not-an-address` does not parse");
}

// ---- rcpthosts -------------------------------------------------------------------------------

#[test]
fn rcpthosts_missing_or_empty_is_a_warning() {
    let s = Site::new("ra-norcpt");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "relaygate fails closed: {}", a.out);
    a.finding_with(
        "warning: rcpthosts: missing: ",
        "accepts mail for no domain",
    );
    s.write("rcpthosts", "# nothing yet\n\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0);
    a.finding("warning: rcpthosts: empty: ");
}

#[test]
fn wildcard_and_public_suffixes_in_rcpthosts_are_danger() {
    for (text, line, what) in [
        ("example.org\n*\n", 2, "rcpthosts has no wildcards"),
        (
            "example.org\n# all of them\n.com\n",
            3,
            "every domain under the public suffix com",
        ),
        ("com\n", 1, "is a top-level domain or public suffix"),
        ("example.org\n.co.uk.\n", 2, "public suffix co.uk"),
    ] {
        let s = Site::new("ra-tld");
        s.write("rcpthosts", text);
        let a = s.audit(&[]);
        assert_eq!(a.code, 100, "{text:?}: {}", a.out);
        let f = a.finding(&format!("danger: rcpthosts:{line}: "));
        assert!(f.contains(what), "{text:?}: {f}");
    }
    // a TLD in morercpthosts too (read from its cdb)
    let s = Site::new("ra-moretld");
    s.write("rcpthosts", "example.org\n")
        .write("morercpthosts", "backup.example.net\n.net\n");
    s.mkcdb("morercpthosts");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding(
        "danger: morercpthosts:2: `.net` makes every domain under the public suffix net ours",
    );
    // an ordinary domain and its subdomains are fine
    let s = Site::new("ra-oktld");
    s.write("rcpthosts", "example.org\n.example.org\nlocalhost\n");
    assert_eq!(s.audit(&[]).code, 0);
}

// ---- stale and diverging cdbs ---------------------------------------------------------------

#[test]
fn cdb_older_than_its_text_is_danger() {
    let s = Site::new("ra-older");
    s.write("rcpthosts", "example.org\n")
        .write("badrcptto", "x@example.org\n");
    s.mkcdb("badrcptto");
    s.age("badrcptto.cdb", 60);
    s.write("badrcptto", "x@example.org\ny@example.org\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    assert!(a
        .out
        .contains("stale: badrcptto.cdb is older than badrcptto: rebuild it: mkcdb badrcptto\n"));
    let f = a.finding("danger: badrcptto.cdb: older than badrcptto ");
    assert!(
        f.contains("1 only in badrcptto (first: `y@example.org`)"),
        "{f}"
    );
    s.mkcdb("badrcptto");
    assert_eq!(s.audit(&[]).code, 0);
}

#[test]
fn cdb_that_differs_from_its_text_is_danger_whatever_its_age() {
    // issue 12: a cdb distributed to a front-end without its text, or a
    // text edited with its old time kept (rsync -t, cp -p)
    let s = Site::new("ra-differs");
    s.write("rcpthosts", "example.org\n")
        .write("relayclients", "192.0.2.7\n192.0.2.8:+tag\n");
    s.mkcdb("relayclients");
    s.write("relayclients", "192.0.2.7\n192.0.2.8:+other\n");
    s.age("relayclients", 3600);
    let a = s.audit(&[]);
    assert_eq!(a.code, 100, "{}", a.out);
    assert!(a.out.contains(
        "stale: relayclients.cdb differs from relayclients: 1 only in relayclients (first: `192.0.2.8`), 1 only in relayclients.cdb (first: `192.0.2.8`): rebuild it: mkcdb relayclients\n"
    ), "{}", a.out);
    a.finding("danger: relayclients.cdb: differs from relayclients although not older");
    // same keys and data written in another order: the same content
    s.write("relayclients", "192.0.2.8:+tag\n192.0.2.7\n");
    s.age("relayclients", 3600);
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "{}", a.out);
    // tcprules sources are compiled by tcprules' own parser
    s.write("tcp.smtp", "10.1.0.0/20:allow,RELAYCLIENT=\"\"\n:allow\n");
    s.tcprules("tcp.smtp");
    s.write("tcp.smtp", "10.1.0.0/21:allow,RELAYCLIENT=\"\"\n:allow\n");
    s.age("tcp.smtp", 3600);
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    assert!(a.out.contains(
        "stale: tcp.smtp.cdb differs from tcp.smtp: 8 only in tcp.smtp.cdb (first: `10.1.10.`): rebuild it:"
    ), "{}", a.out);
}

#[test]
fn tcprules_source_without_its_cdb_or_that_does_not_compile() {
    let s = Site::new("ra-nocdb");
    s.write("rcpthosts", "example.org\n")
        .write("tcp.smtp", "127.0.0.1:allow,RELAYCLIENT=\"\"\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: tcp.smtp: no tcp.smtp.cdb: tcpserver reads only the cdb");
    s.tcprules("tcp.smtp");
    s.write(
        "tcp.smtp",
        "127.0.0.1:allow,RELAYCLIENT=\"\"\n10.1.1.1:allow,X\n",
    );
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: tcp.smtp:2: `10.1.1.1:allow,X` is not a tcprules rule");
}

// ---- relaymailfrom ---------------------------------------------------------------------------

#[test]
fn relaymailfrom_for_our_domain_without_accounts_is_danger() {
    let s = Site::new("ra-mailfrom");
    s.write("rcpthosts", "example.org\n")
        .write("relaymailfrom", "boss@partner.example\n@Example.ORG\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    let f = a.finding(
        "danger: relaymailfrom:2: `@Example.ORG`: anyone who claims a sender at example.org relays",
    );
    assert!(f.contains("users.cdb holds no account of it"), "{f}");
    a.finding("warning: relaymailfrom:1: `boss@partner.example`: anyone who claims this envelope sender relays");
    // an account of the domain: the local-sender rule checks the sender
    s.ok(
        "userdb",
        &["add", "-n", "-r", "1000", "joe@example.org"],
        b"secret-pw\n",
    );
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "{}", a.out);
    assert!(!a.has("danger: relaymailfrom"));
    // the same through the cdb
    s.mkcdb("relaymailfrom");
    fs::remove_file(s.file("users.cdb")).unwrap();
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: relaymailfrom:2: ");
}

// ---- file modes and the certificate ---------------------------------------------------------

#[test]
fn world_readable_secrets_are_danger() {
    for name in ["users.cdb", "users", "remoteauth", "servercert.pem"] {
        let s = Site::new("ra-modes");
        s.write("rcpthosts", "example.org\n");
        if name == "servercert.pem" {
            rgtls::make_test_cert(&s.file(name), "mx.example.org").unwrap();
        } else if name == "users.cdb" {
            let empty: &[(&[u8], &[u8])] = &[];
            fs::write(s.file(name), rgcdb::build(empty).unwrap()).unwrap();
        } else {
            s.write(name, "");
        }
        s.chmod(name, 0o600);
        let a = s.audit(&[]);
        assert!(!a.has(&format!("danger: {name}: ")), "{name}: {}", a.out);
        assert_eq!(a.code, 0, "{name}: {}", a.out);
        s.chmod(name, 0o644);
        let a = s.audit(&[]);
        assert_eq!(a.code, 100, "{name}");
        let f = a.finding(&format!("danger: {name}: world-readable (mode 0644): "));
        assert!(f.ends_with(&format!("chmod o-r {name}")), "{f}");
    }
}

#[test]
fn world_writable_control_file_is_danger() {
    let s = Site::new("ra-writable");
    s.write("rcpthosts", "example.org\n");
    s.chmod("rcpthosts", 0o666);
    let a = s.audit(&[]);
    assert_eq!(a.code, 100);
    a.finding("danger: rcpthosts: world-writable (mode 0666)");
}

#[test]
fn submission_without_certificate() {
    let s = Site::new("ra-cert");
    s.write("rcpthosts", "example.org\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0);
    a.finding("info: servercert.pem: missing: smtpd offers no STARTTLS");
    let a = s.audit(&["--submission"]);
    assert_eq!(a.code, 100);
    a.finding("danger: servercert.pem: missing: smtpd offers no STARTTLS");
    // a key without its certificate cannot work either
    s.write(
        "servercert.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    s.chmod("servercert.pem", 0o600);
    let a = s.audit(&["--submission"]);
    assert_eq!(a.code, 100);
    a.finding("danger: servercert.pem: holds no certificate");
    rgtls::make_test_cert(&s.file("servercert.pem"), "mx.example.org").unwrap();
    s.chmod("servercert.pem", 0o600);
    let a = s.audit(&["--submission"]);
    assert_eq!(a.code, 0, "{}", a.out);
    assert!(!a.out.contains("servercert.pem"), "{}", a.out);
}

// ---- local domains without recipient checks (issue 11 item 7) -------------------------------

#[test]
fn local_domain_without_recipient_check_is_said() {
    let s = Site::new("ra-rcpts");
    s.write("rcpthosts", "example.org\nexample.net\n.example.org\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "not a relay danger: {}", a.out);
    a.finding("warning: rcpthosts:1: example.org: recipients are not checked at RCPT (no entry in recipients, no LMTP route to probe)");
    a.finding("warning: rcpthosts:2: example.net: recipients are not checked");
    assert!(!a.has("warning: rcpthosts:3: "), "{}", a.out);
    // a recipients list covers example.org; an LMTP route without
    // recipientcheck leaves example.net open, and says what to set
    s.write("recipients", "joe@example.org\n")
        .write("lmtproutes", "example.net:/run/dovecot/lmtp\n");
    s.mkcdb("recipients");
    let a = s.audit(&[]);
    assert!(!a.has("warning: rcpthosts:1: "), "{}", a.out);
    let f = a.finding("warning: rcpthosts:2: example.net: recipients are not checked");
    assert!(
        f.contains("recipientcheck does not probe its LMTP route"),
        "{f}"
    );
    assert!(f.contains("`lmtp 600`"), "{f}");
    s.write("recipientcheck", "lmtp\n");
    let a = s.audit(&[]);
    assert!(!a.out.contains("recipients are not checked"), "{}", a.out);
}

// ---- abuse limits ---------------------------------------------------------------------------

#[test]
fn limits_shown_with_defaults() {
    let s = Site::new("ra-limits");
    s.write("rcpthosts", "example.org\n");
    let a = s.audit(&[]);
    for line in [
        "authfailures: 10 600 3600 (default): 10 failed AUTH from one client IP within 600 s ban it for 3600 s",
        "authdelay: 15 (default): each failed AUTH for an account delays the next answer about it, doubling up to 15 s",
        "sendlimits: default 1000 86400 (default): 1000 relayed recipients per user (or per relaying client IP) within 86400 s",
        "senders: absent: after AUTH, MAIL FROM must be the login itself or <>",
        "recipients: absent: no list",
        "recipientcheck: absent: no LMTP probe",
        "probelimits: 30 600 3600 (default): 30 refused relay attempts from one client IP within 600 s ban it for 3600 s",
    ] {
        assert!(a.out.contains(line), "{line:?} missing in:\n{}", a.out);
    }
    // in SPEC's order, inside their section
    let sec = a.out.split("== abuse limits ==\n").nth(1).unwrap();
    let names: Vec<&str> = sec
        .lines()
        .take_while(|l| !l.starts_with("=="))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "authfailures",
            "authdelay",
            "sendlimits",
            "senders",
            "recipients",
            "recipientcheck",
            "probelimits"
        ]
    );
}

#[test]
fn limits_shown_from_files_and_turned_off_flagged() {
    let s = Site::new("ra-limitfiles");
    s.write("rcpthosts", "example.org\n")
        .write("authfailures", "# stricter\n5 300 7200\n")
        .write("authdelay", "0\n")
        .write(
            "sendlimits",
            "default 200 3600\nbulk@example.org 0 3600\nnonsense\n",
        )
        .write(
            "senders",
            "joe@example.org: sales@example.org @example.net\nbroken\n",
        )
        .write("recipients", "joe@example.org\n@example.net\n")
        .write("recipientcheck", "lmtp 120\n")
        .write("probelimits", "0 600 3600\n");
    let a = s.audit(&[]);
    assert_eq!(a.code, 0, "limits turned off are warnings: {}", a.out);
    for line in [
        "authfailures: 5 300 7200 (from the file): 5 failed AUTH from one client IP within 300 s ban it for 7200 s",
        "authdelay: 0 (from the file): off",
        "sendlimits: default 200 3600 (from the file): 200 relayed recipients per user (or per relaying client IP) within 3600 s; 1 per-user lines",
        "senders: 1 logins with more addresses (from the file)",
        "recipients: 2 entries in 2 domains (from recipients)",
        "recipientcheck: lmtp 120 (from the file): ",
        "probelimits: 0 600 3600 (from the file): off",
    ] {
        assert!(a.out.contains(line), "{line:?} missing in:\n{}", a.out);
    }
    a.finding("warning: authdelay:1: 0 turns the per-account delay off");
    a.finding("warning: probelimits:1: 0 turns this limit off");
    a.finding("warning: sendlimits:2: 0 turns the sending limit off for bulk@example.org");
    a.finding("warning: sendlimits:3: `nonsense` is not ");
    a.finding("warning: senders:2: `broken` is not `login: address ...`");
    assert!(!a.has("warning: authfailures"), "{}", a.out);
    s.write("authfailures", "10 600\n");
    let a = s.audit(&[]);
    assert!(a
        .out
        .contains("authfailures: unparseable (see the findings)\n"));
    a.finding("warning: authfailures:1: `10 600` is not N SECONDS BAN");
}

// ---- bans -------------------------------------------------------------------------------------

#[test]
fn bans_listed_from_denydir() {
    let s = Site::new("ra-bans");
    s.write("rcpthosts", "example.org\n");
    let a = s.audit(&[]);
    assert!(
        a.out.contains(&format!(
            "== bans in DENYDIR {} ==\nbans: 0 live, 0 expired",
            s.deny().display()
        )),
        "{}",
        a.out
    );
    s.ok(
        "relaydeny",
        &["add", "192.0.2.7", "600", "authfailures"],
        b"",
    );
    s.ok(
        "relaydeny",
        &["add", "2001:db8::9", "3600", "probelimits"],
        b"",
    );
    // a ban that ended (relaytable(5)'s format): counted, not listed
    fs::write(
        s.deny().join("192.0.2.8"),
        "until=1000000000\ncause=authfailures\n",
    )
    .unwrap();
    // an auto-deny entry (no until=) ages by RELAY_CLEAR_MINUTES
    fs::write(s.deny().join("192.0.2.99"), "").unwrap();
    let a = s.audit(&[]);
    assert_eq!(a.code, 0);
    let sec = a
        .out
        .split(" ==\n")
        .find(|p| p.starts_with("192.0.2."))
        .unwrap_or("");
    let lines: Vec<&str> = sec.lines().take_while(|l| !l.starts_with("==")).collect();
    assert_eq!(lines.len(), 4, "{}", a.out);
    assert!(
        lines[0].starts_with("192.0.2.7 cause=authfailures until="),
        "{lines:?}"
    );
    let left: u64 = lines[0].rsplit("left=").next().unwrap().parse().unwrap();
    assert!((595..=601).contains(&left), "{lines:?}");
    assert!(
        lines[1].starts_with("192.0.2.99 cause=none age="),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("2001:db8::9 cause=probelimits until="),
        "{lines:?}"
    );
    assert_eq!(
        lines[3],
        "bans: 3 live, 1 expired (removed by clearopensmtp; lift one with relaydeny del IP)"
    );
    // relaydeny del lifts one at once
    s.ok("relaydeny", &["del", "192.0.2.7"], b"");
    let a = s.audit(&[]);
    assert!(!a.out.contains("192.0.2.7 "), "{}", a.out);
    assert!(a.out.contains("bans: 2 live, 1 expired"));
}

// ---- failures -----------------------------------------------------------------------------

#[test]
fn unreadable_control_dir_or_corrupt_cdb_is_111_and_bad_usage_100() {
    let s = Site::new("ra-fail");
    fs::write(s.file("badmailfrom.cdb"), b"short").unwrap();
    let a = s.audit(&[]);
    assert_eq!(a.code, 111, "{}", a.out);
    assert!(
        a.err
            .starts_with("relayaudit: fatal: unable to read badmailfrom.cdb: "),
        "{}",
        a.err
    );
    fs::remove_file(s.file("badmailfrom.cdb")).unwrap();
    fs::remove_dir(s.ctl()).unwrap();
    let a = s.audit(&[]);
    assert_eq!(a.code, 111);
    assert!(
        a.err
            .starts_with("relayaudit: fatal: unable to read CONTROLDIR: "),
        "{}",
        a.err
    );
    let a = s.audit(&["--frobnicate"]);
    assert_eq!(a.code, 100);
    assert!(a.err.contains("relayaudit: usage: "), "{}", a.err);
}
