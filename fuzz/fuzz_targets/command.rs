//! The SMTP session fed arbitrary bytes in arbitrary pieces (commands,
//! AUTH exchanges, DATA): it never panics, never consumes more than it was
//! given, and a message reaches the queue only with a clean envelope.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgcore::Failure;
use rgpolicy::addr::{parse_mail, parse_rcpt, Path};
use rgsmtp::{
    Action, AuthOutcome, Config, Env, MailOk, QueueOutcome, RcptOutcome, RcptVerdict, Reply,
    Session, Wants,
};

struct Toy;

impl Env for Toy {
    type Sender = Path;
    fn greeting(&mut self) -> Result<String, Failure> {
        Ok("mx.example.org".into())
    }
    fn me(&mut self) -> Result<String, Failure> {
        Ok("mx.example.org".into())
    }
    fn databytes(&mut self) -> Result<u64, Failure> {
        Ok(1000)
    }
    fn maxrcpt(&mut self) -> Result<usize, Failure> {
        Ok(5)
    }
    fn mail(&mut self, arg: &[u8]) -> Result<Result<MailOk<Path>, Reply>, Failure> {
        Ok(match parse_mail(arg) {
            Ok(p) => Ok(MailOk {
                queued: p.path.queued().into_bytes(),
                sender: p.path,
                params: p.params,
            }),
            Err(e) => Err(Reply {
                code: e.code,
                text: e.text,
            }),
        })
    }
    fn rcpt(&mut self, _: &Path, arg: &[u8], auth: Option<&str>) -> Result<RcptOutcome, Failure> {
        let (accept, queued) = match parse_rcpt(arg) {
            Ok(p) => {
                let local = match &p.path {
                    Path::Mailbox(m) => m.domain.eq_ignore_ascii_case("example.org"),
                    Path::Postmaster => true,
                    Path::Null => false,
                };
                (local || auth.is_some(), p.path.queued())
            }
            Err(_) => (false, String::new()),
        };
        let verdict = match accept {
            true => RcptVerdict::Accept {
                queued: queued.clone().into_bytes(),
            },
            false => RcptVerdict::Refuse(Reply {
                code: 553,
                text: "5.7.1 no".into(),
            }),
        };
        Ok(RcptOutcome {
            verdict,
            rule: "toy".into(),
            address: queued.into_bytes(),
        })
    }
    fn now(&mut self) -> u64 {
        0
    }
    fn cram_challenge(&mut self, me: &str) -> String {
        format!("<1.0.1@{me}>")
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, input) = data.split_at(data.len().min(1));
    let flags = head.first().copied().unwrap_or(0);
    let cfg = Config {
        pid: 1,
        ip: "192.0.2.1".into(),
        auth: flags & 1 != 0,
        cleartext_auth: flags & 2 != 0,
        tls_available: flags & 4 != 0,
        require_auth: flags & 8 != 0,
        ..Config::default()
    };
    let mut s = Session::new(Toy, cfg);
    s.greet();
    let mut pos = 0;
    let step = usize::from(flags >> 4) + 1;
    let mut rounds = 0;
    while pos < input.len() && rounds < 100_000 {
        rounds += 1;
        let end = (pos + step).min(input.len());
        let used = s.feed(&input[pos..end]);
        assert!(used <= end - pos);
        pos += used;
        while let Some(a) = s.next_action() {
            match a {
                Action::MessageEnd { sender, recipients } => {
                    let rcpts: Vec<&[u8]> = recipients.iter().map(Vec::as_slice).collect();
                    let envelope = rgspool::envelope(&sender, &rcpts);
                    assert!(!recipients.is_empty());
                    assert!(rgspool::parse_envelope(&envelope).is_ok());
                    s.message_out().clear();
                    s.queue_result(QueueOutcome::Ok("x".into()));
                }
                Action::CheckPassword { secret, .. } => s.auth_result(if secret == b"ok" {
                    AuthOutcome::Ok
                } else {
                    AuthOutcome::Bad
                }),
                _ => {}
            }
        }
        s.message_out().clear();
        match s.wants() {
            Wants::DataGo => s.data_go(),
            Wants::Tls => s.tls_started("version=x"),
            Wants::Close => break,
            _ => {}
        }
        s.output().clear();
        s.log_out().clear();
    }
    s.timeout();
});
