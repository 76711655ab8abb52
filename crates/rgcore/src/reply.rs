//! A fixed SMTP reply: a three-digit code and the text after it (enhanced
//! status code first), kept apart so nobody splits or joins reply lines.
//! The relay policy's refusals (rgpolicy) and smtpd's fixed replies
//! (rgsmtp) are both of this type.

/// A reply known when the program is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// The three-digit SMTP code.
    pub code: u16,
    /// `5.7.1 sorry, ...`: what follows the code.
    pub text: &'static str,
}

impl std::fmt::Display for Fixed {
    /// `553 5.7.1 sorry, ...`: the reply line without its CRLF.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_line_is_code_space_text() {
        let r = super::Fixed {
            code: 553,
            text: "5.7.1 sorry",
        };
        assert_eq!(r.to_string(), "553 5.7.1 sorry");
    }
}
