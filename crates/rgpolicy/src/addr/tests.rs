use super::*;

#[test]
fn plain_path() {
    let p = parse_rcpt(b"<a@example.org>").unwrap();
    assert_eq!(p.path.queued(), "a@example.org");
}
