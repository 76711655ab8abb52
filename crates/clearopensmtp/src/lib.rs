//! clearopensmtp: remove expired entries from the `RELAYDIR` and `DENYDIR`
//! tables (for cron). Owns no state: the clearing itself, and its guarantee
//! while logins and checks run, live in `rgiptable::clear`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// Arguments that are not `[-m minutes]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage;

/// Parse the arguments: nothing, `-m N` or `-mN`. `Ok(None)`: no `-m`.
pub fn parse_args(args: &[OsString]) -> Result<Option<Duration>, Usage> {
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().ok_or(Usage))
        .collect::<Result<_, _>>()?;
    match args.as_slice() {
        [] => Ok(None),
        ["-m", n] => rgiptable::parse_minutes(n).map(Some).ok_or(Usage),
        [m] if m.starts_with("-m") && m.len() > 2 => {
            rgiptable::parse_minutes(&m[2..]).map(Some).ok_or(Usage)
        }
        _ => Err(Usage),
    }
}

/// Clear one table; the report line for stdout, or the failure message.
pub fn clear_table(name: &str, dir: &Path, max_age: Duration) -> Result<String, String> {
    match rgiptable::clear(dir, max_age) {
        Ok((removed, kept)) => Ok(format!(
            "table={name} dir={} removed={removed} kept={kept}",
            rgcore::diag::printable(&dir.display().to_string())
        )),
        Err(e) => Err(format!(
            "unable to clear {}: {}",
            dir.display(),
            rgcore::diag::describe_io(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn minutes_option() {
        assert_eq!(parse_args(&args(&[])), Ok(None));
        assert_eq!(
            parse_args(&args(&["-m", "30"])),
            Ok(Some(Duration::from_secs(1800)))
        );
        assert_eq!(
            parse_args(&args(&["-m5"])),
            Ok(Some(Duration::from_secs(300)))
        );
        for bad in [
            &["-m"][..],
            &["-m", "x"],
            &["-x"],
            &["30"],
            &["-m", "1", "2"],
            &["-m", "-1"],
        ] {
            assert_eq!(parse_args(&args(bad)), Err(Usage), "{bad:?}");
        }
    }

    #[test]
    fn report_line_and_missing_table() {
        let dir = std::env::temp_dir().join(format!("clearopensmtp-none-{}", std::process::id()));
        let line = clear_table("relay", &dir, Duration::from_secs(60)).unwrap();
        assert!(
            line.starts_with("table=relay dir=") && line.ends_with(" removed=0 kept=0"),
            "{line}"
        );
    }
}
