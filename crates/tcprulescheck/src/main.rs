use std::io::Write;
use std::path::PathBuf;

fn main() {
    rgcore::diag::version("tcprulescheck");
    let Some(rules) = std::env::args_os().nth(1).map(PathBuf::from) else {
        rgcore::diag::usage("tcprulescheck", "rules.cdb");
    };
    let var = |n: &str| std::env::var(n).ok();
    let (ip, host, info) = (
        var("TCPREMOTEIP"),
        var("TCPREMOTEHOST"),
        var("TCPREMOTEINFO"),
    );
    match tcprulescheck::check(&rules, ip.as_deref(), host.as_deref(), info.as_deref()) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(&out);
        }
        Err(f) => rgcore::diag::die("tcprulescheck", &f),
    }
}
