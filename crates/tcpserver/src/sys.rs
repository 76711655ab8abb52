//! The few system calls that need `unsafe`: fork (for connections that need
//! DNS lookups before the rule can be decided), reverse DNS (getnameinfo)
//! and clearing IP options on an accepted socket.

use std::ffi::CStr;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::unistd::ForkResult;
use socket2::SockAddr;

/// fork(2).
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: tcpserver is single-threaded (no thread is ever started), so
    // the child may allocate and call anything before it execs or exits.
    unsafe { nix::unistd::fork() }
}

/// The name of `addr` from the resolver (files, then DNS), or None.
pub fn reverse_name(addr: SocketAddr) -> Option<String> {
    let sa = SockAddr::from(addr);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: sa points at a valid sockaddr of sa.len() bytes; host is a
    // writable buffer of the length passed; no service buffer is requested.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into host.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    let name = name
        .to_str()
        .ok()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Drop IP options (source routes) from an IPv4 socket, as ucspi-tcp does.
pub fn kill_ip_options(fd: BorrowedFd<'_>) {
    // SAFETY: fd is an open socket; a null option value of length 0 clears
    // the options; failure (e.g. on an IPv6 socket) is harmless and ignored.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_OPTIONS,
            std::ptr::null(),
            0,
        );
    }
}

/// Give the program SIGPIPE's default action back (Rust's runtime ignores
/// it, and an ignored signal stays ignored across exec).
pub fn default_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installing SIG_DFL runs no handler code; called in the forked
    // child just before exec.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
