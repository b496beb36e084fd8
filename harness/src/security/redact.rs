//! [`Redactor`]: removes the credentials the harness was given (API keys, bearer tokens, passwords) from any
//! text before it is written to a report, a note or a raw data file.
//!
//! A credential is removed in the forms it travels in: as given, percent-encoded (in URLs), JSON-escaped,
//! and, for user/password pairs, as the base64 of `user:password` (HTTP Basic auth).

use base64::Engine as _;

/// What a redacted credential is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Removes known credentials from text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Forms to remove, longest first so that a credential containing another is removed whole.
    forms: Vec<String>,
}

/// Credentials shorter than this are not redacted: replacing 1-3 characters everywhere would destroy the text
/// without protecting anything (such a credential is guessable anyway).
pub const MIN_REDACT_LEN: usize = 4;

impl Redactor {
    /// A redactor for `credentials`.
    pub fn new<I, S>(credentials: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut r = Redactor::default();
        for c in credentials {
            r.add(c.as_ref());
        }
        r
    }

    /// Adds a credential (and its encoded forms).
    pub fn add(&mut self, credential: &str) {
        if credential.chars().count() < MIN_REDACT_LEN {
            return;
        }
        let json = serde_json::to_string(credential).unwrap_or_default();
        let json = json.trim_matches('"').to_string();
        for form in [credential.to_string(), percent_encode(credential), json] {
            if !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// Adds an HTTP Basic credential: the password and the base64 of `user:password`.
    pub fn add_basic(&mut self, user: &str, password: &str) {
        self.add(password);
        self.add(&base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    }

    /// `text` with every known credential replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for f in &self.forms {
            if out.contains(f.as_str()) {
                out = out.replace(f.as_str(), REDACTED);
            }
        }
        out
    }

    /// Whether no credential is known (redaction is then the identity).
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }
}

/// `text` with each of `credentials` (and its encoded forms) replaced by [`REDACTED`].
pub fn redact(text: &str, credentials: &[&str]) -> String {
    Redactor::new(credentials.iter().copied()).redact(text)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn removes_plain_encoded_and_basic_forms() {
        let mut r = Redactor::new(["p@ss w\"rd", "tok-123456"]);
        r.add_basic("admin", "hunter22");
        let text = "url=https://h/?k=p%40ss%20w%22rd json={\"pw\":\"p@ss w\\\"rd\"} Authorization: Basic \
                    YWRtaW46aHVudGVyMjI= bearer tok-123456 raw p@ss w\"rd";
        let out = r.redact(text);
        for secret in ["p%40ss", "p@ss", "YWRtaW46aHVudGVyMjI=", "tok-123456", "hunter22"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert_eq!(out.matches(REDACTED).count(), 5, "{out}");
    }

    #[test]
    fn short_credentials_are_ignored() {
        assert_eq!(redact("a b c", &["a", ""]), "a b c");
        assert!(Redactor::new(["abc"]).is_empty());
    }

    proptest! {
        #[test]
        fn redacted_text_never_holds_the_credential(
            before in "[ -~]{0,40}", after in "[ -~]{0,40}", cred in "[!-~]{4,30}",
        ) {
            let out = redact(&format!("{before}{cred}{after}"), &[&cred]);
            prop_assert!(!out.contains(&cred));
        }
    }
}
