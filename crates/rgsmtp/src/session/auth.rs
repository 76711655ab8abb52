//! SMTP AUTH (RFC 4954) inside the session: PLAIN, LOGIN and CRAM-MD5,
//! their continuation lines, and checkpassword's verdict. Owns no state of
//! its own: the exchange's step lives in the session's phase
//! ([`AuthStep`]), the user in `auth_user`; the credentials leave only as
//! [`Action::CheckPassword`].

use rgcore::diag::{printable, printable_bytes};

use super::{Action, AuthOutcome, Env, Phase, Session, MAX_AUTH_FAILURES};
use crate::{b64, reply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mech {
    Plain,
    Login,
    CramMd5,
}

/// Where an AUTH exchange stands while it waits for a continuation line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthStep {
    PlainResponse,
    LoginUser,
    LoginPass(Vec<u8>),
    CramResponse(Vec<u8>),
}

impl<E: Env> Session<E> {
    /// checkpassword's verdict for the last [`Action::CheckPassword`].
    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        let Phase::AwaitAuth(user) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };
        let shown = printable_bytes(&user);
        match outcome {
            AuthOutcome::Ok => {
                // the account it matched: users.cdb keys are lower-cased
                // (users(5)), so `Joe@Example.ORG` logs in as joe@example.org
                let account = String::from_utf8_lossy(&user).to_ascii_lowercase();
                self.logf(&format!(
                    "event=auth result=ok user={}",
                    printable(&account)
                ));
                self.auth_user = Some(account);
                self.reply(reply::AUTH_OK);
            }
            AuthOutcome::Bad => {
                self.logf(&format!("event=auth result=failed user={shown}"));
                self.auth_failed();
            }
            AuthOutcome::Temp => {
                self.logf(&format!("event=auth result=tempfail user={shown}"));
                self.reply(reply::AUTH_TEMP);
            }
            AuthOutcome::Banned => {
                self.logf(&format!(
                    "event=auth result=refused rule=authfailures reason=banned user={shown}"
                ));
                self.reply(reply::AUTH_BANNED);
                self.close();
            }
            AuthOutcome::BadBanned => {
                self.logf(&format!("event=auth result=failed user={shown}"));
                self.reply(reply::AUTH_FAILED);
                self.logf("event=close reason=banned rule=authfailures");
                self.reply(reply::AUTH_BANNED);
                self.close();
            }
        }
    }

    pub(super) fn auth_failed(&mut self) {
        self.reply(reply::AUTH_FAILED);
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.logf("event=close reason=too_many_auth_failures");
            self.reply(reply::TOO_MANY_AUTH_FAILURES);
            self.close();
        }
    }

    pub(super) fn auth_cmd(&mut self, arg: &[u8]) {
        if !self.cfg.auth {
            return self.fail(reply::AUTH_UNAVAILABLE);
        }
        if self.helo.is_none() || !self.esmtp {
            return self.fail(reply::NEED_EHLO);
        }
        if self.auth_user.is_some() {
            return self.fail(reply::AUTH_TWICE);
        }
        if self.txn.is_some() {
            return self.fail(reply::AUTH_IN_TXN);
        }
        let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let mech = words.next().unwrap_or_default();
        let initial = words.next();
        if words.next().is_some() {
            return self.fail(reply::SYNTAX_AUTH);
        }
        let mech = if mech.eq_ignore_ascii_case(b"PLAIN") {
            Mech::Plain
        } else if mech.eq_ignore_ascii_case(b"LOGIN") {
            Mech::Login
        } else if mech.eq_ignore_ascii_case(b"CRAM-MD5") {
            Mech::CramMd5
        } else {
            self.logf(&format!(
                "event=auth result=unknown_mechanism mech={}",
                printable_bytes(mech)
            ));
            return self.fail(reply::AUTH_MECH_UNKNOWN);
        };
        if !self.cleartext_ok() {
            self.logf("event=auth result=refused reason=cleartext_without_tls");
            return self.fail(reply::AUTH_NEEDS_TLS);
        }
        match (mech, initial) {
            (Mech::Plain, None) => self.auth_prompt(AuthStep::PlainResponse, ""),
            (Mech::Plain, Some(ir)) => self.auth_continue(AuthStep::PlainResponse, ir),
            (Mech::Login, None) => self.auth_prompt(AuthStep::LoginUser, "VXNlcm5hbWU6"),
            (Mech::Login, Some(ir)) => self.auth_continue(AuthStep::LoginUser, ir),
            (Mech::CramMd5, Some(_)) => self.fail(reply::CRAM_NO_INITIAL),
            (Mech::CramMd5, None) => {
                let Some(me) = self.me() else { return };
                let challenge = self.env.cram_challenge(&me);
                let prompt = b64::encode(challenge.as_bytes());
                self.auth_prompt(AuthStep::CramResponse(challenge.into_bytes()), &prompt);
            }
        }
    }

    fn auth_prompt(&mut self, step: AuthStep, challenge: &str) {
        self.reply(&format!("334 {challenge}"));
        self.phase = Phase::AuthCont(step);
    }

    /// A client response (continuation line or initial response).
    pub(super) fn auth_continue(&mut self, step: AuthStep, line: &[u8]) {
        if line == b"*" {
            self.logf("event=auth result=cancelled");
            return self.fail(reply::AUTH_CANCELLED);
        }
        // "=" is an empty initial response (RFC 4954)
        let decoded = if line == b"=" {
            Some(Vec::new())
        } else {
            b64::decode(line)
        };
        let Some(data) = decoded else {
            self.logf("event=auth result=bad_base64");
            return self.fail(reply::AUTH_BAD_BASE64);
        };
        match step {
            AuthStep::PlainResponse => self.auth_plain(&data),
            AuthStep::LoginUser => {
                if data.is_empty() {
                    return self.fail(reply::AUTH_EMPTY_USER);
                }
                self.auth_prompt(AuthStep::LoginPass(data), "UGFzc3dvcmQ6")
            }
            AuthStep::LoginPass(user) => self.check_password(user, data, Vec::new()),
            AuthStep::CramResponse(challenge) => {
                // "user hexdigest"
                let Some(sp) = data.iter().rposition(|&b| b == b' ') else {
                    return self.fail(reply::AUTH_BAD_CRAM);
                };
                let (user, digest) = (&data[..sp], &data[sp + 1..]);
                if user.is_empty()
                    || digest.len() != 32
                    || !digest.iter().all(u8::is_ascii_hexdigit)
                {
                    return self.fail(reply::AUTH_BAD_CRAM);
                }
                self.check_password(user.to_vec(), digest.to_ascii_lowercase(), challenge)
            }
        }
    }

    /// `authzid\0authcid\0password`: authzid must be empty or the authcid.
    fn auth_plain(&mut self, data: &[u8]) {
        let mut parts = data.splitn(3, |&b| b == 0);
        let (Some(authz), Some(user), Some(pass)) = (parts.next(), parts.next(), parts.next())
        else {
            return self.fail(reply::AUTH_BAD_PLAIN);
        };
        if user.is_empty() || pass.contains(&0) {
            return self.fail(reply::AUTH_BAD_PLAIN);
        }
        if !authz.is_empty() && authz != user {
            self.logf(&format!(
                "event=auth result=failed reason=authzid_differs user={}",
                printable_bytes(user)
            ));
            return self.auth_failed();
        }
        self.check_password(user.to_vec(), pass.to_vec(), Vec::new());
    }

    fn check_password(&mut self, user: Vec<u8>, secret: Vec<u8>, extra: Vec<u8>) {
        if user.contains(&0) || user.len() > 255 || secret.len() > 255 {
            return self.fail(reply::AUTH_BAD_CREDENTIALS);
        }
        self.actions.push_back(Action::CheckPassword {
            user: user.clone(),
            secret,
            extra,
        });
        self.phase = Phase::AwaitAuth(user);
    }
}
