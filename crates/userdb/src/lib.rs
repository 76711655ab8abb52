//! userdb: add, change, disable, enable, delete and list accounts in
//! `CONTROLDIR/users`, rebuilding `users.cdb` after every change (both
//! atomically, under the store's lock: see [`rgauth::store`]).
//!
//! Passwords are read by the caller-supplied source (stdin or the tty,
//! never argv), so the logic here is testable without a terminal.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, IsTerminal, Read};
use std::path::Path;

use rgauth::store;
use rgauth::Account;
use rgcore::Failure;

/// The program's name in diagnostics.
pub const PROG: &str = "userdb";
/// The usage line.
pub const USAGE: &str =
    "add [-n] [-r rounds] [-d home] address | passwd [-n|-c] [-r rounds] address | \
disable address | enable address | del address | list [address] | make";

/// Longest password accepted (checkpassword reads at most 512 bytes for
/// the address, the password and the challenge together).
pub const MAX_PASSWORD: usize = 256;

/// Where passwords come from.
pub trait PasswordSource {
    /// One password (without its line end).
    fn password(&mut self) -> Result<Vec<u8>, Failure>;
}

/// The real source: the terminal (no echo, asked twice) when stdin is one,
/// else one line of stdin.
pub struct Stdin;

impl PasswordSource for Stdin {
    fn password(&mut self) -> Result<Vec<u8>, Failure> {
        let pw = if io::stdin().is_terminal() {
            let a = rpassword::prompt_password("Password: ")
                .map_err(|e| Failure::io("read password from tty", &e))?;
            let b = rpassword::prompt_password("Again: ")
                .map_err(|e| Failure::io("read password from tty", &e))?;
            if a != b {
                return Err(Failure::perm(
                    "unable to set password: the two entries differ",
                ));
            }
            a.into_bytes()
        } else {
            read_line(&mut io::stdin().lock())?
        };
        check_password(pw)
    }
}

/// One line (without CR LF) from `r`, at most a little over MAX_PASSWORD.
pub fn read_line(r: &mut impl BufRead) -> Result<Vec<u8>, Failure> {
    let mut line = Vec::new();
    r.take(MAX_PASSWORD as u64 + 3)
        .read_until(b'\n', &mut line)
        .map_err(|e| Failure::io("read password from stdin", &e))?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(line)
}

fn check_password(pw: Vec<u8>) -> Result<Vec<u8>, Failure> {
    if pw.is_empty() {
        return Err(Failure::perm("unable to set password: empty password"));
    }
    if pw.len() > MAX_PASSWORD {
        return Err(Failure::perm(format!(
            "unable to set password: longer than {MAX_PASSWORD} bytes"
        )));
    }
    if pw.contains(&0) {
        return Err(Failure::perm("unable to set password: contains NUL"));
    }
    Ok(pw)
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Cmd {
    Add {
        address: String,
        cram: bool,
        home: Option<String>,
        rounds: usize,
    },
    Passwd {
        address: String,
        cram: Option<bool>,
        rounds: usize,
    },
    Enable(String, bool),
    Del(String),
    List(Option<String>),
    Make,
}

fn usage() -> Failure {
    Failure::perm(format!("usage: {PROG} {USAGE}"))
}

fn parse(args: &[String]) -> Result<Cmd, Failure> {
    let (verb, rest) = args.split_first().ok_or_else(usage)?;
    let mut opts = getopts::Options::new();
    match verb.as_str() {
        "add" => {
            opts.optflag("n", "", "no CRAM-MD5");
            opts.optopt("d", "", "home directory", "HOME");
            opts.optopt("r", "", "SHA-512-crypt rounds", "N");
        }
        "passwd" => {
            opts.optflag("n", "", "no CRAM-MD5");
            opts.optflag("c", "", "with CRAM-MD5");
            opts.optopt("r", "", "SHA-512-crypt rounds", "N");
        }
        _ => {}
    }
    let m = opts
        .parse(rest)
        .map_err(|e| Failure::perm(format!("usage: {e}")))?;
    let address = || -> Result<String, Failure> {
        match m.free.as_slice() {
            [a] => rgauth::account::normalize_address(a)
                .map_err(|e| Failure::perm(format!("unable to accept address {a}: {e}"))),
            _ => Err(usage()),
        }
    };
    // only for add and passwd: getopts panics on a query for an option
    // that was not defined
    let rounds = || match m.opt_str("r") {
        None => Ok(rgauth::hash::DEFAULT_ROUNDS),
        Some(r) => match r.parse::<usize>() {
            Ok(n) if (1000..=999_999_999).contains(&n) => Ok(n),
            _ => Err(Failure::perm(
                "unable to accept rounds: need 1000 to 999999999",
            )),
        },
    };
    Ok(match verb.as_str() {
        "add" => Cmd::Add {
            address: address()?,
            cram: !m.opt_present("n"),
            home: m.opt_str("d"),
            rounds: rounds()?,
        },
        "passwd" => {
            let cram = match (m.opt_present("n"), m.opt_present("c")) {
                (true, true) => return Err(usage()),
                (true, false) => Some(false),
                (false, true) => Some(true),
                (false, false) => None,
            };
            Cmd::Passwd {
                address: address()?,
                cram,
                rounds: rounds()?,
            }
        }
        "disable" => Cmd::Enable(address()?, false),
        "enable" => Cmd::Enable(address()?, true),
        "del" => Cmd::Del(address()?),
        "list" if m.free.is_empty() => Cmd::List(None),
        "list" => Cmd::List(Some(address()?)),
        "make" if m.free.is_empty() => Cmd::Make,
        _ => return Err(usage()),
    })
}

fn position(accounts: &[Account], address: &str) -> Result<usize, Failure> {
    accounts
        .iter()
        .position(|a| a.address == address)
        .ok_or_else(|| Failure::perm(format!("unable to find account {address}: no such account")))
}

/// One line of `list` output: never a secret.
pub fn list_line(a: &Account) -> String {
    format!(
        "{} login={} cram-md5={} home={}",
        a.address,
        if a.enabled { "enabled" } else { "disabled" },
        if a.cram.is_some() { "yes" } else { "no" },
        a.home.as_deref().unwrap_or("/")
    )
}

/// Run one command against `controldir`; returns what to print on stdout.
pub fn run(
    controldir: &Path,
    args: &[String],
    pw: &mut dyn PasswordSource,
) -> Result<String, Failure> {
    let cmd = parse(args)?;
    if let Cmd::List(which) = &cmd {
        let accounts = store::load(controldir)?;
        return match which {
            None => Ok(accounts.iter().map(|a| list_line(a) + "\n").collect()),
            Some(addr) => Ok(list_line(&accounts[position(&accounts, addr)?]) + "\n"),
        };
    }
    if cmd == Cmd::Make {
        let n = store::rebuild(controldir)?;
        return Ok(format!("{n} accounts\n"));
    }
    let lock = store::lock(controldir)?;
    let mut accounts = store::load(controldir)?;
    match cmd {
        Cmd::Add {
            address,
            cram,
            home,
            rounds,
        } => {
            if accounts.iter().any(|a| a.address == address) {
                return Err(Failure::perm(format!(
                    "unable to add {address}: account exists"
                )));
            }
            let password = pw.password()?;
            let mut acct = Account::new(&address, &password, cram, home)
                .map_err(|e| Failure::perm(format!("unable to add {address}: {e}")))?;
            if rounds != rgauth::hash::DEFAULT_ROUNDS {
                acct.set_password_rounds(&password, cram, rounds)
                    .map_err(|e| Failure::perm(format!("unable to add {address}: {e}")))?;
            }
            accounts.push(acct);
        }
        Cmd::Passwd {
            address,
            cram,
            rounds,
        } => {
            let i = position(&accounts, &address)?;
            let password = pw.password()?;
            let acct = &mut accounts[i];
            let cram = cram.unwrap_or(acct.cram.is_some());
            acct.set_password_rounds(&password, cram, rounds)
                .map_err(|e| Failure::perm(format!("unable to set password: {e}")))?;
        }
        Cmd::Enable(address, on) => {
            let i = position(&accounts, &address)?;
            accounts[i].enabled = on;
        }
        Cmd::Del(address) => {
            let i = position(&accounts, &address)?;
            accounts.remove(i);
        }
        Cmd::List(_) | Cmd::Make => {}
    }
    store::save(controldir, &accounts, &lock)?;
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<u8>);
    impl PasswordSource for Fixed {
        fn password(&mut self) -> Result<Vec<u8>, Failure> {
            check_password(self.0.clone())
        }
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parsing() {
        assert_eq!(
            parse(&args("add -n -d /home/j J@X.org")).unwrap(),
            Cmd::Add {
                address: "j@x.org".into(),
                cram: false,
                home: Some("/home/j".into()),
                rounds: rgauth::hash::DEFAULT_ROUNDS,
            }
        );
        assert_eq!(
            parse(&args("passwd -c j@x.org")).unwrap(),
            Cmd::Passwd {
                address: "j@x.org".into(),
                cram: Some(true),
                rounds: rgauth::hash::DEFAULT_ROUNDS,
            }
        );
        assert_eq!(
            parse(&args("passwd -r 5000 j@x.org")).unwrap(),
            Cmd::Passwd {
                address: "j@x.org".into(),
                cram: None,
                rounds: 5000,
            }
        );
        assert_eq!(parse(&args("list")).unwrap(), Cmd::List(None));
        for bad in [
            "",
            "add",
            "add a b",
            "add -x j@x.org",
            "passwd -n -c j@x.org",
            "frob j@x.org",
            "add nodomain",
            "add -r 999 j@x.org",
            "add -r x j@x.org",
            "list a b",
            "make x",
            "del -n j@x.org",
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert_eq!(e.code, 100, "{bad}");
        }
    }

    #[test]
    fn password_lines() {
        assert_eq!(read_line(&mut &b"secret\r\nmore"[..]).unwrap(), b"secret");
        assert_eq!(read_line(&mut &b"secret"[..]).unwrap(), b"secret");
        assert!(check_password(read_line(&mut &b"\n"[..]).unwrap()).is_err());
        assert!(check_password(read_line(&mut &[b'a'; 300][..]).unwrap()).is_err());
        assert!(check_password(b"a\0b".to_vec()).is_err());
    }

    #[test]
    fn lifecycle() {
        let d = rgcore::testing::TempDir::new("userdb-lib").unwrap();
        let mut pw = Fixed(b"pw1".to_vec());
        run(&d, &args("add Joe@Example.org"), &mut pw).unwrap();
        assert_eq!(
            run(&d, &args("add joe@example.org"), &mut pw)
                .unwrap_err()
                .code,
            100
        );
        run(&d, &args("add -n -d /var/mail/x x@example.org"), &mut pw).unwrap();
        let out = run(&d, &args("list"), &mut pw).unwrap();
        assert_eq!(
            out,
            "joe@example.org login=enabled cram-md5=yes home=/\n\
                         x@example.org login=enabled cram-md5=no home=/var/mail/x\n"
        );
        run(&d, &args("disable joe@example.org"), &mut pw).unwrap();
        assert!(run(&d, &args("list JOE@example.org"), &mut pw)
            .unwrap()
            .contains("login=disabled"));
        run(&d, &args("enable joe@example.org"), &mut pw).unwrap();
        let mut pw2 = Fixed(b"pw2".to_vec());
        run(&d, &args("passwd joe@example.org"), &mut pw2).unwrap();
        let accts = store::load(&d).unwrap();
        assert!(rgauth::hash::verify_password(b"pw2", &accts[0].hash));
        assert!(accts[0].cram.is_some(), "passwd keeps CRAM-MD5 when on");
        run(&d, &args("passwd -n joe@example.org"), &mut pw2).unwrap();
        assert!(store::load(&d).unwrap()[0].cram.is_none());
        run(&d, &args("del joe@example.org"), &mut pw).unwrap();
        assert_eq!(
            run(&d, &args("del joe@example.org"), &mut pw)
                .unwrap_err()
                .code,
            100
        );
        assert_eq!(
            run(&d, &args("list joe@example.org"), &mut pw)
                .unwrap_err()
                .code,
            100
        );
        let mut empty = Fixed(Vec::new());
        assert_eq!(
            run(&d, &args("add y@example.org"), &mut empty)
                .unwrap_err()
                .code,
            100
        );
        assert_eq!(run(&d, &args("make"), &mut pw).unwrap(), "1 accounts\n");
    }
}
