//! scripts/install end to end: installs the built programs into a temporary
//! root (no users created), checks the tree it makes (programs, man pages,
//! service dirs, systemd units, the data directories and their modes, the
//! first control files), that a second run changes nothing and keeps an
//! edited control file, and then runs the installed chain: tcpserver,
//! relaycheck and smtpd from the temporary root take a message into its
//! spool, and the installed deliver and remote hand it to a second,
//! receiving relaygate. A fresh install relays for nobody.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use relaygate::{bin_dir, free_port, need, run_with_input, wait_port, Server, TempDir};

const PREFIX: &str = "/usr/local/relaygate";

/// The programs the install must put in PREFIX/bin, whatever else is found.
const PROGRAMS: &[&str] = &[
    "tcpserver",
    "tcprules",
    "tcprulescheck",
    "smtpd",
    "spool",
    "deliver",
    "remote",
    "checkpassword",
    "userdb",
    "relayallow",
    "relaycheck",
    "clearopensmtp",
    "cdbmake",
    "cdbdump",
    "cdbget",
    "mkcdb",
    "relayaudit",
];

const UNITS: &[&str] = &[
    "relaygate-smtp.service",
    "relaygate-submission.service",
    "relaygate-smtps.service",
    "relaygate-deliver.service",
    "relaygate-clearopensmtp.service",
    "relaygate-clearopensmtp.timer",
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/install --destdir ROOT --prefix PREFIX --bindir <built programs>`.
fn install(root: &Path) -> String {
    let mut c = Command::new(src().join("scripts/install"));
    c.arg("--destdir")
        .arg(root)
        .args(["--prefix", PREFIX])
        .arg("--bindir")
        .arg(bin_dir());
    let o = run_with_input(&mut c, b"", Duration::from_secs(120));
    let out = text(&o);
    assert!(o.status.success(), "scripts/install failed:\n{out}");
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every program crate (crates/*/src/main.rs): the install must find new ones.
fn program_crates() -> Vec<String> {
    let mut v = Vec::new();
    for e in fs::read_dir(src().join("crates")).unwrap() {
        let p = e.unwrap().path();
        if p.join("src/main.rs").is_file() {
            v.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    v
}

/// Path -> (mode, size, mtime in ns, content) of everything below `root`:
/// equal snapshots mean nothing was written, replaced or re-moded.
type Snapshot = BTreeMap<PathBuf, (u32, u64, i128, Vec<u8>)>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(dir: &Path, out: &mut Snapshot) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
            let data = if m.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.insert(p.clone(), (m.mode() & 0o7777, m.len(), mtime, data));
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut s = Snapshot::new();
    walk(root, &mut s);
    s
}

fn check_tree(root: &Path) {
    let p = root.join(PREFIX.trim_start_matches('/'));
    let mut programs: Vec<String> = PROGRAMS.iter().map(|s| s.to_string()).collect();
    programs.extend(program_crates());
    for prog in &programs {
        let f = p.join("bin").join(prog);
        assert!(f.is_file(), "{} not installed", f.display());
        assert_eq!(mode(&f), 0o755, "{}", f.display());
        assert_eq!(
            fs::read(&f).unwrap(),
            fs::read(bin_dir().join(prog)).unwrap(),
            "{prog} differs from the built one"
        );
    }
    // every man page, in man5 and man8 (not on the system's MANPATH)
    let mut pages = 0;
    for e in fs::read_dir(src().join("man")).unwrap() {
        let m = e.unwrap().path();
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        let section = match m.extension().and_then(|x| x.to_str()) {
            Some("5") => "man5",
            Some("8") => "man8",
            _ => continue,
        };
        let f = p.join("man").join(section).join(&name);
        assert_eq!(fs::read(&f).ok(), fs::read(&m).ok(), "{}", f.display());
        assert_eq!(mode(&f), 0o644, "{}", f.display());
        pages += 1;
    }
    assert!(pages >= 20, "only {pages} man pages");
    // service dirs are copies (a supervisor's supervise/ lands there, not in
    // the checkout) whose run scripts use the installed programs
    for svc in ["smtp", "submission", "smtps", "deliver"] {
        let d = p.join("service").join(svc);
        assert!(
            fs::symlink_metadata(&d).unwrap().is_dir(),
            "{}",
            d.display()
        );
        let run = d.join("run");
        assert_eq!(mode(&run), 0o755, "{}", run.display());
        let script = fs::read_to_string(&run).unwrap();
        assert!(
            script
                .lines()
                .any(|l| l.starts_with(&format!("BINDIR={PREFIX}/bin"))),
            "{svc}/run does not use {PREFIX}/bin:\n{script}"
        );
        let st = Command::new("sh").arg("-n").arg(&run).status().unwrap();
        assert!(st.success(), "{svc}/run: syntax");
    }
    check_units(root);
    check_data(root);
}

/// The units are installed, and every relaygate program they start exists.
fn check_units(root: &Path) {
    let dir = root.join("etc/systemd/system");
    for u in UNITS {
        let f = dir.join(u);
        let unit = fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(mode(&f), 0o644);
        for word in unit.split(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            if let Some(rest) = word.strip_prefix(&format!("{PREFIX}/bin/")) {
                let prog = root
                    .join(PREFIX.trim_start_matches('/'))
                    .join("bin")
                    .join(rest);
                assert!(prog.is_file(), "{u} names {word}, not installed");
            }
        }
    }
    for u in &UNITS[..5] {
        let unit = fs::read_to_string(dir.join(u)).unwrap();
        assert!(unit.contains("NoNewPrivileges=yes"), "{u}: not hardened");
        assert!(unit.contains("ProtectSystem=strict"), "{u}: not hardened");
    }
    let deliver = fs::read_to_string(dir.join("relaygate-deliver.service")).unwrap();
    assert!(
        deliver.contains("\nUser=relaygate\n"),
        "deliver runs as root"
    );
    verify_units(root, &dir);
}

/// `systemd-analyze verify` on copies of the units whose paths point into the
/// temporary root (it checks that ExecStart programs exist), when installed.
fn verify_units(root: &Path, dir: &Path) {
    if !relaygate::have("systemd-analyze") {
        eprintln!("note: systemd-analyze not installed: units not verified");
        return;
    }
    let copies = root.with_file_name("verify");
    fs::create_dir_all(&copies).unwrap();
    let r = root.to_str().unwrap();
    let mut names = Vec::new();
    for u in UNITS {
        let unit = fs::read_to_string(dir.join(u)).unwrap();
        let unit = unit
            .replace(&format!("{PREFIX}/"), &format!("{r}{PREFIX}/"))
            .replace("/var/relaygate", &format!("{r}/var/relaygate"));
        fs::write(copies.join(u), unit).unwrap();
        names.push(copies.join(u));
    }
    let mut c = Command::new("systemd-analyze");
    c.args(["verify", "--man=no"]).args(&names);
    let o = run_with_input(&mut c, b"", Duration::from_secs(60));
    assert!(o.status.success(), "systemd-analyze verify:\n{}", text(&o));
    fs::remove_dir_all(&copies).unwrap();
}

/// The data tree with the least modes, and a control dir that is safe.
fn check_data(root: &Path) {
    let var = root.join("var/relaygate");
    for (d, m) in [
        ("control", 0o750),
        ("spool", 0o700),
        ("spool/tmp", 0o700),
        ("spool/new", 0o700),
        ("spool/info", 0o700),
        ("relay", 0o750),
        ("deny", 0o700),
        ("state", 0o700),
    ] {
        let p = var.join(d);
        assert!(p.is_dir(), "{} missing", p.display());
        assert_eq!(mode(&p), m, "{} mode {:o}", p.display(), mode(&p));
    }
    for f in ["me", "rcpthosts", "tcp.smtp", "tcp.smtp.cdb"] {
        assert_eq!(mode(&var.join("control").join(f)), 0o644, "control/{f}");
    }
    let me = fs::read_to_string(var.join("control/me")).unwrap();
    assert_eq!(me.lines().count(), 1, "me: {me:?}");
    assert!(!me.trim().is_empty() && !me.contains(' '), "me: {me:?}");
    // the placeholder is commented out: no domain is ours until edited
    let rcpthosts = fs::read_to_string(var.join("control/rcpthosts")).unwrap();
    assert!(rcpthosts.contains("#example.org"), "{rcpthosts}");
    for l in rcpthosts.lines() {
        let l = l.trim();
        assert!(l.is_empty() || l.starts_with('#'), "rcpthosts lists {l}");
    }
    let rules = fs::read_to_string(var.join("control/tcp.smtp")).unwrap();
    let active: Vec<&str> = rules.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(active, ["127.0.0.1:allow,RELAYCLIENT=\"\"", ":allow"]);
}

/// The installed tree of one root: its programs and its directories.
struct Installed {
    bin: PathBuf,
    control: PathBuf,
    spool: PathBuf,
    var: PathBuf,
}

impl Installed {
    fn new(root: &Path) -> Installed {
        let var = root.join("var/relaygate");
        Installed {
            bin: root.join(PREFIX.trim_start_matches('/')).join("bin"),
            control: var.join("control"),
            spool: var.join("spool"),
            var,
        }
    }

    fn env(&self, c: &mut Command) {
        c.env("CONTROLDIR", &self.control)
            .env("SPOOLDIR", &self.spool)
            .env("RELAYDIR", self.var.join("relay"))
            .env("DENYDIR", self.var.join("deny"))
            .env_remove("RELAYCLIENT")
            .env_remove("QMAILQUEUE")
            .env_remove("DNSRESOLVER");
    }

    /// The port 25 chain of scripts/service/smtp/run (without -u/-g: the
    /// test's tree belongs to the user running it) on 127.0.0.1:port.
    fn smtp(&self, port: u16, log: &Path) -> Server {
        let b = &self.bin;
        let mut c = Command::new(b.join("tcpserver"));
        c.args(["-v", "-H", "-R", "-X", "-x"])
            .arg(self.control.join("tcp.smtp.cdb"))
            .args(["-c", "10", "127.0.0.1", &port.to_string()])
            .arg(b.join("relaycheck"))
            .arg(b.join("smtpd"))
            .arg(b.join("checkpassword"))
            .arg("/bin/true");
        self.env(&mut c);
        let s = Server::start(c, log);
        wait_port(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
        s
    }

    fn messages(&self) -> Vec<rgspool::Spooled> {
        rgspool::list(&self.spool)
            .unwrap()
            .iter()
            .map(|p| rgspool::read(p).unwrap())
            .collect()
    }
}

/// swaks from `src` to 127.0.0.1:port; `quit` after RCPT, or the whole
/// message with `marker` in its body. Its transcript.
fn swaks(src: &str, port: u16, to: &str, marker: Option<&str>) -> String {
    let mut c = Command::new("swaks");
    c.args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--local-interface", src])
        .args(["--from", "sender@example.net", "--to", to])
        .args(["--timeout", "20"]);
    match marker {
        Some(m) => c.args(["--body", m]),
        None => c.args(["--quit-after", "RCPT"]),
    };
    text(&run_with_input(&mut c, b"", Duration::from_secs(40)))
}

fn rcpt_reply(transcript: &str) -> &str {
    transcript
        .lines()
        .skip_while(|l| !l.contains("RCPT TO:"))
        .nth(1)
        .unwrap_or("")
}

#[test]
fn install_into_a_temp_root_then_run_the_installed_chain() {
    if !need("swaks") {
        return;
    }
    let tmp = TempDir::new("install");
    let root = tmp.join("root");
    let first = install(&root);
    assert!(first.contains("users not created"), "{first}");
    check_tree(&root);

    let inst = Installed::new(&root);
    let port = free_port();
    let smtp = inst.smtp(port, &tmp.join("smtp.log"));

    // a fresh install relays for nobody and accepts for no domain; only
    // 127.0.0.1 relays (tcp.smtp.cdb sets RELAYCLIENT for it)
    let t = swaks("127.0.0.2", port, "someone@foreign.example", None);
    assert!(rcpt_reply(&t).contains("553"), "relayed:\n{t}");
    let t = swaks("127.0.0.2", port, "joe@example.com", None);
    assert!(rcpt_reply(&t).contains("553"), "accepted:\n{t}");
    let t = swaks("127.0.0.1", port, "someone@foreign.example", None);
    assert!(rcpt_reply(&t).contains("250"), "127.0.0.1 refused:\n{t}");

    // a second run changes nothing, and keeps the admin's rcpthosts
    let rcpthosts = inst.control.join("rcpthosts");
    let mut edited = fs::read_to_string(&rcpthosts).unwrap();
    edited.push_str("example.com\n");
    fs::write(&rcpthosts, &edited).unwrap();
    let before = snapshot(&root);
    let second = install(&root);
    assert!(second.contains(" 0 changes"), "{second}");
    let after = snapshot(&root);
    assert_eq!(before.len(), after.len(), "files added or removed");
    for (p, a) in &before {
        assert!(
            after.get(p) == Some(a),
            "{} changed by a second run",
            p.display()
        );
    }
    assert_eq!(fs::read_to_string(&rcpthosts).unwrap(), edited);

    // mail for the domain just added arrives in the spool
    let marker = format!("install-test-{}", std::process::id());
    let t = swaks("127.0.0.2", port, "joe@example.com", Some(&marker));
    assert!(t.contains("250 2.0.0"), "not queued:\n{t}");
    let queued = inst.messages();
    assert_eq!(queued.len(), 1, "spool: {} messages", queued.len());
    assert_eq!(queued[0].recipients, [b"joe@example.com".to_vec()]);
    assert!(String::from_utf8_lossy(&queued[0].message).contains(&marker));
    drop(smtp);

    // and the installed deliver + remote hand it to the next hop
    let hop_root = tmp.join("hop");
    let hop = Installed::new(&hop_root);
    for d in [&hop.control, &hop.spool] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(hop.control.join("me"), "hop.example.com\n").unwrap();
    fs::write(hop.control.join("rcpthosts"), "example.com\n").unwrap();
    let hop_bin = root.join(PREFIX.trim_start_matches('/')).join("bin");
    let hop = Installed {
        bin: hop_bin,
        ..hop
    };
    let hop_port = free_port();
    let mut hop_rules = Command::new(hop.bin.join("tcprules"));
    hop_rules
        .current_dir(&hop.control)
        .args(["tcp.smtp.cdb", "tcp.smtp.tmp"]);
    let o = run_with_input(&mut hop_rules, b":allow\n", Duration::from_secs(10));
    assert!(o.status.success(), "tcprules: {}", text(&o));
    let _hop_server = hop.smtp(hop_port, &tmp.join("hop.log"));
    fs::write(
        inst.control.join("smtproutes"),
        format!("example.com:127.0.0.1:{hop_port}\n"),
    )
    .unwrap();
    let mut deliver = Command::new(inst.bin.join("deliver"));
    deliver.arg("-1");
    inst.env(&mut deliver);
    let o = run_with_input(&mut deliver, b"", Duration::from_secs(60));
    let log = text(&o);
    assert!(o.status.success(), "deliver -1 failed:\n{log}");
    assert!(inst.messages().is_empty(), "still queued:\n{log}");
    let arrived = hop.messages();
    assert_eq!(
        arrived.len(),
        1,
        "next hop: {} messages\n{log}",
        arrived.len()
    );
    assert_eq!(arrived[0].recipients, [b"joe@example.com".to_vec()]);
    assert!(String::from_utf8_lossy(&arrived[0].message).contains(&marker));
}
