//! Writer and reader together, on real directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::*;

/// A fresh spool directory (SPOOLDIR itself exists, tmp/ and new/ not yet).
struct Dir(rgcore::testing::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(rgcore::testing::TempDir::new("rgspool-unit").unwrap())
    }
    fn names(&self, sub: &str) -> Vec<String> {
        match fs::read_dir(self.0.join(sub)) {
            Ok(d) => d
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn spool(dir: &Path, msg: &[u8], env: &[u8]) -> Result<String, QueueError> {
    let mut w = SpoolWriter::create(dir)?;
    w.write(msg)?;
    w.commit(env)
}

#[test]
fn round_trip_keeps_every_byte() {
    let d = Dir::new();
    let msg: Vec<u8> = (0..=255u8).chain(b"\r\n.\n\0\n".iter().copied()).collect();
    let odd: &[u8] = b"\"x y\"@[IPv6:::1]\x01\xfe\r\n";
    let env = envelope(odd, &[b"a@b.example", odd, b""]);
    let mut w = SpoolWriter::create(&d.0).unwrap();
    for chunk in msg.chunks(7) {
        w.write(chunk).unwrap();
    }
    assert_eq!(w.len(), msg.len() as u64);
    let id = w.commit(&env).unwrap();

    assert_eq!(d.names("new"), vec![id.clone()]);
    assert!(d.names("tmp").is_empty());
    let path = d.0.join("new").join(&id);
    let s = read(&path).unwrap();
    assert_eq!(s.id, id);
    assert_eq!(s.message, msg);
    assert_eq!(s.envelope, env);
    assert_eq!(s.sender, odd);
    assert_eq!(
        s.recipients,
        vec![b"a@b.example".to_vec(), odd.to_vec(), vec![]]
    );
    let m = read_meta(&path).unwrap();
    assert_eq!(
        (m.size, &m.envelope, &m.recipients),
        (msg.len() as u64, &env, &s.recipients)
    );

    let raw = fs::read(&path).unwrap();
    assert!(raw.starts_with(MAGIC));
    assert_eq!(raw.len(), HEADER_LEN + msg.len() + env.len());
    assert!(raw.ends_with(&env));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&d.0.join("tmp")), 0o700);
    assert_eq!(mode(&d.0.join("new")), 0o700);
}

#[test]
fn empty_message_and_bounce_sender() {
    let d = Dir::new();
    let id = spool(&d.0, b"", b"F\0Tpostmaster\0\0").unwrap();
    let s = read(&d.0.join("new").join(id)).unwrap();
    assert!(s.message.is_empty() && s.sender.is_empty());
    assert_eq!(s.recipients, vec![b"postmaster".to_vec()]);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let d = Dir::new();
    {
        let mut w = SpoolWriter::create(&d.0).unwrap();
        w.write(&vec![b'x'; 200_000]).unwrap();
        assert!(w.tmp_path().exists());
    }
    assert!(d.names("tmp").is_empty());
    assert!(d.names("new").is_empty());
}

#[test]
fn refused_envelopes_leave_nothing() {
    let d = Dir::new();
    let long = vec![b'a'; ADDR_MAX + 1];
    let cases: Vec<(Vec<u8>, u8)> = vec![
        (b"Xa\0\0".to_vec(), 91),
        (b"Fa\0Xb\0\0".to_vec(), 91),
        (b"Fa\0\0extra".to_vec(), 91),
        (envelope(b"a", &[&long]), 11),
        (envelope(&long, &[b"b"]), 11),
        (b"Fa\0Tb\0".to_vec(), 54),
        (Vec::new(), 54),
        (envelope(b"a\0b", &[b"c"]), 91),
    ];
    for (env, want) in cases {
        let e = spool(&d.0, b"Subject: x\n\nbody\n", &env).unwrap_err();
        assert_eq!(e.code, want, "{env:?}: {e}");
        assert_eq!(e.is_permanent(), want == 11);
        assert!(d.names("tmp").is_empty());
        assert!(d.names("new").is_empty());
    }
}

#[test]
fn missing_spooldir_is_62_and_creates_nothing() {
    let d = Dir::new();
    let gone = d.0.join("nonexistent");
    let e = SpoolWriter::create(&gone).err().unwrap();
    assert_eq!(e.code, 62, "{e}");
    assert!(!gone.exists());
}

#[test]
fn existing_directories_are_used_as_they_are() {
    let d = Dir::new();
    for sub in ["tmp", "new"] {
        fs::create_dir(d.0.join(sub)).unwrap();
        fs::set_permissions(d.0.join(sub), fs::Permissions::from_mode(0o750)).unwrap();
    }
    spool(&d.0, b"m\n", b"Fa\0Tb\0\0").unwrap();
    assert_eq!(mode(&d.0.join("new")), 0o750);
    assert_eq!(d.names("new").len(), 1);
}

#[test]
fn new_directory_missing_at_commit_is_made() {
    let d = Dir::new();
    let mut w = SpoolWriter::create(&d.0).unwrap();
    w.write(b"m\n").unwrap();
    assert!(!d.0.join("new").exists());
    w.commit(b"Fa\0Tb\0\0").unwrap();
    assert_eq!(d.names("new").len(), 1);
}

#[test]
fn large_message_is_streamed_to_disk() {
    let d = Dir::new();
    let mut w = SpoolWriter::create(&d.0).unwrap();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
    let mut total = 0u64;
    while total < 10 * 1024 * 1024 {
        w.write(line).unwrap();
        total += line.len() as u64;
        if total > 5 * 1024 * 1024 && total < 5 * 1024 * 1024 + 100 {
            // at most one buffer (64 KiB) is held in memory
            let on_disk = fs::metadata(w.tmp_path()).unwrap().len();
            assert!(on_disk + 64 * 1024 >= total, "{on_disk} on disk of {total}");
        }
    }
    let id = w.commit(&envelope(b"s@x", &[b"r@y"])).unwrap();
    let path = d.0.join("new").join(id);
    assert_eq!(read_meta(&path).unwrap().size, total);
    let s = read(&path).unwrap();
    assert_eq!(s.message.len() as u64, total);
    assert!(s.message.chunks(line.len()).all(|c| c == line));
}

#[test]
fn successive_and_concurrent_messages_get_distinct_names() {
    let d = Dir::new();
    let mut ids: Vec<String> = (0..100)
        .map(|i| spool(&d.0, format!("{i}\n").as_bytes(), b"Fa\0Tb\0\0").unwrap())
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let dir = d.0.to_path_buf();
            std::thread::spawn(move || {
                (0..20)
                    .map(|i| spool(&dir, format!("t{t} {i}\n").as_bytes(), b"F\0\0").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        ids.extend(t.join().unwrap());
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 260);
    assert_eq!(d.names("new").len(), 260);
    assert!(d.names("tmp").is_empty());
}

#[test]
fn list_is_oldest_first_and_skips_dotfiles() {
    let d = Dir::new();
    assert!(list(&d.0).unwrap().is_empty(), "no new/ yet: empty spool");
    assert!(list(&d.0.join("nonexistent")).is_err());
    let a = spool(&d.0, b"1\n", b"F\0\0").unwrap();
    let b = spool(&d.0, b"2\n", b"F\0\0").unwrap();
    fs::write(d.0.join("new/.hidden"), b"x").unwrap();
    // a name from a clock set back sorts by its time, not by arrival
    fs::write(d.0.join("new/999.000000000.1"), b"x").unwrap();
    let names: Vec<String> = list(&d.0)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["999.000000000.1".to_string(), a, b]);
}

#[test]
fn damaged_files_are_invalid_data_never_a_panic() {
    let d = Dir::new();
    let id = spool(&d.0, b"Subject: s\n\nbody\n", &envelope(b"s@x", &[b"r@y"])).unwrap();
    let good = fs::read(d.0.join("new").join(&id)).unwrap();
    let p = d.0.join("damaged");
    for n in 0..good.len() {
        fs::write(&p, &good[..n]).unwrap();
        assert_eq!(
            read(&p).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData,
            "cut at {n}"
        );
        assert_eq!(
            read_meta(&p).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
    for i in 0..good.len() {
        for v in [0u8, b'9', b'F', b'T', 0xff] {
            let mut b = good.clone();
            b[i] = v;
            fs::write(&p, &b).unwrap();
            let _ = read(&p);
            let _ = read_meta(&p);
        }
    }
    // an unfinished file (header still NUL) is refused
    let mut unfinished = good.clone();
    unfinished[..HEADER_LEN].fill(0);
    fs::write(&p, &unfinished).unwrap();
    assert!(read(&p).is_err());
}

#[test]
fn resolve_takes_ids_and_paths() {
    let d = Dir::new();
    assert_eq!(resolve(&d.0, "1.2.3").unwrap(), d.0.join("new/1.2.3"));
    assert_eq!(resolve(&d.0, "./x").unwrap(), PathBuf::from("./x"));
    assert!(resolve(&d.0, "..").is_err());
    assert!(resolve(&d.0, "").is_err());
}
