//! One account and its two encodings: a line of `CONTROLDIR/users` and a
//! record of `users.cdb` (see `man/users.5`).
//!
//! users line:     `address:S:hash:cram:home`
//! users.cdb:      key `address`, data `Shash:cram:home`
//!                 key `@domain`, empty data, once per domain with accounts
//!
//! `S` is `+` (login enabled) or `-` (disabled); `hash` a `$6$` crypt hash;
//! `cram` empty or 64 hex digits (the CRAM-MD5 key pair); `home` empty or an
//! absolute path (the rest of the line, so it is the last field).

use crate::cram::CramKeys;
use crate::hash;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Lower-case `local@domain`.
    pub address: String,
    /// Login enabled (`+`) or disabled (`-`).
    pub enabled: bool,
    /// SHA-512-crypt hash of the password.
    pub hash: String,
    /// CRAM-MD5 key pair; `None` when CRAM-MD5 is off for this account.
    pub cram: Option<CramKeys>,
    /// Home directory; `None` means `/` for checkpassword.
    pub home: Option<String>,
}

/// Lower-case and check an account address: `local@domain`, at most 255
/// octets, printable ASCII without blanks, `:` or a second `@`; the domain a
/// host name (letters, digits, `-`, dots between labels).
pub fn normalize_address(addr: &str) -> Result<String, String> {
    let a = addr.to_ascii_lowercase();
    if a.is_empty() || a.len() > 255 {
        return Err("address must be 1 to 255 characters".into());
    }
    let Some((local, domain)) = a.split_once('@') else {
        return Err("address must be local@domain".into());
    };
    if local.is_empty() || domain.is_empty() {
        return Err("address must be local@domain".into());
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b':' && b != b'@')
        || local.starts_with('#')
    {
        return Err("local part must be printable ASCII without blanks, ':' or '@'".into());
    }
    if !valid_domain(domain) {
        return Err("domain must be a host name".into());
    }
    Ok(a)
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Check a home directory: absolute, printable ASCII, no `:`.
pub fn check_home(home: &str) -> Result<(), String> {
    if !home.starts_with('/') {
        return Err("home must be an absolute path".into());
    }
    if !home.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("home must be printable ASCII".into());
    }
    Ok(())
}

impl Account {
    /// A new enabled account for `password`.
    pub fn new(
        address: &str,
        password: &[u8],
        with_cram: bool,
        home: Option<String>,
    ) -> Result<Account, String> {
        let address = normalize_address(address)?;
        if let Some(h) = &home {
            check_home(h)?;
        }
        let mut acct = Account {
            address,
            enabled: true,
            hash: String::new(),
            cram: None,
            home,
        };
        acct.set_password(password, with_cram)?;
        Ok(acct)
    }

    /// Replace the password (and the CRAM-MD5 keys, or drop them).
    pub fn set_password(&mut self, password: &[u8], with_cram: bool) -> Result<(), String> {
        self.set_password_rounds(password, with_cram, hash::DEFAULT_ROUNDS)
    }

    /// [`Account::set_password`] with a chosen SHA-512-crypt cost.
    pub fn set_password_rounds(
        &mut self,
        password: &[u8],
        with_cram: bool,
        rounds: usize,
    ) -> Result<(), String> {
        if password.is_empty() {
            return Err("empty password".into());
        }
        self.hash = hash::hash_password(password, rounds)?;
        self.cram = with_cram.then(|| CramKeys::from_password(password));
        Ok(())
    }

    /// The domain part of the address.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// Everything after `address:` on a users line and after the state byte
    /// in users.cdb: `hash:cram:home`.
    fn tail(&self) -> String {
        format!(
            "{}:{}:{}",
            self.hash,
            self.cram.map(|k| k.to_hex()).unwrap_or_default(),
            self.home.as_deref().unwrap_or("")
        )
    }

    fn state(&self) -> char {
        if self.enabled {
            '+'
        } else {
            '-'
        }
    }

    /// The users line, without the newline.
    pub fn to_line(&self) -> String {
        format!("{}:{}:{}", self.address, self.state(), self.tail())
    }

    /// The users.cdb data.
    pub fn cdb_data(&self) -> Vec<u8> {
        format!("{}{}", self.state(), self.tail()).into_bytes()
    }

    /// Parse a users line (without newline).
    pub fn parse_line(line: &str) -> Result<Account, String> {
        let (addr, rest) = line.split_once(':').ok_or("missing fields")?;
        let (state, rest) = rest.split_once(':').ok_or("missing fields")?;
        let address = normalize_address(addr)?;
        if address != addr {
            return Err("address must be lower case".into());
        }
        let mut data = state.as_bytes().to_vec();
        data.extend_from_slice(rest.as_bytes());
        if state.len() != 1 {
            return Err("state must be + or -".into());
        }
        Account::from_cdb(&address, &data)
    }

    /// Parse users.cdb data for `address`.
    pub fn from_cdb(address: &str, data: &[u8]) -> Result<Account, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not ASCII")?;
        let enabled = match text.as_bytes().first() {
            Some(b'+') => true,
            Some(b'-') => false,
            _ => return Err("state must be + or -".into()),
        };
        let mut fields = text[1..].splitn(3, ':');
        let hash = fields.next().unwrap_or("");
        let cram = fields.next().ok_or("missing fields")?;
        let home = fields.next().ok_or("missing fields")?;
        if !hash::is_valid_hash(hash) {
            return Err("password hash is not a $6$ crypt hash".into());
        }
        let cram = match cram {
            "" => None,
            c => Some(CramKeys::from_hex(c).ok_or("CRAM-MD5 keys must be 64 hex digits")?),
        };
        let home = match home {
            "" => None,
            h => {
                check_home(h)?;
                Some(h.to_string())
            }
        };
        Ok(Account {
            address: address.to_string(),
            enabled,
            hash: hash.to_string(),
            cram,
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address("Joe@Example.ORG").unwrap(),
            "joe@example.org"
        );
        for bad in [
            "",
            "joe",
            "@example.org",
            "joe@",
            "jo e@x.org",
            "a:b@x.org",
            "a@b@x.org",
            "joe@exa_mple.org",
            "joe@.org",
            "joe@x..org",
            "#joe@x.org",
            "joe@x.org.",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
        assert!(normalize_address(&format!("{}@x.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn line_round_trip() {
        let a = Account::new("Joe@Example.org", b"pw", true, Some("/home/joe".into())).unwrap();
        let line = a.to_line();
        assert!(line.starts_with("joe@example.org:+:$6$rounds="));
        assert!(line.ends_with(":/home/joe"));
        assert_eq!(Account::parse_line(&line).unwrap(), a);
        assert_eq!(Account::from_cdb(&a.address, &a.cdb_data()).unwrap(), a);
        assert_eq!(a.cdb_data()[0], b'+');
        assert_eq!(a.domain(), "example.org");

        let mut b = Account::new("x@y.example", b"pw", false, None).unwrap();
        b.enabled = false;
        let line = b.to_line();
        assert!(
            line.starts_with("x@y.example:-:$6$") && line.ends_with("::"),
            "{line}"
        );
        assert_eq!(Account::parse_line(&line).unwrap(), b);
    }

    #[test]
    fn bad_lines() {
        let good = Account::new("j@x.org", b"pw", true, None)
            .unwrap()
            .to_line();
        assert!(Account::parse_line(&good).is_ok());
        for bad in [
            "j@x.org".to_string(),
            good.replacen(":+:", ":*:", 1),
            good.replacen(":+:", ":++:", 1),
            good.replacen("j@x.org", "J@x.org", 1),
            good.replacen("$6$", "$1$", 1),
            format!("{good}relative/home"),
            good.trim_end_matches(':').to_string(),
        ] {
            assert!(Account::parse_line(&bad).is_err(), "{bad}");
        }
        assert!(Account::from_cdb("j@x.org", b"").is_err());
        assert!(Account::from_cdb("j@x.org", b"+").is_err());
        assert!(Account::from_cdb("j@x.org", &[b'+', 0xff]).is_err());
    }

    #[test]
    fn empty_password_refused() {
        assert!(Account::new("j@x.org", b"", true, None).is_err());
    }
}
