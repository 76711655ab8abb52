//! Every program answers `--version` (alone) with `NAME VERSION` and exit 0,
//! before doing any of its work (smtpd starts no session, chain programs
//! exec nothing).

use std::time::Duration;

use relaygate::{bin, run_with_input};

/// The programs: every crate with a `src/main.rs`.
fn programs() -> Vec<String> {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut names: Vec<String> = std::fs::read_dir(crates)
        .expect("crates/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("src/main.rs").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_program_prints_its_version_and_does_nothing_else() {
    let progs = programs();
    assert!(progs.len() >= 20, "{progs:?}");
    for p in progs {
        let o = run_with_input(
            std::process::Command::new(bin(&p))
                .arg("--version")
                .env("CONTROLDIR", "/nonexistent")
                .env("SPOOLDIR", "/nonexistent"),
            b"EHLO x\r\n",
            Duration::from_secs(10),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{p}: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(out, format!("{p} {}\n", env!("CARGO_PKG_VERSION")), "{p}");
    }
}
