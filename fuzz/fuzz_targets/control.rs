//! Control-file parsing: line splitting, domain sets, IP rule networks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = rgcore::control::parse_lines(data);
    let set = rgcore::control::DomainSet::from_lines(&lines);
    for l in &lines {
        let _ = set.contains(l);
        let _ = rgcore::ip::parse_rule_net(l);
        let _ = rgcore::ip::parse(l);
    }
});
