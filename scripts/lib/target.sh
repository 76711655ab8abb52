# Sourced by scripts/run, scripts/test and the benchmarks: picks the build
# target for relaygate's programs.
#
# Every SMTP connection execs smtpd (the qmail model), so process start-up
# is paid per message. A static musl build starts faster than a static
# glibc one: glibc probes the CPU's features and caches with CPUID at every
# start, and CPUID traps to the hypervisor on virtual machines (measured in
# bench/smtpd/README.md). So: x86_64-unknown-linux-musl when its Rust
# standard library (rustup target add x86_64-unknown-linux-musl) and
# musl-gcc (Debian's musl-tools, for ring's C code) are installed; else the
# host target x86_64-unknown-linux-gnu, linked statically against glibc
# (crt-static, set below for that target only).
# A CARGO_BUILD_TARGET already set wins.
#
# Sets CARGO_BUILD_TARGET (exported) when it picks musl, and RG_TRIPLE_DIR:
# the part of the path between the target directory and the profile
# ("x86_64-unknown-linux-musl/" or empty).
if [ -z "${CARGO_BUILD_TARGET:-}" ] && [ "$(uname -m)" = x86_64 ] &&
  [ "$(uname -s)" = Linux ] && command -v musl-gcc >/dev/null 2>&1 &&
  rg_sysroot=$(rustc --print sysroot 2>/dev/null) &&
  [ -d "$rg_sysroot/lib/rustlib/x86_64-unknown-linux-musl/lib" ]; then
  CARGO_BUILD_TARGET=x86_64-unknown-linux-musl
  export CARGO_BUILD_TARGET
fi
# Without musl, the static glibc build: the target is named explicitly, so
# that crt-static applies to the programs only and not to build scripts and
# proc-macros (which cannot be built static; hickory-proto's dependencies
# have some). A plain `cargo build` without these gives dynamic glibc.
if [ -z "${CARGO_BUILD_TARGET:-}" ] && [ "$(uname -m)" = x86_64 ] && [ "$(uname -s)" = Linux ]; then
  CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu
  export CARGO_BUILD_TARGET
fi
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:-"-C target-feature=+crt-static"}
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS
RG_TRIPLE_DIR=${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}

# RG_GLIBC_TOO is "yes" when the pick is not glibc and GLIBC is not 0: the
# benchmarks then also build the static glibc target (RG_GNU) and measure it
# in the same rounds.
RG_GNU=x86_64-unknown-linux-gnu
RG_GLIBC_TOO=
if [ "${GLIBC:-1}" = 1 ] && [ -n "$RG_TRIPLE_DIR" ] && [ "$RG_TRIPLE_DIR" != "$RG_GNU/" ]; then
  RG_GLIBC_TOO=yes
fi
