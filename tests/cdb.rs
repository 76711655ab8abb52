//! cdb tools end to end: cdbmake, cdbdump, cdbget and mkcdb as programs, and
//! differential checks against tinycdb (`cdb`): it reads what we write, we
//! read what it writes, and both build byte-identical files from one input.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use relaygate::{bin, need, run, run_with_input, TempDir};

type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// djb's cdbmake input for `recs`, with the final empty line.
fn make_input(recs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, d) in recs {
        out.extend_from_slice(format!("+{},{}:", k.len(), d.len()).as_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(b"->");
        out.extend_from_slice(d);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.next() % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Records with the awkward cases: binary keys (NUL, 0xff, newline), an empty
/// key, empty data, repeated keys, then random ones.
fn awkward_records(random: usize) -> Records {
    let mut recs: Records = vec![
        (b"plain".to_vec(), b"value".to_vec()),
        (b"".to_vec(), b"empty key".to_vec()),
        (b"nodata".to_vec(), b"".to_vec()),
        (b"a\0b".to_vec(), b"nul in key".to_vec()),
        (b"\xff\xfe".to_vec(), b"8bit".to_vec()),
        (b"line\nbreak".to_vec(), b"data\nwith\nnewlines\n".to_vec()),
        (b"rep".to_vec(), b"first".to_vec()),
        (b"->".to_vec(), b"+1,1:".to_vec()),
        (b"rep".to_vec(), b"second".to_vec()),
        (b"".to_vec(), b"".to_vec()),
        (b"rep".to_vec(), b"third".to_vec()),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..random {
        let mut k = rng.bytes(24);
        k.extend_from_slice(format!("#{i}").as_bytes());
        recs.push((k, rng.bytes(40)));
    }
    recs
}

fn cdbmake(db: &Path, input: &[u8]) -> Output {
    let tmp = db.with_extension("tmp");
    run(&bin("cdbmake"), [db, tmp.as_path()], &[], input)
}

/// Run `prog args` with `file` as standard input (a regular file, seekable).
fn run_file_stdin<I, S>(prog: &Path, args: I, file: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(prog)
        .args(args)
        .stdin(Stdio::from(File::open(file).unwrap()))
        .output()
        .unwrap()
}

fn tiny(args: &[&OsStr]) -> Output {
    Command::new("cdb").args(args).output().unwrap()
}

fn tiny_make(db: &Path, input: &[u8]) {
    let tmp = db.with_extension("tinytmp");
    let mut cmd = Command::new("cdb");
    cmd.arg("-c").arg("-t").arg(&tmp).arg(db);
    let out = run_with_input(&mut cmd, input, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "cdb -c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The values of `key` in `recs`, in order.
fn values<'a>(recs: &'a Records, key: &[u8]) -> Vec<&'a [u8]> {
    recs.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, d)| d.as_slice())
        .collect()
}

// ---- byte identity and round trips -------------------------------------------------------

#[test]
fn cdbmake_output_is_byte_identical_to_tinycdb() {
    if !need("cdb") {
        return;
    }
    let t = TempDir::new("cdb-ident");
    for (name, recs) in [
        ("empty", Vec::new()),
        ("awkward", awkward_records(2000)),
        ("one-table", vec![(b"x".to_vec(), b"y".to_vec()); 50]),
    ] {
        let input = make_input(&recs);
        let ours = t.join(format!("{name}.ours.cdb"));
        let theirs = t.join(format!("{name}.theirs.cdb"));
        let o = cdbmake(&ours, &input);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        tiny_make(&theirs, &input);
        assert!(
            fs::read(&ours).unwrap() == fs::read(&theirs).unwrap(),
            "{name}: cdbmake and cdb -c differ"
        );
    }
}

#[test]
fn hundred_thousand_records_identical_and_round_trip() {
    if !need("cdb") {
        return;
    }
    let t = TempDir::new("cdb-100k");
    let mut rng = Rng(42);
    let recs: Records = (0..100_000)
        .map(|i| {
            (
                format!("key{i}-{}", rng.next() % 1000).into_bytes(),
                rng.bytes(20),
            )
        })
        .collect();
    let input = make_input(&recs);
    let (ours, theirs) = (t.join("ours.cdb"), t.join("theirs.cdb"));
    assert_eq!(code(&cdbmake(&ours, &input)), 0);
    tiny_make(&theirs, &input);
    assert!(fs::read(&ours).unwrap() == fs::read(&theirs).unwrap());
    let dump = run_file_stdin(&bin("cdbdump"), [] as [&str; 0], &theirs);
    assert_eq!(code(&dump), 0);
    assert!(
        dump.stdout == input,
        "cdbdump of tinycdb's file differs from the input"
    );
    let tdump = tiny(&["-d".as_ref(), ours.as_os_str()]);
    assert!(
        tdump.stdout == input,
        "cdb -d of our file differs from the input"
    );
    // spot lookups both ways
    for i in (0..100_000).step_by(9973) {
        let (k, d) = &recs[i];
        let o = run_file_stdin(&bin("cdbget"), [OsStr::from_bytes(k)], &theirs);
        assert_eq!((code(&o), &o.stdout), (0, d));
        let q = tiny(&[
            "-q".as_ref(),
            "--".as_ref(),
            ours.as_os_str(),
            OsStr::from_bytes(k),
        ]);
        assert_eq!(&q.stdout, d);
    }
}

#[test]
fn large_records_round_trip() {
    if !need("cdb") {
        return;
    }
    let t = TempDir::new("cdb-large");
    let mut rng = Rng(7);
    let big_data: Vec<u8> = (0..3_000_000).map(|_| rng.next() as u8).collect();
    let big_key: Vec<u8> = (0..70_000).map(|i| (i % 251) as u8 + 1).collect();
    let recs: Records = vec![
        (b"big".to_vec(), big_data.clone()),
        (big_key.clone(), b"long key".to_vec()),
        (b"small".to_vec(), b"s".to_vec()),
    ];
    let input = make_input(&recs);
    let (ours, theirs) = (t.join("ours.cdb"), t.join("theirs.cdb"));
    assert_eq!(code(&cdbmake(&ours, &input)), 0);
    tiny_make(&theirs, &input);
    assert!(fs::read(&ours).unwrap() == fs::read(&theirs).unwrap());
    let o = run_file_stdin(&bin("cdbget"), ["big"], &theirs);
    assert_eq!(code(&o), 0);
    assert!(o.stdout == big_data);
    let q = tiny(&[
        "-q".as_ref(),
        "--".as_ref(),
        ours.as_os_str(),
        "big".as_ref(),
    ]);
    assert!(q.stdout == big_data);
    let dump = run_file_stdin(&bin("cdbdump"), [] as [&str; 0], &ours);
    assert!(dump.stdout == input);
}

#[test]
fn dump_make_round_trip_is_byte_identical() {
    let t = TempDir::new("cdb-rt");
    let input = make_input(&awkward_records(500));
    let first = t.join("first.cdb");
    assert_eq!(code(&cdbmake(&first, &input)), 0);
    let dump = run_file_stdin(&bin("cdbdump"), [] as [&str; 0], &first);
    assert_eq!(code(&dump), 0);
    assert!(dump.stdout == input);
    let second = t.join("second.cdb");
    assert_eq!(code(&cdbmake(&second, &dump.stdout)), 0);
    assert!(fs::read(&first).unwrap() == fs::read(&second).unwrap());
}

/// djb's cdb as packaged by Debian (freecdb, which CI installs): required
/// under CI, skipped elsewhere when /usr/bin/cdbmake is absent.
#[test]
fn djb_cdbmake_freecdb_agrees_when_installed() {
    let djb = Path::new("/usr/bin");
    if !djb.join("cdbmake").exists() || !djb.join("cdbget").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs freecdb (djb's cdbmake)"
        );
        eprintln!("skipping: freecdb (djb's cdbmake) not installed");
        return;
    }
    let t = TempDir::new("cdb-djb");
    let recs = awkward_records(3000);
    let input = make_input(&recs);
    let (ours, theirs) = (t.join("ours.cdb"), t.join("djb.cdb"));
    assert_eq!(code(&cdbmake(&ours, &input)), 0);
    let o = run(
        &djb.join("cdbmake"),
        [&theirs, &t.join("djb.tmp")],
        &[],
        &input,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::read(&ours).unwrap() == fs::read(&theirs).unwrap());
    for (skip, want) in [("0", &b"first"[..]), ("1", b"second"), ("2", b"third")] {
        let o = run_file_stdin(&djb.join("cdbget"), ["rep", skip], &ours);
        assert_eq!((code(&o), o.stdout.as_slice()), (0, want));
    }
    let o = run_file_stdin(&djb.join("cdbdump"), [] as [&str; 0], &ours);
    assert!(o.stdout == input);
    // both refuse truncated input with 111
    let o = run(
        &djb.join("cdbmake"),
        [&theirs, &t.join("djb.tmp")],
        &[],
        &input[..input.len() - 1],
    );
    assert_eq!(code(&o), 111);
    assert_eq!(code(&cdbmake(&ours, &input[..input.len() - 1])), 111);
}

// ---- tinycdb reads ours, we read tinycdb's ---------------------------------------------

#[test]
fn tinycdb_reads_our_cdb() {
    if !need("cdb") {
        return;
    }
    let t = TempDir::new("cdb-tinyreads");
    let recs = awkward_records(300);
    let input = make_input(&recs);
    let db = t.join("ours.cdb");
    assert_eq!(code(&cdbmake(&db, &input)), 0);
    assert!(tiny(&["-d".as_ref(), db.as_os_str()]).stdout == input);
    // cdb -q prints every value of a key, concatenated; -n N the N-th
    for key in [
        &b"plain"[..],
        b"rep",
        b"nodata",
        b"\xff\xfe",
        b"line\nbreak",
        b"->",
    ] {
        let all: Vec<u8> = values(&recs, key).concat();
        let q = tiny(&[
            "-q".as_ref(),
            "--".as_ref(),
            db.as_os_str(),
            OsStr::from_bytes(key),
        ]);
        assert_eq!(q.stdout, all, "key {key:?}");
        assert_eq!(q.status.code(), Some(0));
    }
    for (n, want) in [(1, &b"first"[..]), (2, b"second"), (3, b"third")] {
        let n = n.to_string();
        let q = tiny(&[
            "-q".as_ref(),
            "-n".as_ref(),
            n.as_ref(),
            db.as_os_str(),
            "rep".as_ref(),
        ]);
        assert_eq!(q.stdout, want);
    }
    let q = tiny(&[
        "-q".as_ref(),
        "--".as_ref(),
        db.as_os_str(),
        "absent".as_ref(),
    ]);
    assert_ne!(q.status.code(), Some(0));
    for (k, _) in recs.iter().skip(11).step_by(37) {
        let q = tiny(&[
            "-q".as_ref(),
            "--".as_ref(),
            db.as_os_str(),
            OsStr::from_bytes(k),
        ]);
        assert_eq!(q.stdout, values(&recs, k).concat());
    }
}

#[test]
fn we_read_tinycdb_cdb() {
    if !need("cdb") {
        return;
    }
    let t = TempDir::new("cdb-wereads");
    let recs = awkward_records(300);
    let input = make_input(&recs);
    let db = t.join("theirs.cdb");
    tiny_make(&db, &input);
    let dump = run_file_stdin(&bin("cdbdump"), [] as [&str; 0], &db);
    assert!(dump.stdout == input);
    for (skip, want) in [(0, &b"first"[..]), (1, b"second"), (2, b"third")] {
        let o = run_file_stdin(&bin("cdbget"), ["rep".to_string(), skip.to_string()], &db);
        assert_eq!((code(&o), o.stdout.as_slice()), (0, want));
    }
    let o = run_file_stdin(&bin("cdbget"), ["rep", "3"], &db);
    assert_eq!((code(&o), o.stdout.len()), (100, 0));
    for (k, _) in recs.iter().skip(11).step_by(37) {
        let o = run_file_stdin(&bin("cdbget"), [OsStr::from_bytes(k)], &db);
        assert_eq!((code(&o), o.stdout.as_slice()), (0, values(&recs, k)[0]));
    }
    // empty key and empty data
    let o = run_file_stdin(&bin("cdbget"), [""], &db);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, &b"empty key"[..]));
    let o = run_file_stdin(&bin("cdbget"), ["", "1"], &db);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, &b""[..]));
    let o = run_file_stdin(&bin("cdbget"), ["nodata"], &db);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, &b""[..]));
}

// ---- standard input: pipe as well as file ------------------------------------------------

#[test]
fn cdbget_and_cdbdump_read_a_pipe() {
    let t = TempDir::new("cdb-pipe");
    let recs = awkward_records(3000);
    let input = make_input(&recs);
    let db = t.join("db.cdb");
    assert_eq!(code(&cdbmake(&db, &input)), 0);
    let bytes = fs::read(&db).unwrap();
    assert!(bytes.len() > 100_000, "bigger than a pipe buffer");
    let o = run(&bin("cdbget"), ["rep", "2"], &[], &bytes);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, &b"third"[..]));
    let o = run(&bin("cdbget"), ["absent"], &[], &bytes);
    assert_eq!(code(&o), 100);
    let o = run(&bin("cdbdump"), [] as [&str; 0], &[], &bytes);
    assert_eq!(code(&o), 0);
    assert!(o.stdout == input);
}

// ---- cdbmake refuses bad input and keeps the old database ------------------------------

#[test]
fn truncated_or_malformed_input_leaves_old_cdb() {
    let t = TempDir::new("cdb-trunc");
    let db = t.join("db.cdb");
    let tmp = t.join("db.tmp");
    assert_eq!(code(&cdbmake(&db, b"+3,3:old->old\n\n")), 0);
    let old = fs::read(&db).unwrap();
    let good = make_input(&awkward_records(20));
    let mut cases: Vec<(Vec<u8>, &str)> = [1, 2, 7, 15, good.len() / 2, good.len() - 1]
        .iter()
        .map(|&cut| (good[..cut].to_vec(), "unable to read input: truncated file"))
        .collect();
    cases.push((b"".to_vec(), "unable to read input: truncated file"));
    cases.push((
        b"+1,1:a->b\nx".to_vec(),
        "unable to read input: bad format at byte 10",
    ));
    cases.push((
        b"+1,1:a=>b\n\n".to_vec(),
        "unable to read input: bad format at byte 6",
    ));
    cases.push((
        b"+1,1:a->bc\n\n".to_vec(),
        "expected a newline after the data",
    ));
    cases.push((b"+a,1:a->b\n\n".to_vec(), "expected a digit or ','"));
    for (input, want) in cases {
        let o = cdbmake(&db, &input);
        assert_eq!(code(&o), 111, "input {:?}", String::from_utf8_lossy(&input));
        let e = stderr(&o);
        assert!(e.starts_with("cdbmake: fatal: "), "{e}");
        assert!(e.contains(want), "{e} lacks {want}");
        assert_eq!(fs::read(&db).unwrap(), old, "old cdb changed");
        assert!(!tmp.exists(), "temp file left behind");
    }
    // without an old database, nothing is created
    let fresh = t.join("fresh.cdb");
    assert_eq!(code(&cdbmake(&fresh, b"+1,1:a->b\n")), 111);
    assert!(!fresh.exists());
}

#[test]
fn usage_errors_exit_100() {
    for (prog, args) in [
        ("cdbmake", vec!["only-one"]),
        ("cdbget", vec![]),
        ("cdbget", vec!["k", "notanumber"]),
        ("cdbdump", vec!["extra"]),
        ("mkcdb", vec![]),
    ] {
        let o = run(&bin(prog), &args, &[], b"");
        assert_eq!(code(&o), 100, "{prog} {args:?}");
        assert!(stderr(&o).starts_with(&format!("{prog}: usage: ")));
    }
}

#[test]
fn cdbmake_unwritable_temp_is_111() {
    let t = TempDir::new("cdb-unwritable");
    let o = run(
        &bin("cdbmake"),
        [t.join("db.cdb"), t.join("no/such/dir/db.tmp")],
        &[],
        b"\n",
    );
    assert_eq!(code(&o), 111);
    assert!(
        stderr(&o).starts_with("cdbmake: fatal: unable to create "),
        "{}",
        stderr(&o)
    );
}

// ---- cdbget / cdbdump on corrupt databases ----------------------------------------------

#[test]
fn cdbget_exit_codes_and_corrupt_files() {
    let t = TempDir::new("cdb-corrupt");
    let db = t.join("db.cdb");
    assert_eq!(code(&cdbmake(&db, &make_input(&awkward_records(50)))), 0);
    assert_eq!(code(&run_file_stdin(&bin("cdbget"), ["plain"], &db)), 0);
    assert_eq!(code(&run_file_stdin(&bin("cdbget"), ["nope"], &db)), 100);
    let good = fs::read(&db).unwrap();

    // shorter than the header
    let short = t.write("short.cdb", &good[..1000]);
    let o = run_file_stdin(&bin("cdbget"), ["plain"], &short);
    assert_eq!(code(&o), 111);
    assert_eq!(
        stderr(&o),
        "cdbget: fatal: unable to read cdb: corrupt cdb: truncated\n"
    );
    let o = run(&bin("cdbget"), ["plain"], &[], b"");
    assert_eq!(code(&o), 111);

    // cut in the middle of the hash tables: the later tables run past the end
    let eod = u32::from_le_bytes(good[0..4].try_into().unwrap()) as usize;
    let cut = t.write("cut.cdb", &good[..(eod + good.len()) / 2]);
    let mut saw_111 = false;
    for (k, _) in awkward_records(50).iter().filter(|(k, _)| !k.contains(&0)) {
        let o = run_file_stdin(&bin("cdbget"), [OsStr::from_bytes(k)], &cut);
        assert!([0, 100, 111].contains(&code(&o)), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
        if code(&o) == 111 {
            assert!(stderr(&o).starts_with("cdbget: fatal: unable to read cdb: corrupt cdb: "));
            saw_111 = true;
        }
    }
    assert!(saw_111, "no lookup noticed the truncated table");

    // every header entry pointing past the end
    let mut bad = good.clone();
    for i in 0..256 {
        bad[i * 8..i * 8 + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    }
    let bad = t.write("bad.cdb", &bad);
    let o = run_file_stdin(&bin("cdbget"), ["plain"], &bad);
    assert_eq!(code(&o), 111);
    assert!(stderr(&o).starts_with("cdbget: fatal: unable to read cdb: corrupt cdb: "));

    // record pointers scribbled over: never a panic, only 0/100/111
    let mut scribbled = good.clone();
    for i in (2048..good.len()).step_by(5) {
        scribbled[i] ^= 0x5a;
    }
    let scribbled = t.write("scribbled.cdb", &scribbled);
    for k in ["plain", "rep", "a\0b", "nodata"] {
        let k = k.replace('\0', "");
        let o = run_file_stdin(&bin("cdbget"), [&k], &scribbled);
        assert!([0, 100, 111].contains(&code(&o)), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
        let d = run_file_stdin(&bin("cdbdump"), [] as [&str; 0], &scribbled);
        assert!([0, 111].contains(&code(&d)));
        assert!(!stderr(&d).contains("panicked"));
    }
}

#[test]
fn cdbdump_of_truncated_cdb_fails_and_cdbmake_builds_nothing() {
    let t = TempDir::new("cdb-dumptrunc");
    let db = t.join("db.cdb");
    let input = make_input(&awkward_records(100));
    assert_eq!(code(&cdbmake(&db, &input)), 0);
    let good = fs::read(&db).unwrap();
    for cut in [0, 100, 2048, 2100, good.len() / 2, good.len() - 1] {
        let o = run(&bin("cdbdump"), [] as [&str; 0], &[], &good[..cut]);
        assert_eq!(code(&o), 111, "cut {cut}");
        assert!(stderr(&o).starts_with("cdbdump: fatal: unable to read cdb: corrupt cdb: "));
        // the partial dump lacks the final empty line, so cdbmake refuses it
        let again = t.join("again.cdb");
        assert_eq!(code(&cdbmake(&again, &o.stdout)), 111);
        assert!(!again.exists());
    }
}

// ---- mkcdb ------------------------------------------------------------------------------

fn read_cdb(path: &Path) -> Records {
    let cdb = rgcdb::Cdb::load(path).unwrap();
    cdb.iter().map(|r| r.unwrap()).collect()
}

fn strs(pairs: &[(&str, &str)]) -> Records {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn mkcdb_plain_control_files() {
    let t = TempDir::new("mkcdb-plain");
    let text = "# senders refused\n\nSpammer@Example.COM  \n\t@Bad.Example\t\n@*.Junk.test\n#x@y\n";
    for name in ["badmailfrom", "badrcptto", "relaymailfrom"] {
        let f = t.write(name, text);
        let o = run(&bin("mkcdb"), [&f], &[], b"");
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(
            read_cdb(&t.join(format!("{name}.cdb"))),
            strs(&[
                ("spammer@example.com", ""),
                ("@bad.example", ""),
                ("@*.junk.test", "")
            ])
        );
    }
    let f = t.write("morercpthosts", "Example.ORG.\n.Sub.Example.NET\n# c\n");
    assert_eq!(code(&run(&bin("mkcdb"), [&f], &[], b"")), 0);
    let db = t.join("morercpthosts.cdb");
    assert_eq!(
        read_cdb(&db),
        strs(&[("example.org", ""), (".sub.example.net", "")])
    );
    if need("cdb") {
        let q = tiny(&[
            "-q".as_ref(),
            "--".as_ref(),
            db.as_os_str(),
            "example.org".as_ref(),
        ]);
        assert_eq!(q.status.code(), Some(0));
    }
}

#[test]
fn mkcdb_relayclients_ipv4_ipv6_values_comments() {
    let t = TempDir::new("mkcdb-relay");
    let f = t.write(
        "relayclients",
        "# who may relay\n192.0.2.7\n10.1.1.\n10.1.1.0/24:VALUE\n192.0.2.9:+Tag\n  \n\
         2001:DB8::/32:V6val\n2001:db8:0::1\n::ffff:192.0.2.1\n10.9.8.7/16\n",
    );
    let o = run(&bin("mkcdb"), [&f], &[], b"");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let db = t.join("relayclients.cdb");
    let want = strs(&[
        ("192.0.2.7", ""),
        ("10.1.1.", ""),
        ("10.1.1.0/24", "VALUE"),
        ("192.0.2.9", "+Tag"),
        ("2001:db8::/32", "V6val"),
        ("2001:db8::1", ""),
        ("192.0.2.1", ""),
        ("10.9.0.0/16", ""),
    ]);
    assert_eq!(read_cdb(&db), want);
    let o = run_file_stdin(&bin("cdbget"), ["2001:db8::/32"], &db);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, &b"V6val"[..]));
    if need("cdb") {
        let d = tiny(&["-d".as_ref(), db.as_os_str()]);
        assert!(d.stdout == make_input(&want));
    }
    // a bad line: exit 100 naming it, the old cdb stays, no temp file left
    let before = fs::read(&db).unwrap();
    t.write("relayclients", "192.0.2.7\n10.1.1.0/24 oops\n");
    let o = run(&bin("mkcdb"), [&f], &[], b"");
    assert_eq!(code(&o), 100);
    assert_eq!(
        stderr(&o),
        "mkcdb: fatal: unable to parse relayclients line 2: expected :VALUE after 10.1.1.0/24\n"
    );
    assert_eq!(fs::read(&db).unwrap(), before);
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2);
}

#[test]
fn mkcdb_missing_file_is_111() {
    let t = TempDir::new("mkcdb-missing");
    let o = run(&bin("mkcdb"), [t.join("badmailfrom")], &[], b"");
    assert_eq!(code(&o), 111);
    assert!(stderr(&o).starts_with("mkcdb: fatal: unable to read "));
    assert!(!t.join("badmailfrom.cdb").exists());
}

// ---- relayaudit -------------------------------------------------------------------------

#[test]
fn relayaudit_reports_stale_cdbs_and_missing_rcpthosts() {
    let t = TempDir::new("relayaudit");
    let dir = t.path().to_str().unwrap();
    // an empty control directory: nothing stale, accepts for no domain
    let o = run(
        &bin("relayaudit"),
        [] as [&str; 0],
        &[("CONTROLDIR", dir)],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("rcpthosts: missing: the server accepts mail for no domain"));
    assert!(out.contains("stale: none"));

    // compiled, then edited: stale until rebuilt
    let f = t.write("badmailfrom", "@spam.example\n");
    assert_eq!(code(&run(&bin("mkcdb"), [&f], &[], b"")), 0);
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    File::options()
        .write(true)
        .open(t.join("badmailfrom.cdb"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    t.write("rcpthosts", "example.org\n");
    let o = run(
        &bin("relayaudit"),
        [] as [&str; 0],
        &[("CONTROLDIR", dir)],
        b"",
    );
    assert_eq!(code(&o), 100);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains(
        "stale: badmailfrom.cdb is older than badmailfrom: rebuild it: mkcdb badmailfrom\n"
    ));
    assert!(out.contains("rcpthosts: 1 domains"));
    assert_eq!(code(&run(&bin("mkcdb"), [&f], &[], b"")), 0);
    let o = run(
        &bin("relayaudit"),
        [] as [&str; 0],
        &[("CONTROLDIR", dir)],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}
