//! Account parsing: checkpassword's fd 3 input, users lines and files,
//! users.cdb records, CRAM-MD5 key pairs and digests. (No password is
//! hashed here: the slow hash is not a parser.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = rgauth::parse_input(data) {
        assert!(c.user.len() + c.secret.len() + c.extra.len() <= rgauth::check::MAX_INPUT);
        if rgauth::cram::is_hex_digest(&c.secret) {
            let keys = rgauth::CramKeys::from_password(&c.user);
            let _ = keys.verify(&c.extra, &c.secret);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(accounts) = rgauth::store::parse_users(text) {
            // what parses must survive the round trip through both forms
            for a in &accounts {
                assert_eq!(rgauth::Account::parse_line(&a.to_line()).as_ref(), Ok(a));
                assert_eq!(
                    rgauth::Account::from_cdb(&a.address, &a.cdb_data()).as_ref(),
                    Ok(a)
                );
            }
        }
        if let Some(k) = rgauth::CramKeys::from_hex(text) {
            assert_eq!(k.to_hex(), text.to_ascii_lowercase());
        }
        let _ = rgauth::account::normalize_address(text);
    }
    let _ = rgauth::Account::from_cdb("u@example.org", data);
});
