use rgcore::diag;

fn main() {
    rgcore::diag::version("tcpserver");
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let opts = match tcpserver::opts::parse(&args) {
        Ok(o) => o,
        Err(f) if f.msg == "usage" => diag::usage("tcpserver", tcpserver::opts::USAGE),
        Err(f) => diag::die("tcpserver", &f),
    };
    if let Err(f) = tcpserver::run(&opts) {
        if opts.verbosity == 0 {
            std::process::exit(f.code);
        }
        diag::die("tcpserver", &f);
    }
}
