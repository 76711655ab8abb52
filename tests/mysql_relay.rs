//! IndiMail's MySQL relay table (SPEC section 9, `RELAYSQL`) on a real
//! MariaDB started by the tests: a row inserted the way IndiMail's POP3/IMAP
//! login inserts it grants relaying through two front-ends (tcpserver,
//! relaycheck and smtpd on different 127.0.0.x addresses), relayallow
//! writes IndiMail's row (which IndiMail's own query then finds),
//! clearopensmtp deletes the old rows, and the faults: MariaDB stopped,
//! paused (SIGSTOP) and restarted, every connection answered within
//! RELAYSTATE_TIMEOUT.

use std::process::Output;
use std::time::Instant;

use relaygate::TempDir;

#[path = "frontend/mod.rs"]
mod frontend;
#[path = "peers/mod.rs"]
mod peers;
#[path = "smtpd_support/mod.rs"]
mod support;

use frontend::{bound, probe, relays, stderr, text, FrontEnd};
use peers::mariadb::Mariadb;
use support::Client;

/// IndiMail's `RELAY_TABLE_LAYOUT` (indimail.h), as its installer creates
/// the table.
const INDIMAIL_TABLE: &str = "CREATE TABLE relay (email char(96) not null, \
    ipaddr char(18) not null, timestamp int, unique index (email, ipaddr), \
    index(ipaddr), index(timestamp))";

/// relayallow on `fe` after a login from `src` (as `user`).
fn login(fe: &FrontEnd, src: &str, user: Option<&str>) -> Output {
    let mut env = vec![("TCPREMOTEIP", src)];
    env.extend(user.map(|u| ("USER", u)));
    fe.run("relayallow", &["true"], &env)
}

#[test]
fn indimail_rows_grant_relaying_on_both_front_ends_and_ours_are_indimails() {
    let tmp = TempDir::new("sql-relay");
    let Some(db) = Mariadb::start(&tmp) else {
        return;
    };
    db.sql(INDIMAIL_TABLE);
    let a = FrontEnd::start("127.0.0.36", "RELAYSQL", &db.url());
    // B reaches MariaDB through its Unix socket
    let b = FrontEnd::start("127.0.0.37", "RELAYSQL", &db.socket_url());
    let src = "127.0.0.51";
    assert!(
        !relays(&a, src) && !relays(&b, src),
        "no relaying before a login"
    );

    // IndiMail's open_smtp_relay(): REPLACE with double quotes, its clock
    db.sql(&format!(
        "replace into relay ( email, ipaddr, timestamp ) values \
         (\"joe@example.org\", \"{src}\", UNIX_TIMESTAMP())"
    ));
    assert!(relays(&a, src), "front-end A: {}", a.mx.server.log());
    assert!(relays(&b, src), "front-end B: {}", b.mx.server.log());
    assert!(!relays(&b, "127.0.0.52"), "only that address");
    assert_eq!(
        a.check(src).0,
        "RELAYCLIENT=\nRELAYUSER=joe@example.org\n",
        "by IP alone, the email column as RELAYUSER"
    );

    // relayallow writes IndiMail's row; IndiMail's relay_select() finds it
    let o = login(&a, "127.0.0.53", Some("ann@example.org"));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(
        db.sql("select email FROM relay WHERE ipaddr=\"127.0.0.53\" AND timestamp>(UNIX_TIMESTAMP()-3600)"),
        "ann@example.org"
    );
    assert!(relays(&b, "127.0.0.53"));
    // a second login refreshes the same row (unique email, ipaddr)
    db.sql("update relay set timestamp = timestamp - 100 where ipaddr = '127.0.0.53'");
    login(&a, "127.0.0.53", Some("ann@example.org"));
    assert_eq!(
        db.sql("select count(*), max(timestamp) > UNIX_TIMESTAMP() - 60 from relay where ipaddr = '127.0.0.53'"),
        "1\t1"
    );
    // without USER the email column holds the IP text; no RELAYUSER then
    login(&a, "127.0.0.54", None);
    assert_eq!(
        db.sql("select email from relay where ipaddr = '127.0.0.54'"),
        "127.0.0.54"
    );
    assert_eq!(b.check("127.0.0.54").0, "RELAYCLIENT=\n");
    // a user name cannot break the statement
    let odd = "o'hara\\x@example.org";
    let o = login(&a, "127.0.0.55", Some(odd));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(
        db.sql("select email from relay where ipaddr = '127.0.0.55'"),
        "o'hara\\\\x@example.org"
    );

    // an old row grants nothing; clearopensmtp deletes it, keeps the rest
    db.sql(
        "replace into relay ( email, ipaddr, timestamp ) values \
         (\"old@example.org\", \"127.0.0.56\", UNIX_TIMESTAMP() - 7200)",
    );
    assert_eq!(a.check("127.0.0.56").0, "");
    let o = a.run("clearopensmtp", &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        text(&o).starts_with(&format!(
            "table=relay engine=mysql://{}:{}/indimail?table=relay removed=1 kept=4\n",
            db.ip, db.port
        )),
        "{}",
        text(&o)
    );
    assert_eq!(
        db.sql("select count(*) from relay where ipaddr = '127.0.0.56'"),
        "0"
    );
    assert!(relays(&a, src), "fresh rows kept");
    assert!(!text(&o).contains("ssh-1.5-"), "no password in the output");
    // every program said COM_QUIT: not one "Aborted connection" warning
    assert_eq!(
        db.sql("show global status like 'Aborted_clients'"),
        "Aborted_clients\t0",
        "{}",
        db.log()
    );
}

#[test]
fn a_missing_table_is_created_as_indimail_does_and_a_bad_password_is_one_line() {
    let tmp = TempDir::new("sql-create");
    let Some(db) = Mariadb::start(&tmp) else {
        return;
    };
    let a = FrontEnd::start("127.0.0.38", "RELAYSQL", &db.url());
    let (relay, err) = a.check("127.0.0.57");
    assert_eq!(relay, "");
    assert!(
        err.contains("doesn't exist") && err.contains("relay grants off"),
        "{err}"
    );
    let o = login(&a, "127.0.0.57", Some("joe@example.org"));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    let create = db.sql("show create table relay");
    for column in [
        "`email` char(96) NOT NULL",
        "`ipaddr` char(46) NOT NULL",
        "`timestamp` int",
    ] {
        assert!(create.contains(column), "{create}");
    }
    assert_eq!(
        a.check("127.0.0.57").0,
        "RELAYCLIENT=\nRELAYUSER=joe@example.org\n"
    );
    // RELAY_TABLE names another table, as in IndiMail
    let o = a.run(
        "relayallow",
        &["true"],
        &[("TCPREMOTEIP", "::1"), ("RELAY_TABLE", "relay2")],
    );
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(db.sql("select email from relay2"), "::1");

    let wrong = FrontEnd::start(
        "127.0.0.39",
        "RELAYSQL",
        &db.url().replace("ssh-1.5-", "nope"),
    );
    let (relay, err) = wrong.check("127.0.0.57");
    assert_eq!(relay, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Access denied") && !err.contains("nope"),
        "{err}"
    );
    let mut c = Client::connect("127.0.0.57", &wrong.mx.addr);
    assert!(c.reply().starts_with("220 "), "mail still accepted");
}

#[test]
fn mariadb_stopped_paused_and_restarted_fails_closed_in_bounded_time() {
    let tmp = TempDir::new("sql-faults");
    let Some(mut db) = Mariadb::start(&tmp) else {
        return;
    };
    db.sql(INDIMAIL_TABLE);
    let a = FrontEnd::start("127.0.0.40", "RELAYSQL", &db.url());
    let src = "127.0.0.58";
    let o = login(&a, src, Some("joe@example.org"));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    let (_, foreign, local) = probe(&a, src);
    assert!(foreign && local);

    for fault in ["paused", "stopped"] {
        match fault {
            "paused" => db.pause(),
            _ => {
                db.resume();
                db.stop();
            }
        }
        let before = a.mx.server.log().matches("relay grants off").count();
        let (waited, foreign, local) = probe(&a, src);
        assert!(waited < bound(), "{fault}: greeting after {waited:?}");
        assert!(
            !foreign,
            "{fault}: no relaying through an unreachable table"
        );
        assert!(local, "{fault}: mail for local domains still accepted");
        let log = a.mx.log_with("relay grants off");
        assert_eq!(
            log.matches("relay grants off").count() - before,
            1,
            "{fault}\n{log}"
        );

        let start = Instant::now();
        let o = login(&a, src, Some("joe@example.org"));
        let waited = start.elapsed();
        assert!(
            o.status.success() && waited < bound(),
            "{fault}: {waited:?}"
        );
        assert!(
            stderr(&o).contains("unable to record 127.0.0.58"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!a.mx.server.log().contains("panicked"));

    db.restart();
    let (_, foreign, local) = probe(&a, src);
    assert!(
        foreign && local,
        "the row is there again: {}",
        a.mx.server.log()
    );
}
