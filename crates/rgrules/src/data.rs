//! A rule's data: `D\0` for deny, `+NAME=VALUE\0` per variable, read the way
//! ucspi-tcp's tcpserver reads it (entries of other kinds are skipped, an
//! entry without `=` sets nothing, bytes after the last NUL are ignored).

/// What a rule says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub deny: bool,
    /// (NAME, VALUE) in rule order; NAME ends at the first `=`.
    pub vars: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Rule {
    /// The value of variable `name` (the last one set wins, as in the env).
    pub fn var(&self, name: &[u8]) -> Option<&[u8]> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The NUL-terminated entries of rule data, without their NUL.
pub fn entries(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = data.iter().rposition(|&b| b == 0).map_or(0, |p| p + 1);
    data[..complete]
        .split(|&b| b == 0)
        .take(data[..complete].iter().filter(|&&b| b == 0).count())
}

/// Decode rule data.
pub fn decode(data: &[u8]) -> Rule {
    let mut rule = Rule::default();
    for e in entries(data) {
        match e.split_first() {
            Some((b'D', _)) => rule.deny = true,
            Some((b'+', nv)) => {
                if let Some(eq) = nv.iter().position(|&b| b == b'=') {
                    rule.vars.push((nv[..eq].to_vec(), nv[eq + 1..].to_vec()));
                }
            }
            _ => {}
        }
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_tcpserver() {
        let r = decode(b"D\0+A=1\0+B\0xjunk\0+C=x=y\0+D=tail");
        assert!(r.deny);
        assert_eq!(
            r.vars,
            vec![
                (b"A".to_vec(), b"1".to_vec()),
                (b"C".to_vec(), b"x=y".to_vec())
            ]
        );
        assert_eq!(r.var(b"C"), Some(&b"x=y"[..]));
        assert_eq!(decode(b""), Rule::default());
        assert_eq!(entries(b"a\0\0b").count(), 2);
    }
}
