//! A small MySQL/MariaDB client: the client/server protocol's handshake
//! (protocol 41, `mysql_native_password`, and `caching_sha2_password`'s
//! fast path), text queries (`COM_QUERY`) and their results, every call
//! bounded by a deadline. What IndiMail's relay table needs and no more: no
//! TLS, no prepared statements, no compression.
//!
//! Why not the `mysql` crate: with default features off and only
//! `minimal-rust`, it builds 85 crates (flate2, mysql_common with its
//! numeric and date types, url with ICU, regex) for three statements; its
//! start-up cost per relaycheck is in bench/shared/README.md.
//!
//! `caching_sha2_password` (MySQL 8's default) needs, for a user's first
//! login after the server starts, TLS or the server's RSA key, which this
//! client has neither of: create the relay user `IDENTIFIED WITH
//! mysql_native_password`, or log it in once with the `mysql` tool.

use std::io;
use std::time::Instant;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::net::{self, Reader, MAX_FRAME};
use crate::url::EngineUrl;

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_CONNECT_WITH_DB: u32 = 8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;

/// `utf8_general_ci`: known to every server since MySQL 4.1.
const CHARSET: u8 = 33;

/// A failure: the server's error (with its number) or the connection's.
#[derive(Debug)]
pub struct SqlError {
    /// The server's error number (`1146` no such table), `None` for I/O
    /// and protocol failures.
    pub code: Option<u16>,
    /// What happened.
    pub text: String,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(c) => write!(f, "error {c}: {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

impl From<io::Error> for SqlError {
    fn from(e: io::Error) -> Self {
        SqlError {
            code: None,
            text: rgcore::diag::describe_io(&e),
        }
    }
}

fn proto(what: &str) -> SqlError {
    SqlError {
        code: None,
        text: format!("protocol error: {what}"),
    }
}

/// What a statement returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No result set; rows affected.
    Done(u64),
    /// The rows of a result set, each a list of columns (`None` is NULL).
    Rows(Vec<Vec<Option<String>>>),
}

/// Who to log in as.
pub struct Login<'a> {
    /// User name.
    pub user: &'a str,
    /// Password (empty for none).
    pub password: &'a str,
    /// Database to use.
    pub database: &'a str,
}

/// One connection.
pub struct Conn {
    stream: net::Stream,
    reader: Reader,
    seq: u8,
    /// Logged in: say COM_QUIT when dropped.
    ready: bool,
}

/// `COM_QUIT`, whole: a client that closes without it is an "Aborted
/// connection" warning in the server's log, one per SMTP connection.
const COM_QUIT: [u8; 5] = [1, 0, 0, 0, 0x01];

/// How long a goodbye may take (the send buffer is empty: at once).
const QUIT_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

impl Drop for Conn {
    fn drop(&mut self) {
        if self.ready {
            let _ = net::write_all(&mut self.stream, &COM_QUIT, Instant::now() + QUIT_WAIT);
        }
    }
}

impl Conn {
    /// Connect to the server at `url` and log in, before `deadline`.
    pub fn connect(url: &EngineUrl, login: &Login, deadline: Instant) -> Result<Conn, SqlError> {
        Conn::login_over(net::connect(url, deadline)?, login, deadline)
    }

    /// Log in over `stream`, connected to a server (or to a test's or a
    /// fuzzer's bytes), before `deadline`.
    pub fn login_over(
        stream: net::Stream,
        login: &Login,
        deadline: Instant,
    ) -> Result<Conn, SqlError> {
        let mut c = Conn {
            stream,
            reader: Reader::default(),
            seq: 0,
            ready: false,
        };
        let hello = c.packet(deadline)?;
        let greeting = Greeting::parse(&hello)?;
        let auth = scramble_for(&greeting.plugin, login.password, &greeting.scramble)?;
        c.send(
            &handshake_response(login, &greeting.plugin, &auth),
            deadline,
        )?;
        c.finish_auth(login.password, deadline)?;
        c.ready = true;
        Ok(c)
    }

    /// Run one statement.
    pub fn query(&mut self, sql: &str, deadline: Instant) -> Result<Outcome, SqlError> {
        self.seq = 0;
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(0x03);
        p.extend_from_slice(sql.as_bytes());
        self.send(&p, deadline)?;
        let first = self.packet(deadline)?;
        match first.first() {
            Some(0x00) => Ok(Outcome::Done(Cursor(&first[1..]).lenenc().unwrap_or(0))),
            Some(0xff) => Err(server_error(&first)),
            _ => {
                let columns = Cursor(&first)
                    .lenenc()
                    .ok_or_else(|| proto("column count"))?;
                self.rows(columns, deadline).map(Outcome::Rows)
            }
        }
    }

    /// After the handshake response: OK, an error, an auth switch, or
    /// `caching_sha2_password`'s extra round.
    fn finish_auth(&mut self, password: &str, deadline: Instant) -> Result<(), SqlError> {
        for _ in 0..3 {
            let p = self.packet(deadline)?;
            match p.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => return Err(server_error(&p)),
                Some(0xfe) => {
                    let (plugin, data) = split_switch(&p[1..]);
                    let seed = data.get(..20).unwrap_or(data);
                    let auth = scramble_for(&plugin, password, seed)?;
                    self.send(&auth, deadline)?;
                }
                // caching_sha2_password: 3 = fast path done, OK follows
                Some(0x01) if p.get(1) == Some(&3) => {}
                Some(0x01) => {
                    return Err(SqlError {
                        code: None,
                        text: "caching_sha2_password wants a full login (TLS or RSA), which relaygate does not do: use mysql_native_password for this user".into(),
                    })
                }
                _ => return Err(proto("unexpected packet during login")),
            }
        }
        Err(proto("login did not finish"))
    }

    fn rows(
        &mut self,
        columns: u64,
        deadline: Instant,
    ) -> Result<Vec<Vec<Option<String>>>, SqlError> {
        for _ in 0..columns {
            self.packet(deadline)?; // column definitions: not needed
        }
        if self.packet(deadline)?.first() != Some(&0xfe) {
            return Err(proto("no EOF after the columns"));
        }
        let mut rows = Vec::new();
        loop {
            let p = self.packet(deadline)?;
            match p.first() {
                Some(0xfe) if p.len() < 9 => return Ok(rows),
                Some(0xff) => return Err(server_error(&p)),
                _ => rows.push(row(&p, columns)?),
            }
        }
    }

    fn send(&mut self, payload: &[u8], deadline: Instant) -> Result<(), SqlError> {
        let len = u32::try_from(payload.len()).ok().filter(|&n| n < 0xff_ffff);
        let len = len.ok_or_else(|| proto("statement too long"))?;
        let mut out = Vec::with_capacity(payload.len() + 4);
        out.extend_from_slice(&len.to_le_bytes()[..3]);
        out.push(self.seq);
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        net::write_all(&mut self.stream, &out, deadline)?;
        Ok(())
    }

    fn packet(&mut self, deadline: Instant) -> Result<Vec<u8>, SqlError> {
        let head = self.reader.exact(&mut self.stream, 4, deadline)?;
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        if len >= 0xff_ffff || len > MAX_FRAME {
            return Err(proto("packet too long"));
        }
        self.seq = head[3].wrapping_add(1);
        Ok(self.reader.exact(&mut self.stream, len, deadline)?)
    }
}

/// What the server's first packet says.
struct Greeting {
    scramble: Vec<u8>,
    plugin: String,
}

impl Greeting {
    fn parse(p: &[u8]) -> Result<Greeting, SqlError> {
        if p.first() == Some(&0xff) {
            return Err(server_error(p));
        }
        let mut c = Cursor(p);
        if c.take(1) != Some(&[10][..]) {
            return Err(proto("not protocol 10"));
        }
        c.nul_str().ok_or_else(|| proto("server version"))?;
        c.take(4).ok_or_else(|| proto("thread id"))?;
        let mut scramble = c.take(8).ok_or_else(|| proto("scramble"))?.to_vec();
        c.take(1);
        let low = c.take(2).ok_or_else(|| proto("capabilities"))?;
        let mut caps = u32::from(low[0]) | u32::from(low[1]) << 8;
        let mut plugin = "mysql_native_password".to_owned();
        if let Some(rest) = c.take(5) {
            caps |= (u32::from(rest[3]) | u32::from(rest[4]) << 8) << 16;
            let _data_len = c.take(1);
            c.take(10);
            if caps & CLIENT_SECURE_CONNECTION != 0 {
                let part2 = c.nul_str().unwrap_or_default();
                scramble.extend_from_slice(part2.get(..12).unwrap_or(&part2));
            }
            if caps & CLIENT_PLUGIN_AUTH != 0 {
                if let Some(name) = c.nul_str() {
                    plugin = String::from_utf8_lossy(&name).into_owned();
                }
            }
        }
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return Err(proto("server too old (no protocol 4.1)"));
        }
        Ok(Greeting { scramble, plugin })
    }
}

fn handshake_response(login: &Login, plugin: &str, auth: &[u8]) -> Vec<u8> {
    let caps = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH;
    let mut p = Vec::with_capacity(128);
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    p.push(CHARSET);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(login.user.as_bytes());
    p.push(0);
    p.push(u8::try_from(auth.len()).unwrap_or(0));
    p.extend_from_slice(auth.get(..255).unwrap_or(auth));
    p.extend_from_slice(login.database.as_bytes());
    p.push(0);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p
}

/// The auth response of `plugin` for `password` and the server's seed.
fn scramble_for(plugin: &str, password: &str, seed: &[u8]) -> Result<Vec<u8>, SqlError> {
    if password.is_empty() {
        return Ok(Vec::new());
    }
    match plugin {
        "mysql_native_password" => Ok(native_password(password.as_bytes(), seed)),
        "caching_sha2_password" => Ok(caching_sha2(password.as_bytes(), seed)),
        other => Err(SqlError {
            code: None,
            text: format!(
                "authentication plugin {} not supported: use mysql_native_password",
                rgcore::diag::printable(other)
            ),
        }),
    }
}

/// SHA1(pw) XOR SHA1(seed + SHA1(SHA1(pw))).
pub fn native_password(password: &[u8], seed: &[u8]) -> Vec<u8> {
    let h1 = Sha1::digest(password);
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(seed);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + seed).
pub fn caching_sha2(password: &[u8], seed: &[u8]) -> Vec<u8> {
    let h1 = Sha256::digest(password);
    let h2 = Sha256::digest(h1);
    let mut h = Sha256::new();
    h.update(h2);
    h.update(seed);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// An auth switch request's plugin name and seed (without its NUL).
fn split_switch(p: &[u8]) -> (String, &[u8]) {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    let name = String::from_utf8_lossy(p.get(..end).unwrap_or_default()).into_owned();
    let mut data = p.get(end + 1..).unwrap_or_default();
    if let Some(d) = data.strip_suffix(&[0]) {
        data = d;
    }
    (name, data)
}

/// An ERR packet: `0xff`, the number, `#` and the SQL state, the message.
fn server_error(p: &[u8]) -> SqlError {
    let code = p.get(1..3).map(|c| u16::from(c[0]) | u16::from(c[1]) << 8);
    let mut msg = p.get(3..).unwrap_or_default();
    if msg.first() == Some(&b'#') {
        msg = msg.get(6..).unwrap_or_default();
    }
    SqlError {
        code,
        text: rgcore::diag::printable(&String::from_utf8_lossy(msg)),
    }
}

fn row(p: &[u8], columns: u64) -> Result<Vec<Option<String>>, SqlError> {
    let mut c = Cursor(p);
    let mut out = Vec::new();
    for _ in 0..columns {
        if c.0.first() == Some(&0xfb) {
            c.take(1);
            out.push(None);
            continue;
        }
        let len = c.lenenc().ok_or_else(|| proto("row"))?;
        let len = usize::try_from(len).map_err(|_| proto("row"))?;
        let v = c.take(len).ok_or_else(|| proto("row"))?;
        out.push(Some(String::from_utf8_lossy(v).into_owned()));
    }
    Ok(out)
}

/// Reading a packet's fields in turn; `None` when it is too short.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }

    fn nul_str(&mut self) -> Option<Vec<u8>> {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let s = self.take(end)?.to_vec();
        self.take(1);
        Some(s)
    }

    /// A length-encoded integer.
    fn lenenc(&mut self) -> Option<u64> {
        let first = *self.take(1)?.first()?;
        let n = match first {
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            0xfb | 0xff => return None,
            small => return Some(u64::from(small)),
        };
        let bytes = self.take(n)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |acc, &b| acc << 8 | u64::from(b)),
        )
    }
}

/// A string as a SQL literal that no `sql_mode` can misread: a hex
/// literal (`X'6a6f65'`), or `''` when empty.
pub fn literal(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let mut out = String::with_capacity(3 + 2 * s.len());
    out.push_str("X'");
    for b in s.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('\'');
    out
}

impl From<SqlError> for io::Error {
    fn from(e: SqlError) -> Self {
        io::Error::other(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_matches_the_servers_formula() {
        // the server stores SHA1(SHA1(pw)); checking a response is
        // SHA1(response XOR SHA1(seed + stored)) == stored
        let seed = b"abcdefghijklmnopqrst";
        let r = native_password(b"secret", seed);
        let stored = Sha1::digest(Sha1::digest(b"secret"));
        let mut h = Sha1::new();
        h.update(seed);
        h.update(stored);
        let x: Vec<u8> = r
            .iter()
            .zip(h.finalize().iter())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(Sha1::digest(&x).as_slice(), stored.as_slice());
        assert_eq!(r.len(), 20);
        assert!(scramble_for("mysql_native_password", "", seed)
            .unwrap()
            .is_empty());
        assert!(scramble_for("auth_gssapi_client", "x", seed).is_err());
    }

    #[test]
    fn literals_are_hex() {
        assert_eq!(literal("a'\\\""), "X'61275c22'");
        assert_eq!(literal(""), "''");
    }

    #[test]
    fn fields_and_errors() {
        assert_eq!(Cursor(&[0xfc, 0x01, 0x02]).lenenc(), Some(0x0201));
        assert_eq!(Cursor(&[0x05]).lenenc(), Some(5));
        assert_eq!(Cursor(&[0xfe, 1]).lenenc(), None);
        let e = server_error(b"\xff\x7a\x04#42S02Table 'x.relay' doesn't exist");
        assert_eq!(e.code, Some(1146));
        assert_eq!(e.text, "Table 'x.relay' doesn't exist");
        assert_eq!(
            row(&[0xfb, 2, b'h', b'i'], 2).unwrap(),
            [None, Some("hi".into())]
        );
        assert!(row(&[5, b'x'], 1).is_err());
        let (name, data) = split_switch(b"mysql_native_password\0abc\0");
        assert_eq!(
            (name.as_str(), data),
            ("mysql_native_password", &b"abc"[..])
        );
        assert!(Greeting::parse(&[9]).is_err());
        assert!(Greeting::parse(&[]).is_err());
    }
}
