use std::path::PathBuf;

fn main() {
    rgcore::diag::version("tcprules");
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [cdb, tmp, ..] = args.as_slice() else {
        rgcore::diag::usage("tcprules", "rules.cdb rules.tmp");
    };
    if let Err(f) = tcprules::run(&mut std::io::stdin().lock(), cdb, tmp) {
        rgcore::diag::die("tcprules", &f);
    }
}
