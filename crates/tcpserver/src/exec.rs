//! Starting the program in the forked child: descriptors, signals, the
//! environment, execvp. Done by hand instead of with std's Command because
//! this runs once per connection in a freshly forked child, where every
//! heap page written costs a copy-on-write fault: the argv and the inherited
//! environment are turned into C strings once, at startup, in the parent,
//! and the child only adds the connection's variables.

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::net::TcpStream;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use rgrules::Rule;

use crate::conn::Facts;
use crate::sys;

/// The variables tcpserver itself sets or removes.
const OURS: &[&[u8]] = &[
    b"PROTO",
    b"TCPLOCALIP",
    b"TCPLOCALPORT",
    b"TCPLOCALHOST",
    b"TCPREMOTEIP",
    b"TCPREMOTEPORT",
    b"TCPREMOTEHOST",
    b"TCPREMOTEINFO",
];

/// The program and the environment it inherits, prepared once.
pub struct Program {
    argv: Vec<CString>,
    base_env: Vec<CString>,
}

fn cstring(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

fn name_of(entry: &[u8]) -> &[u8] {
    let eq = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
    &entry[..eq]
}

impl Program {
    /// `None` when an argument holds a NUL byte (impossible from argv).
    pub fn new(prog: &[OsString]) -> Option<Program> {
        let argv = prog
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Option<Vec<_>>>()?;
        if argv.is_empty() {
            return None;
        }
        let base_env = std::env::vars_os()
            .filter(|(k, _)| !OURS.contains(&k.as_bytes()))
            .filter_map(|(k, v)| {
                let mut e = k.as_bytes().to_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                cstring(&e)
            })
            .collect();
        Some(Program { argv, base_env })
    }

    /// The program's name for messages.
    pub fn name(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Put the connection on fd 0 and 1, restore default signal handling,
    /// set the environment and exec. Returns only on failure.
    pub fn exec(&self, facts: &Facts, rule: &Rule, stream: TcpStream) -> io::Error {
        let fd = stream.into_raw_fd();
        let moved = nix::unistd::dup2(fd, 0)
            .and_then(|_| nix::unistd::dup2(fd, 1))
            // dup2 onto itself keeps close-on-exec: clear it explicitly
            .and_then(|_| fcntl(0, FcntlArg::F_SETFD(FdFlag::empty())))
            .and_then(|_| fcntl(1, FcntlArg::F_SETFD(FdFlag::empty())));
        if let Err(e) = moved {
            return e.into();
        }
        if fd > 1 {
            let _ = nix::unistd::close(fd);
        }
        sys::default_sigpipe();
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        let added = added_vars(facts, rule);
        let env = self.environment(&added);
        let Some(prog) = self.argv.first() else {
            return io::ErrorKind::InvalidInput.into();
        };
        match nix::unistd::execvpe(prog, &self.argv, &env) {
            Err(e) => e.into(),
            Ok(never) => match never {},
        }
    }

    /// The inherited variables not replaced by `added`, then `added`
    /// (borrowed, not copied: the child writes as few pages as it can).
    fn environment<'a>(&'a self, added: &'a [CString]) -> Vec<&'a CStr> {
        let replaced = |e: &CString| {
            let n = name_of(e.as_bytes());
            added.iter().any(|a| name_of(a.as_bytes()) == n)
        };
        let mut env: Vec<&CStr> = Vec::with_capacity(self.base_env.len() + added.len());
        env.extend(
            self.base_env
                .iter()
                .filter(|e| !replaced(e))
                .map(CString::as_c_str),
        );
        env.extend(added.iter().map(CString::as_c_str));
        env
    }
}

/// Our variables, then the rule's; of several with one name the last is
/// kept, as ucspi-tcp's pathexec_env does.
fn added_vars(f: &Facts, rule: &Rule) -> Vec<CString> {
    let mut set: Vec<(&[u8], &[u8])> = vec![
        (b"PROTO", b"TCP"),
        (b"TCPLOCALIP", f.local_ip.as_bytes()),
        (b"TCPLOCALPORT", f.local_port.as_bytes()),
        (b"TCPREMOTEIP", f.remote_ip.as_bytes()),
        (b"TCPREMOTEPORT", f.remote_port.as_bytes()),
    ];
    if let Some(h) = &f.local_host {
        set.push((b"TCPLOCALHOST", h.as_bytes()));
    }
    if let Some(h) = &f.remote_host {
        set.push((b"TCPREMOTEHOST", h.as_bytes()));
    }
    for (n, v) in &rule.vars {
        set.push((n, v));
    }
    let mut out = Vec::with_capacity(set.len());
    for (i, (n, v)) in set.iter().enumerate() {
        if set[i + 1..].iter().any(|(later, _)| later == n) {
            continue;
        }
        let mut e = Vec::with_capacity(n.len() + v.len() + 1);
        e.extend_from_slice(n);
        e.push(b'=');
        e.extend_from_slice(v);
        if let Some(c) = cstring(&e) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opts::Opts;

    #[test]
    fn rule_variables_replace_ours_and_the_last_one_wins() {
        let opts = Opts {
            local_name: Some("0".into()),
            ..Opts::default()
        };
        let facts = Facts::new(
            "[::ffff:127.0.0.1]:25".parse().unwrap(),
            "127.0.0.9:4000".parse().unwrap(),
            &opts,
        );
        let rule = rgrules::decode(b"+A=1\0+TCPREMOTEIP=x\0+A=2\0");
        let vars: Vec<String> = added_vars(&facts, &rule)
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            vars,
            [
                "PROTO=TCP",
                "TCPLOCALIP=127.0.0.1",
                "TCPLOCALPORT=25",
                "TCPREMOTEPORT=4000",
                "TCPLOCALHOST=0",
                "TCPREMOTEIP=x",
                "A=2"
            ]
        );
        let prog = Program::new(&[OsString::from("true")]).unwrap();
        let added = [CString::new("PATH=/x").unwrap()];
        let env = prog.environment(&added);
        assert_eq!(
            env.iter()
                .filter(|e| e.to_bytes().starts_with(b"PATH="))
                .count(),
            1
        );
        assert!(!env
            .iter()
            .any(|e| e.to_bytes().starts_with(b"TCPREMOTEHOST=")));
    }
}
