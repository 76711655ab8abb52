//! deliver: being written (see docs/DELIVERY.md).
fn main() {
    eprintln!("deliver: fatal: not built yet");
    std::process::exit(111);
}
