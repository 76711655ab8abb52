//! The Debian package on this machine (root only, as CI runs): scripts/deb
//! builds it from the programs this test run built, `dpkg -i` installs it
//! (files, users, /var/relaygate with its owners and modes, nothing
//! started), the INSTALLED tcpserver + relaycheck + smtpd take one message
//! into the installed spool as the unit runs them (dropping to the
//! relaygate user), and `dpkg --purge` leaves the machine as it was
//! (users the test's install created are removed again).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use relaygate::{bin_dir, free_port, need, run_with_input, wait_port, Server, TempDir};

const PREFIX: &str = "/usr/lib/relaygate";
const VAR: &str = "/var/relaygate";
const USERS: [&str; 2] = ["relaygate", "relaylog"];
const GROUPS: [&str; 2] = ["relaygate", "relaylog"];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sh(cmd: &mut Command, secs: u64) -> Output {
    run_with_input(cmd, b"", Duration::from_secs(secs))
}

fn exists(what: &str, name: &str) -> bool {
    sh(Command::new("getent").args([what, name]), 10)
        .status
        .success()
}

/// The gid of group `name`, None when there is none.
fn gid(name: &str) -> Option<String> {
    let o = sh(Command::new("getent").args(["group", name]), 10);
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    o.status
        .success()
        .then(|| line.split(':').nth(2).unwrap_or("").to_string())
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Puts the machine back however the test ends: purges the package and
/// removes the users and groups that were not there before.
struct Machine {
    users_before: Vec<bool>,
    /// Each group's gid before the install, when it existed.
    groups_before: Vec<Option<String>>,
}

impl Machine {
    fn restore(&self) {
        sh(Command::new("dpkg").args(["--purge", "relaygate"]), 120);
        for (u, before) in USERS.iter().zip(&self.users_before) {
            if !before && exists("passwd", u) {
                sh(Command::new("userdel").arg(u), 30);
            }
        }
        // userdel also removes a group named as the user (USERGROUPS_ENAB),
        // even one that was there before (another test's relaygate group):
        // such a group comes back with its gid
        for (g, before) in GROUPS.iter().zip(&self.groups_before) {
            match before {
                None if exists("group", g) => {
                    sh(Command::new("groupdel").arg(g), 30);
                }
                Some(gid) if !exists("group", g) => {
                    sh(Command::new("groupadd").args(["-r", "-g", gid, g]), 30);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.restore();
        }
    }
}

/// May this machine take the package? Not when relaygate is installed
/// otherwise (its /var/relaygate must not be touched).
fn machine_is_free() -> bool {
    let installed = sh(Command::new("dpkg-query").args(["-W", "relaygate"]), 30)
        .status
        .success();
    let busy = installed || Path::new(VAR).exists() || Path::new(PREFIX).exists();
    if busy {
        let why = "relaygate is already installed here (dpkg or /var/relaygate)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipping: {why}");
    }
    !busy
}

fn mode_owner(p: &str) -> (u32, String) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let o = sh(Command::new("stat").args(["-c", "%U:%G", p]), 10);
    (m.mode() & 0o7777, text(&o).trim().to_string())
}

fn id(flag: &str, user: &str) -> String {
    text(&sh(Command::new("id").args([flag, user]), 10))
        .trim()
        .to_string()
}

/// Nothing of ours runs after the install: no process whose program is
/// in the package's bin directory.
fn ours_running() -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(exe) = fs::read_link(e.path().join("exe")) {
            if exe.starts_with(PREFIX) {
                found.push(format!(
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    exe.display()
                ));
            }
        }
    }
    found
}

fn build(out: &Path) -> PathBuf {
    let o = sh(
        Command::new(src().join("scripts/deb"))
            .arg("--bindir")
            .arg(bin_dir())
            .arg("--out")
            .arg(out)
            .args(["--compress", "gzip"]),
        600,
    );
    assert!(o.status.success(), "scripts/deb: {}", text(&o));
    let deb = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    assert!(deb.is_file(), "{}", deb.display());
    deb
}

fn check_package(deb: &Path) {
    let c = text(&sh(Command::new("dpkg-deb").arg("-c").arg(deb), 60));
    for want in [
        "./usr/lib/relaygate/bin/smtpd",
        "./usr/lib/relaygate/bin/tcpserver",
        "./usr/lib/relaygate/bin/relaystat",
        "./usr/lib/relaygate/relaygate-setup",
        "./usr/lib/relaygate/man/man8/smtpd.8",
        "./etc/relaygate/service/smtp/run",
        "./lib/systemd/system/relaygate-smtp.service",
        "./usr/share/doc/relaygate/copyright",
    ] {
        assert!(c.contains(want), "{want} not in the package:\n{c}");
    }
    // no data tree, nothing that shadows ucspi-tcp, tinycdb or Postfix
    for never in ["./var/", "./usr/bin/", "./usr/sbin/", "./usr/share/man/"] {
        assert!(!c.contains(never), "{never} in the package:\n{c}");
    }
    let info = text(&sh(Command::new("dpkg-deb").arg("-I").arg(deb), 60));
    assert!(info.contains("Package: relaygate"), "{info}");
    let units = fs::read_to_string(src().join("scripts/systemd/relaygate-smtp.service")).unwrap();
    assert!(
        units.contains("/usr/local/relaygate/bin/smtpd"),
        "unit names changed?"
    );
    let unit = text(&sh(
        Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xO ./lib/systemd/system/relaygate-smtp.service")
            .arg("sh")
            .arg(deb),
        60,
    ));
    assert!(
        unit.contains("/usr/lib/relaygate/bin/smtpd"),
        "unit paths not rewritten"
    );
    if need("lintian") {
        let l = sh(Command::new("lintian").arg(deb), 300);
        let out = text(&l);
        eprintln!("lintian:\n{out}");
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("E:")).collect();
        assert!(errors.is_empty(), "lintian errors:\n{out}");
    }
}

fn check_installed() {
    for p in ["smtpd", "tcpserver", "relaycheck", "deliver", "relaystat"] {
        let f = format!("{PREFIX}/bin/{p}");
        assert!(Path::new(&f).is_file(), "{f}");
    }
    for u in USERS {
        assert!(exists("passwd", u), "user {u} not created");
    }
    assert_eq!(id("-gn", "relaygate"), "relaygate");
    for (dir, mode, owner) in [
        (VAR.to_string(), 0o755, "root:root"),
        (format!("{VAR}/control"), 0o750, "root:relaygate"),
        (format!("{VAR}/spool"), 0o700, "relaygate:relaygate"),
        (format!("{VAR}/spool/new"), 0o700, "relaygate:relaygate"),
        (format!("{VAR}/relay"), 0o750, "root:relaygate"),
        (format!("{VAR}/deny"), 0o700, "relaygate:relaygate"),
    ] {
        assert_eq!(mode_owner(&dir), (mode, owner.to_string()), "{dir}");
    }
    let rcpthosts = fs::read_to_string(format!("{VAR}/control/rcpthosts")).unwrap();
    assert!(
        rcpthosts
            .lines()
            .all(|l| l.starts_with('#') || l.trim().is_empty()),
        "a fresh install accepts for no domain: {rcpthosts}"
    );
    assert!(Path::new(&format!("{VAR}/control/tcp.smtp.cdb")).is_file());
    assert_eq!(
        ours_running(),
        Vec::<String>::new(),
        "the install started something"
    );
}

/// The installed port-25 chain as relaygate-smtp.service runs it
/// (tcpserver drops to relaygate), on 127.0.0.1:port.
fn installed_smtp(port: u16, log: &Path) -> Server {
    let b = format!("{PREFIX}/bin");
    let mut c = Command::new(format!("{b}/tcpserver"));
    c.args(["-v", "-H", "-R", "-X", "-x"])
        .arg(format!("{VAR}/control/tcp.smtp.cdb"))
        .args([
            "-c",
            "10",
            "-u",
            &id("-u", "relaygate"),
            "-g",
            &id("-g", "relaygate"),
        ])
        .args(["127.0.0.1", &port.to_string()])
        .arg(format!("{b}/relaycheck"))
        .arg(format!("{b}/smtpd"))
        .arg(format!("{b}/checkpassword"))
        .arg("/bin/true")
        .env("CONTROLDIR", format!("{VAR}/control"))
        .env("SPOOLDIR", format!("{VAR}/spool"))
        .env("RELAYDIR", format!("{VAR}/relay"))
        .env("DENYDIR", format!("{VAR}/deny"))
        .env_remove("RELAYCLIENT")
        .env_remove("QMAILQUEUE");
    let s = Server::start(c, log);
    wait_port(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
    s
}

fn swaks(src: &str, port: u16, to: &str, body: Option<&str>) -> String {
    let mut c = Command::new("swaks");
    c.args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--local-interface", src])
        .args(["--from", "sender@example.net", "--to", to])
        .args(["--timeout", "20"]);
    match body {
        Some(b) => c.args(["--body", b]),
        None => c.args(["--quit-after", "RCPT"]),
    };
    text(&run_with_input(&mut c, b"", Duration::from_secs(40)))
}

fn run_installed_chain(tmp: &TempDir) {
    let rcpthosts = format!("{VAR}/control/rcpthosts");
    let mut r = fs::read_to_string(&rcpthosts).unwrap();
    r.push_str("deb.test\n");
    fs::write(&rcpthosts, r).unwrap();
    let port = free_port();
    let log = tmp.join("smtp.log");
    let smtp = installed_smtp(port, &log);
    // relays for nobody from outside; takes mail for the listed domain
    let t = swaks("127.0.0.2", port, "someone@victim.example", None);
    assert!(t.contains("553 5.7.1"), "relayed:\n{t}");
    let marker = format!("deb-test-{}", std::process::id());
    let t = swaks("127.0.0.2", port, "joe@deb.test", Some(&marker));
    assert!(t.contains("250 2.0.0 ok"), "not queued:\n{t}");
    drop(smtp);
    let spooled = rgspool::list(Path::new(&format!("{VAR}/spool"))).unwrap();
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    let m = rgspool::read(&spooled[0]).unwrap();
    assert_eq!(m.recipients, [b"joe@deb.test".to_vec()]);
    assert!(String::from_utf8_lossy(&m.message).contains(&marker));
    // written by smtpd running as relaygate, not root
    let owner = fs::metadata(&spooled[0]).unwrap().uid().to_string();
    assert_eq!(owner, id("-u", "relaygate"));
    // and the installed relaystat reads the installed chain's log
    let o = run_with_input(
        Command::new(format!("{PREFIX}/bin/relaystat")).arg(&log),
        b"",
        Duration::from_secs(30),
    );
    let report = text(&o);
    assert!(o.status.success(), "{report}");
    assert!(report.contains("messages: accepted 1"), "{report}");
}

#[test]
fn build_install_run_and_purge_the_debian_package() {
    if !is_root() {
        eprintln!("skipping: installing a package needs root (CI runs as root)");
        return;
    }
    for tool in ["dpkg-deb", "dpkg", "swaks"] {
        if !need(tool) {
            return;
        }
    }
    if !machine_is_free() {
        return;
    }
    let machine = Machine {
        users_before: USERS.iter().map(|u| exists("passwd", u)).collect(),
        groups_before: GROUPS.iter().map(|g| gid(g)).collect::<Vec<_>>(),
    };
    let tmp = TempDir::new("deb");
    let deb = build(&tmp.join("out"));
    check_package(&deb);

    let o = sh(Command::new("dpkg").arg("-i").arg(&deb), 300);
    assert!(o.status.success(), "dpkg -i: {}", text(&o));
    assert!(text(&o).contains("nothing started"), "{}", text(&o));
    check_installed();
    run_installed_chain(&tmp);

    // configure again (dpkg-reconfigure path): keeps the admin's rcpthosts
    let before = fs::read_to_string(format!("{VAR}/control/rcpthosts")).unwrap();
    let o = sh(&mut Command::new(format!("{PREFIX}/relaygate-setup")), 60);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("created"), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(format!("{VAR}/control/rcpthosts")).unwrap(),
        before
    );

    let o = sh(Command::new("dpkg").args(["--purge", "relaygate"]), 300);
    assert!(o.status.success(), "dpkg --purge: {}", text(&o));
    for gone in [
        PREFIX,
        VAR,
        "/etc/relaygate",
        "/lib/systemd/system/relaygate-smtp.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    // Debian practice: purge keeps the users; the test removes its own
    for u in USERS {
        assert!(exists("passwd", u), "purge removed {u}");
    }
    machine.restore();
    for (u, before) in USERS.iter().zip(&machine.users_before) {
        assert_eq!(exists("passwd", u), *before, "user {u} not as before");
    }
    for (g, before) in GROUPS.iter().zip(&machine.groups_before) {
        assert_eq!(&gid(g), before, "group {g} not as before");
    }
}
