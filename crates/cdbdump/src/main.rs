//! cdbdump < cdb: print a cdb in cdbmake's input format.
#![forbid(unsafe_code)]
use rgcore::diag::{die, usage};

fn main() {
    rgcore::diag::version("cdbdump");
    if std::env::args_os().len() > 1 {
        usage("cdbdump", "< cdb");
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    if let Err(f) = cdbdump::dump(stdin, stdout) {
        die("cdbdump", &f);
    }
}
