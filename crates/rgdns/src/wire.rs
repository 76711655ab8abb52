//! Questions and answers on the wire, through hickory-proto: build a query
//! with a random id, and judge a reply: is it the answer to our question,
//! and what did the server say. No I/O here.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};

/// One question with the id that its answer must carry.
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    pub id: u16,
    pub bytes: Vec<u8>,
}

/// What a server said to our question.
#[derive(Debug)]
pub enum Reply {
    /// NOERROR: the answer section (empty for NODATA).
    Answer(Vec<Record>),
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// TC set: ask again over TCP.
    Truncated,
    /// SERVFAIL, REFUSED, ...: this server cannot answer now.
    Failed(String),
}

/// Does `name` hold only the bytes a host or DNSBL name may hold? hickory
/// would accept more (escapes, any byte in a label), which we never need
/// and which a caller fed from the network should not smuggle in.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// The wire name for `text`, always absolute (a stub resolver never
/// appends search domains: mail names are fully qualified).
pub fn name(text: &str) -> Option<Name> {
    if !valid_name(text) || text.starts_with('.') || text.contains("..") {
        return None;
    }
    let mut name = Name::from_ascii(text).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// A recursive query for `name`/`qtype` with a fresh random id (the id and
/// the kernel's random source port are the defence against forged answers).
pub fn question(name: &Name, qtype: RecordType) -> Result<Question, String> {
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), qtype));
    let bytes = msg
        .to_vec()
        .map_err(|e| format!("unable to encode query: {e}"))?;
    Ok(Question {
        name: name.clone(),
        qtype,
        id,
        bytes,
    })
}

/// Judge a datagram or TCP message: `None` when it is not an answer to `q`
/// (another id or question: ignored, as a forgery or a late answer would
/// be), else what the server said; a reply with our id that does not
/// decode is `Failed`.
pub fn judge(q: &Question, bytes: &[u8]) -> Option<Reply> {
    if bytes.len() < 2 || u16::from_be_bytes([bytes[0], bytes[1]]) != q.id {
        return None;
    }
    let msg = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => return Some(Reply::Failed("malformed answer".into())),
    };
    if msg.metadata.message_type != MessageType::Response || !asks(&msg, q) {
        return None;
    }
    if msg.metadata.truncation {
        return Some(Reply::Truncated);
    }
    Some(match msg.metadata.response_code {
        ResponseCode::NoError => Reply::Answer(msg.answers),
        ResponseCode::NXDomain => Reply::NoSuchName,
        code => Reply::Failed(format!("server said {code}")),
    })
}

/// Does the reply repeat our question (RFC 5452: check it, not only the id)?
fn asks(msg: &Message, q: &Question) -> bool {
    match msg.queries.as_slice() {
        [only] => only.query_type() == q.qtype && *only.name() == q.name,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::RData;

    fn reply_to(q: &Question, code: ResponseCode, answers: Vec<Record>) -> Vec<u8> {
        let mut m = Message::response(q.id, OpCode::Query);
        m.metadata.response_code = code;
        m.add_query(Query::query(q.name.clone(), q.qtype));
        m.answers = answers;
        m.to_vec().unwrap()
    }

    #[test]
    fn names() {
        assert!(name("Mx1.Example.test").is_some());
        assert!(name("2.0.0.127.bl.test.").is_some());
        assert!(name("_dmarc.example.test").is_some());
        for bad in [
            "", ".", "a..b", ".a", "a b", "a\\046b", "ä.test", "a/b", "a\0b",
        ] {
            assert!(name(bad).is_none(), "{bad:?} accepted");
        }
        let long = "a".repeat(64) + ".test";
        assert!(name(&long).is_none(), "64-byte label accepted");
    }

    #[test]
    fn judges_answers() {
        let n = name("host.test").unwrap();
        let q = question(&n, RecordType::A).unwrap();
        let rec = Record::from_rdata(n.clone(), 60, RData::A(A::new(192, 0, 2, 1)));
        match judge(&q, &reply_to(&q, ResponseCode::NoError, vec![rec])) {
            Some(Reply::Answer(v)) => assert_eq!(v.len(), 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge(&q, &reply_to(&q, ResponseCode::NXDomain, vec![])),
            Some(Reply::NoSuchName)
        ));
        assert!(matches!(
            judge(&q, &reply_to(&q, ResponseCode::ServFail, vec![])),
            Some(Reply::Failed(_))
        ));
    }

    #[test]
    fn ignores_what_is_not_our_answer() {
        let n = name("host.test").unwrap();
        let q = question(&n, RecordType::A).unwrap();
        // our own query echoed back is not a response
        assert!(judge(&q, &q.bytes).is_none());
        let other = question(&name("other.test").unwrap(), RecordType::A).unwrap();
        let mut forged = reply_to(&other, ResponseCode::NoError, vec![]);
        forged[..2].copy_from_slice(&q.id.to_be_bytes());
        assert!(judge(&q, &forged).is_none(), "other question accepted");
        let mut wrong_id = reply_to(&q, ResponseCode::NoError, vec![]);
        wrong_id[..2].copy_from_slice(&q.id.wrapping_add(1).to_be_bytes());
        assert!(judge(&q, &wrong_id).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let q = question(&name("host.test").unwrap(), RecordType::MX).unwrap();
        let good = reply_to(&q, ResponseCode::NoError, vec![]);
        for len in 0..good.len() {
            let _ = judge(&q, &good[..len]);
        }
        let mut junk = q.id.to_be_bytes().to_vec();
        junk.extend_from_slice(&[0xff; 40]);
        assert!(matches!(judge(&q, &junk), Some(Reply::Failed(_))));
    }
}
