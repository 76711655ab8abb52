//! The one place rgauth needs `unsafe`: placing a pipe at file descriptor 3
//! in a child between fork and exec (std's `Command` maps only fds 0-2).

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arrange for `fd` (a pipe end opened close-on-exec) to appear as fd 3,
/// inheritable, in the program `cmd` runs.
pub fn map_to_fd3(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called. It calls only dup2(2) and
    // fcntl(2), which are async-signal-safe, allocates nothing, takes no
    // locks and touches no memory but its captured integer.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // dup2(3, 3) would keep close-on-exec set: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
