//! cdbget key [skip] < cdb: print the data of a record; exit 100 if none.
#![forbid(unsafe_code)]
use rgcore::diag::{die, usage};
use rgcore::exit;

fn main() {
    rgcore::diag::version("cdbget");
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let Some((key, skip)) = cdbget::parse_args(&args) else {
        usage("cdbget", "key [skip] < cdb");
    };
    match cdbget::get(key, skip, std::io::stdin(), std::io::stdout().lock()) {
        Ok(true) => std::process::exit(exit::OK),
        Ok(false) => std::process::exit(exit::PERM),
        Err(f) => die("cdbget", &f),
    }
}
