//! tcpserver end to end on loopback: the child's environment, rules (allow,
//! deny, variables, rebuilt or missing cdb), limits (-c, -C, MAXPERIP), the
//! -v log lines, SIGTERM, IPv6 and mapped addresses, privileges, and
//! interoperation with ucspi-tcp's tcprules and tcpserver.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use relaygate::{bin, connect_from, free_port, need, run, Server, TempDir};

/// Wait until something listens on `host:port`, without connecting (a
/// probe connection would run the program and disturb the counts).
fn wait_listening(host: &str, port: u16, server: &mut Server) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if listening(port) {
            return;
        }
        if let Some(code) = server.wait_exit(Duration::from_millis(20)) {
            panic!("server exited with {code}: {}", server.log());
        }
    }
    panic!(
        "server not listening on {host} port {port}: {}",
        server.log()
    );
}

/// Is a socket in LISTEN state on `port` (any address, IPv4 or IPv6)? Read
/// from /proc/net/tcp{,6}: probing with bind() would see the port taken
/// between the server's bind and its listen (a refused connect follows),
/// and could itself make the server's bind fail; probing with connect()
/// would hand the server a connection the test did not ask for.
fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // f[1] local address:port, f[3] state (0A = LISTEN)
                f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
            })
    })
}

struct Srv {
    server: Server,
    port: u16,
}

fn start(dir: &TempDir, prog: &Path, opts: &[&str], host: &str, argv: &[&str]) -> Srv {
    let port = free_port();
    let mut cmd = Command::new(prog);
    cmd.args(opts).arg(host).arg(port.to_string()).args(argv);
    let mut server = Server::start(cmd, &dir.join(format!("log-{port}")));
    let probe_host = if host == "0" { "127.0.0.1" } else { host };
    wait_listening(probe_host, port, &mut server);
    Srv { server, port }
}

fn ours(dir: &TempDir, opts: &[&str], host: &str, argv: &[&str]) -> Srv {
    start(dir, &bin("tcpserver"), opts, host, argv)
}

/// Connect from `src`, send `input`, read to EOF.
fn talk(src: &str, dst: &str, port: u16, input: &[u8]) -> String {
    let addr = if dst.contains(':') {
        format!("[{dst}]:{port}")
    } else {
        format!("{dst}:{port}")
    };
    let mut s = connect_from(src, &addr);
    talk_on(&mut s, input)
}

fn talk_on(s: &mut TcpStream, input: &[u8]) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    if !input.is_empty() {
        let _ = s.write_all(input);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn env_of(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

fn rules(dir: &TempDir, text: &str) -> PathBuf {
    let cdb = dir.join("rules.cdb");
    let out = run(
        &bin("tcprules"),
        [&cdb, &dir.join("rules.tmp")],
        &[],
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cdb
}

/// Poll the server log until it holds `needle`.
fn log_has(srv: &Srv, needle: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if srv.server.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

const ENV: &[&str] = &["sh", "-c", "env"];

#[test]
fn child_sees_the_tcp_environment() {
    let dir = TempDir::new("tcpserver-env");
    let port = free_port();
    let mut cmd = Command::new(bin("tcpserver"));
    cmd.args(["-HRl0", "127.0.0.1", &port.to_string()])
        .args(ENV)
        .env("TCPREMOTEHOST", "stale")
        .env("TCPREMOTEINFO", "stale");
    let mut server = Server::start(cmd, &dir.join("log"));
    wait_listening("127.0.0.1", port, &mut server);
    let mut s = connect_from("127.0.0.3", &format!("127.0.0.1:{port}"));
    let client_port = s.local_addr().unwrap().port().to_string();
    let env = talk_on(&mut s, b"");
    assert_eq!(env_of(&env, "PROTO").as_deref(), Some("TCP"));
    assert_eq!(env_of(&env, "TCPLOCALIP").as_deref(), Some("127.0.0.1"));
    assert_eq!(env_of(&env, "TCPLOCALPORT"), Some(port.to_string()));
    assert_eq!(env_of(&env, "TCPLOCALHOST").as_deref(), Some("0"));
    assert_eq!(env_of(&env, "TCPREMOTEIP").as_deref(), Some("127.0.0.3"));
    assert_eq!(env_of(&env, "TCPREMOTEPORT"), Some(client_port));
    assert_eq!(env_of(&env, "TCPREMOTEHOST"), None, "{env}");
    assert_eq!(env_of(&env, "TCPREMOTEINFO"), None, "{env}");
}

fn localhost_is_127_0_0_1() -> bool {
    Command::new("getent")
        .args(["hosts", "127.0.0.1"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1) == Some("localhost"))
        .unwrap_or(false)
}

#[test]
fn default_mode_looks_up_names_and_host_rules_apply() {
    if !localhost_is_127_0_0_1() {
        eprintln!("skipping: 127.0.0.1 is not named localhost here");
        return;
    }
    let dir = TempDir::new("tcpserver-dns");
    let cdb = rules(&dir, "=localhost:allow,H=\"yes\"\n127.0.0.:deny\n");
    let x = cdb.to_str().unwrap();
    let srv = ours(&dir, &["-x", x], "127.0.0.1", ENV);
    let env = talk("127.0.0.1", "127.0.0.1", srv.port, b"");
    assert_eq!(
        env_of(&env, "TCPREMOTEHOST").as_deref(),
        Some("localhost"),
        "{env}"
    );
    assert_eq!(env_of(&env, "TCPLOCALHOST").as_deref(), Some("localhost"));
    assert_eq!(env_of(&env, "H").as_deref(), Some("yes"));
    // paranoid: localhost resolves back to 127.0.0.1, so the name stays
    let srv = ours(&dir, &["-p", "-x", x], "127.0.0.1", ENV);
    let env = talk("127.0.0.1", "127.0.0.1", srv.port, b"");
    assert_eq!(env_of(&env, "TCPREMOTEHOST").as_deref(), Some("localhost"));
}

#[test]
fn rules_allow_deny_and_set_variables() {
    let dir = TempDir::new("tcpserver-rules");
    let cdb = rules(
        &dir,
        "127.0.0.2:deny\n127.0.0.3:allow,X=\"three\",RELAYCLIENT=\"\"\n127.0.0.0/29:allow,X=\"net\"\n:deny\n",
    );
    for opts in [&["-HRl0"][..], &["-R"][..]] {
        let mut o = opts.to_vec();
        o.extend(["-x", cdb.to_str().unwrap()]);
        let srv = ours(&dir, &o, "127.0.0.1", ENV);
        assert_eq!(
            talk("127.0.0.2", "127.0.0.1", srv.port, b""),
            "",
            "{opts:?}"
        );
        let env = talk("127.0.0.3", "127.0.0.1", srv.port, b"");
        assert_eq!(env_of(&env, "X").as_deref(), Some("three"), "{opts:?}");
        assert_eq!(env_of(&env, "RELAYCLIENT").as_deref(), Some(""));
        let env = talk("127.0.0.5", "127.0.0.1", srv.port, b"");
        assert_eq!(env_of(&env, "X").as_deref(), Some("net"));
        assert_eq!(talk("127.0.0.9", "127.0.0.1", srv.port, b""), "");
    }
}

#[test]
fn rebuilt_cdb_applies_without_restart() {
    let dir = TempDir::new("tcpserver-rebuild");
    let cdb = rules(&dir, "127.0.0.7:deny\n");
    let srv = ours(
        &dir,
        &["-HRl0", "-x", cdb.to_str().unwrap()],
        "127.0.0.1",
        ENV,
    );
    assert_eq!(talk("127.0.0.7", "127.0.0.1", srv.port, b""), "");
    rules(&dir, "127.0.0.7:allow,NEW=\"1\"\n");
    let env = talk("127.0.0.7", "127.0.0.1", srv.port, b"");
    assert_eq!(env_of(&env, "NEW").as_deref(), Some("1"));
}

#[test]
fn missing_or_corrupt_cdb() {
    let dir = TempDir::new("tcpserver-missing");
    let missing = dir.join("none.cdb");
    let m = missing.to_str().unwrap();
    let srv = ours(&dir, &["-HRl0", "-x", m], "127.0.0.1", ENV);
    assert_eq!(talk("127.0.0.1", "127.0.0.1", srv.port, b""), "");
    assert!(log_has(
        &srv,
        &format!("tcpserver: warning: dropping connection, unable to read {m}: No such file")
    ));
    let srv = ours(&dir, &["-HRl0", "-X", "-x", m], "127.0.0.1", ENV);
    assert!(talk("127.0.0.1", "127.0.0.1", srv.port, b"").contains("PROTO=TCP"));
    // a corrupt (truncated) cdb drops even with -X, in both modes
    let bad = dir.write("bad.cdb", b"short");
    for mode in ["-HRl0", "-R"] {
        let srv = ours(
            &dir,
            &[mode, "-X", "-x", bad.to_str().unwrap()],
            "127.0.0.1",
            ENV,
        );
        assert_eq!(talk("127.0.0.1", "127.0.0.1", srv.port, b""), "");
        assert!(log_has(&srv, "dropping connection, unable to read"));
    }
}

const HOLD: &[&str] = &["sh", "-c", "echo hello; read x; echo bye"];

#[test]
fn concurrency_limit_waits_for_a_free_slot() {
    let dir = TempDir::new("tcpserver-limit");
    let srv = ours(&dir, &["-vHRl0", "-c", "2"], "127.0.0.1", HOLD);
    let addr = format!("127.0.0.1:{}", srv.port);
    let mut a = connect_from("127.0.0.1", &addr);
    let mut b = connect_from("127.0.0.1", &addr);
    let mut hello = [0u8; 6];
    a.read_exact(&mut hello).unwrap();
    b.read_exact(&mut hello).unwrap();
    assert!(log_has(&srv, "tcpserver: status: 2/2"));
    let mut c = connect_from("127.0.0.1", &addr);
    c.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert!(c.read(&mut hello).is_err(), "third served beyond the limit");
    a.write_all(b"x\n").unwrap();
    assert_eq!(talk_on(&mut a, b""), "bye\n");
    assert_eq!(talk_on(&mut c, b"x\n"), "hello\nbye\n");
    assert_eq!(talk_on(&mut b, b"x\n"), "bye\n");
    assert!(log_has(&srv, "tcpserver: status: 0/2"));
    assert!(!srv.server.log().contains("status: 3/2"));
}

#[test]
fn per_ip_limit_and_maxperip_rule() {
    let dir = TempDir::new("tcpserver-perip");
    let cdb = rules(&dir, "127.0.0.10:allow,MAXPERIP=\"2\"\n");
    for mode in ["-HRl0", "-R"] {
        let srv = ours(
            &dir,
            &[mode, "-C", "1", "-x", cdb.to_str().unwrap()],
            "127.0.0.1",
            HOLD,
        );
        let addr = format!("127.0.0.1:{}", srv.port);
        let mut hello = [0u8; 6];
        let mut a = connect_from("127.0.0.8", &addr);
        a.read_exact(&mut hello).unwrap();
        assert_eq!(talk("127.0.0.8", "127.0.0.1", srv.port, b""), "", "{mode}");
        assert!(log_has(
            &srv,
            "dropping connection, too many connections from 127.0.0.8"
        ));
        let mut other = connect_from("127.0.0.9", &addr);
        other.read_exact(&mut hello).unwrap();
        // the rule raises the limit to 2 for 127.0.0.10
        let mut t1 = connect_from("127.0.0.10", &addr);
        t1.read_exact(&mut hello).unwrap();
        let mut t2 = connect_from("127.0.0.10", &addr);
        t2.read_exact(&mut hello).unwrap();
        assert_eq!(talk("127.0.0.10", "127.0.0.1", srv.port, b""), "");
        // a finished child frees its slot
        assert_eq!(talk_on(&mut a, b"x\n"), "bye\n");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let got = talk("127.0.0.8", "127.0.0.1", srv.port, b"x\n");
            if got == "hello\nbye\n" {
                break;
            }
            assert!(Instant::now() < end, "slot never freed");
            std::thread::sleep(Duration::from_millis(100));
        }
        for mut s in [other, t1, t2] {
            let _ = s.write_all(b"x\n");
        }
    }
}

#[test]
fn verbose_log_lines_match_ucspi() {
    let dir = TempDir::new("tcpserver-log");
    let cdb = rules(&dir, "127.0.0.12:deny\n");
    let srv = ours(
        &dir,
        &["-vHRl0", "-x", cdb.to_str().unwrap()],
        "127.0.0.1",
        &["sh", "-c", "exit 3"],
    );
    let p = srv.port;
    let mut s = connect_from("127.0.0.11", &format!("127.0.0.1:{p}"));
    let cport = s.local_addr().unwrap().port();
    talk_on(&mut s, b"");
    let mut d = connect_from("127.0.0.12", &format!("127.0.0.1:{p}"));
    let dport = d.local_addr().unwrap().port();
    talk_on(&mut d, b"");
    assert!(log_has(&srv, "status 768"));
    assert!(log_has(&srv, &format!(":127.0.0.12::{dport}\n")));
    let log = srv.server.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "tcpserver: status: 0/40");
    let ok = lines
        .iter()
        .find(|l| l.starts_with("tcpserver: ok "))
        .expect("ok line");
    let pid: u32 = ok.split(' ').nth(2).unwrap().parse().unwrap();
    assert_eq!(
        *ok,
        format!("tcpserver: ok {pid} 0:127.0.0.1:{p} :127.0.0.11::{cport}")
    );
    assert!(lines.contains(&format!("tcpserver: pid {pid} from 127.0.0.11").as_str()));
    assert!(lines.contains(&format!("tcpserver: end {pid} status 768").as_str()));
    assert!(lines.contains(&"tcpserver: status: 1/40"));
    let deny = lines
        .iter()
        .find(|l| l.starts_with("tcpserver: deny "))
        .expect("deny line");
    let dpid: u32 = deny.split(' ').nth(2).unwrap().parse().unwrap();
    assert_eq!(
        *deny,
        format!("tcpserver: deny {dpid} 0:127.0.0.1:{p} :127.0.0.12::{dport}")
    );
    // a denied child exits 100, as in ucspi-tcp
    assert!(log_has(
        &srv,
        &format!("tcpserver: end {dpid} status 25600")
    ));
    // -q: nothing at all
    let srv = ours(
        &dir,
        &["-qHRl0", "-x", "/nonexistent.cdb"],
        "127.0.0.1",
        ENV,
    );
    talk("127.0.0.1", "127.0.0.1", srv.port, b"");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.server.log(), "");
}

#[test]
fn sigterm_stops_accepting_and_lets_children_finish() {
    let dir = TempDir::new("tcpserver-term");
    let mut srv = ours(
        &dir,
        &["-HRl0"],
        "127.0.0.1",
        &["sh", "-c", "echo start; sleep 2; echo done"],
    );
    let mut s = connect_from("127.0.0.1", &format!("127.0.0.1:{}", srv.port));
    let mut start = [0u8; 6];
    s.read_exact(&mut start).unwrap();
    let st = Command::new("kill")
        .args(["-TERM", &srv.server.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    // the listener closes at once
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", srv.port)).is_ok() {
        assert!(Instant::now() < end, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(talk_on(&mut s, b""), "done\n");
    assert_eq!(srv.server.wait_exit(Duration::from_secs(20)), Some(0));
}

fn have_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn ipv6_loopback_and_ipv6_rules() {
    if !have_ipv6() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let dir = TempDir::new("tcpserver-v6");
    let cdb = rules(&dir, "::1:allow,V6=\"yes\"\n::/0:deny\n");
    let srv = ours(&dir, &["-HRl0", "-x", cdb.to_str().unwrap()], "::1", ENV);
    let env = talk("::1", "::1", srv.port, b"");
    assert_eq!(env_of(&env, "TCPREMOTEIP").as_deref(), Some("::1"));
    assert_eq!(env_of(&env, "TCPLOCALIP").as_deref(), Some("::1"));
    assert_eq!(env_of(&env, "V6").as_deref(), Some("yes"));
    rules(&dir, "::/0:deny\n");
    assert_eq!(talk("::1", "::1", srv.port, b""), "");
}

#[test]
fn mapped_peers_are_reported_as_ipv4() {
    if !have_ipv6() {
        eprintln!("skipping: no IPv6");
        return;
    }
    let dir = TempDir::new("tcpserver-mapped");
    let cdb = rules(&dir, "127.0.0.13:allow,R=\"v4\"\n:deny\n");
    let srv = ours(&dir, &["-HRl0", "-x", cdb.to_str().unwrap()], "0", ENV);
    let env = talk("127.0.0.13", "127.0.0.1", srv.port, b"");
    assert_eq!(env_of(&env, "TCPREMOTEIP").as_deref(), Some("127.0.0.13"));
    assert_eq!(env_of(&env, "TCPLOCALIP").as_deref(), Some("127.0.0.1"));
    assert_eq!(env_of(&env, "R").as_deref(), Some("v4"));
    let mut s = TcpStream::connect(format!("[::ffff:127.0.0.1]:{}", srv.port)).unwrap();
    assert_eq!(talk_on(&mut s, b""), "", "127.0.0.1 is denied");
}

#[test]
fn interoperates_with_ucspi_tcprules_and_tcpserver() {
    if !need("tcpserver") || !Path::new("/usr/bin/tcpserver").exists() {
        return;
    }
    let dir = TempDir::new("tcpserver-interop");
    // their cdb, our server
    let theirs = dir.join("theirs.cdb");
    let out = run(
        Path::new("/usr/bin/tcprules"),
        [&theirs, &dir.join("theirs.tmp")],
        &[],
        b"127.0.0.20:deny\n127.0.0.2:allow,T=\"theirs\"\n",
    );
    assert!(out.status.success());
    let srv = ours(
        &dir,
        &["-HRl0", "-x", theirs.to_str().unwrap()],
        "127.0.0.1",
        ENV,
    );
    assert_eq!(talk("127.0.0.20", "127.0.0.1", srv.port, b""), "");
    let env = talk("127.0.0.21", "127.0.0.1", srv.port, b"");
    assert_eq!(env_of(&env, "T").as_deref(), None);
    let env = talk("127.0.0.2", "127.0.0.1", srv.port, b"");
    assert_eq!(env_of(&env, "T").as_deref(), Some("theirs"));
    // our cdb (with CIDR), their server
    let cdb = rules(&dir, "127.0.0.16/29:deny\n127.0.0.0/24:allow,O=\"ours\"\n");
    let srv = start(
        &dir,
        Path::new("/usr/bin/tcpserver"),
        &["-HRl0", "-x", cdb.to_str().unwrap()],
        "127.0.0.1",
        ENV,
    );
    for (src, denied) in [
        ("127.0.0.15", false),
        ("127.0.0.16", true),
        ("127.0.0.23", true),
        ("127.0.0.24", false),
    ] {
        let env = talk(src, "127.0.0.1", srv.port, b"");
        if denied {
            assert_eq!(env, "", "{src}");
        } else {
            assert_eq!(env_of(&env, "O").as_deref(), Some("ours"), "{src}");
            assert_eq!(env_of(&env, "TCPREMOTEIP").as_deref(), Some(src));
        }
    }
}

#[test]
fn banner_and_print_port() {
    let dir = TempDir::new("tcpserver-banner");
    let portfile = dir.join("port");
    let script = format!(
        "exec {} -1 -HRl0 -B 'hello there\n' 127.0.0.1 0 echo program > {}",
        bin("tcpserver").display(),
        portfile.display()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    let _server = Server::start(cmd, &dir.join("log"));
    let end = Instant::now() + Duration::from_secs(20);
    let port: u16 = loop {
        let text = std::fs::read_to_string(&portfile).unwrap_or_default();
        if text.ends_with('\n') {
            break text.trim().parse().expect("a port number");
        }
        assert!(Instant::now() < end, "no port printed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(port, 0);
    assert_eq!(
        talk("127.0.0.1", "127.0.0.1", port, b""),
        "hello there\nprogram\n"
    );
}

#[test]
fn drops_privileges_after_bind() {
    if !nix_is_root() {
        eprintln!("skipping: not root");
        return;
    }
    let dir = TempDir::new("tcpserver-uid");
    let id = &["sh", "-c", "id -u; id -g; id -G"];
    let srv = ours(
        &dir,
        &["-HRl0", "-u", "65534", "-g", "65534"],
        "127.0.0.1",
        id,
    );
    assert_eq!(
        talk("127.0.0.1", "127.0.0.1", srv.port, b""),
        "65534\n65534\n65534\n"
    );
    // -U takes them from UID and GID
    let port = free_port();
    let mut cmd = Command::new(bin("tcpserver"));
    cmd.args(["-UHRl0", "127.0.0.1", &port.to_string()])
        .args(id)
        .env("UID", "65534")
        .env("GID", "65533");
    let mut server = Server::start(cmd, &dir.join("log-U"));
    wait_listening("127.0.0.1", port, &mut server);
    assert_eq!(
        talk("127.0.0.1", "127.0.0.1", port, b""),
        "65534\n65533\n65533\n"
    );
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

#[test]
fn usage_and_bind_errors() {
    let out = run(&bin("tcpserver"), ["-Z", "0", "1"], &[], b"");
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("tcpserver: usage: tcpserver"));
    let out = run(&bin("tcpserver"), ["127.0.0.1", "1"], &[], b"");
    assert_eq!(out.status.code(), Some(100));
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = run(&bin("tcpserver"), ["127.0.0.1", &port, "true"], &[], b"");
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("tcpserver: fatal: unable to bind"));
    let out = run(
        &bin("tcpserver"),
        ["127.0.0.1", "no-such-service", "true"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(111));
}
