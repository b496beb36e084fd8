//! The secret detectors behind [`super::Scanner`]: pattern detectors (cloud keys, tokens, JWTs, passwords in
//! URLs, emails, PEM private keys, credentials in `name=value` pairs) and an entropy detector for random-looking
//! strings, each returning [`Hit`]s (a [`Kind`] and the byte range of the secret in the scanned fragment).
//!
//! The entropy detector is tuned against what performance data is full of: metric and label names, UUIDs,
//! image digests, container ids and commit hashes, bucket bounds and other numbers, pod names. Measured on
//! uniformly random strings, the thresholds below sit at about the 1st percentile of their Shannon entropy,
//! so a random secret of 20+ characters is missed about 1 time in 100 by entropy alone. Two shape rules keep
//! CamelCase identifiers with digits out: random text switches between upper case, lower case and digits at
//! ~65% of positions (identifiers 20-40%), and its lower-case runs average ~1.7 letters (identifiers 3.5+).
//! Simulated on random mixed-case base64 strings, the rules together miss ~2% at 20 characters and <1% at 32+,
//! and flag ~0.1% of generated CamelCase identifiers.

use std::{collections::HashMap, ops::Range, sync::LazyLock};

use base64::Engine as _;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// What kind of secret a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A credential the harness itself was given (API key, token, password), found verbatim.
    KnownCredential,
    /// A PEM private key block.
    PrivateKey,
    /// An AWS access key id (`AKIA...`, `ASIA...`).
    AwsAccessKeyId,
    /// An AWS secret access key next to its name or its key id.
    AwsSecretKey,
    /// A GitHub token (`ghp_...`, `github_pat_...`).
    GithubToken,
    /// A Slack token (`xoxb-...`).
    SlackToken,
    /// A JSON Web Token (three base64url parts whose header is JSON with `alg`).
    Jwt,
    /// A password in a URL (`scheme://user:pass@host`).
    UrlPassword,
    /// An `Authorization: Bearer/Basic` credential.
    AuthHeader,
    /// A value of a credential-named field (`password=`, `api_key=`, `token=`, `secret=` ...).
    CredentialPair,
    /// An email address (personal data).
    Email,
    /// A long random-looking string (Shannon entropy over the base64 or hex alphabet).
    HighEntropy,
}

impl Kind {
    /// Lower-case name as in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::KnownCredential => "known_credential",
            Kind::PrivateKey => "private_key",
            Kind::AwsAccessKeyId => "aws_access_key_id",
            Kind::AwsSecretKey => "aws_secret_key",
            Kind::GithubToken => "github_token",
            Kind::SlackToken => "slack_token",
            Kind::Jwt => "jwt",
            Kind::UrlPassword => "url_password",
            Kind::AuthHeader => "auth_header",
            Kind::CredentialPair => "credential_pair",
            Kind::Email => "email",
            Kind::HighEntropy => "high_entropy",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One detected secret: its kind and where it is in the scanned fragment (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Kind of secret.
    pub kind: Kind,
    /// Byte range of the secret in the fragment.
    pub span: Range<usize>,
}

static PEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----").expect("valid regex"));
static AWS_KEY_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b").expect("valid regex"));
static GITHUB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b").expect("valid regex")
});
static SLACK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(xox[a-z]-[A-Za-z0-9-]{10,})").expect("valid regex"));
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9_-]{10,}={0,2}\.[A-Za-z0-9_-]{4,}={0,2}\.[A-Za-z0-9_-]*={0,2}").expect("valid regex")
});
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:([^\s/?#@]+)@[^\s/?#@]").expect("valid regex")
});
static AUTH_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{8,}=*)").expect("valid regex"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
        .expect("valid regex")
});
/// `name = value` / `"name": "value"` / `name: value`, for the credential-pair rules.
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z0-9_.-]+)["']?[ \t]*[:=][ \t]*["']?([^\s"'&,;<>()\[\]{}]+)"#).expect("valid regex")
});
static NESTED_PAIR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9_.-]*(?:=|:$)").expect("valid regex"));
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$").expect("valid regex")
});

/// Runs every detector over `text`. `field` is the name the text is the value of (a label name, an
/// environment variable, a JSON key), when there is one: it drives the credential-pair rules and the
/// hash exclusions. `entropy: false` leaves out the entropy detector. Overlapping hits are resolved in favour
/// of the more specific kind.
pub fn detect(text: &str, field: Option<&str>, known: &[String], entropy: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in known {
        hits.extend(
            text.match_indices(k.as_str()).map(|(i, m)| Hit { kind: Kind::KnownCredential, span: i..i + m.len() }),
        );
    }
    pem(text, &mut hits);
    captures(&AWS_KEY_ID, text, Kind::AwsAccessKeyId, &mut hits);
    aws_secret_near_key_id(text, &mut hits);
    captures(&GITHUB, text, Kind::GithubToken, &mut hits);
    captures(&SLACK, text, Kind::SlackToken, &mut hits);
    jwt(text, &mut hits);
    for c in URL_PASSWORD.captures_iter(text) {
        let m = c.get(1).expect("group 1");
        if !is_placeholder(m.as_str()) {
            hits.push(Hit { kind: Kind::UrlPassword, span: m.range() });
        }
    }
    captures(&AUTH_HEADER, text, Kind::AuthHeader, &mut hits);
    pairs(text, field, &mut hits);
    hits.extend(EMAIL.find_iter(text).map(|m| Hit { kind: Kind::Email, span: m.range() }));
    if entropy {
        entropy_tokens(text, field, &mut hits);
    }
    resolve_overlaps(hits)
}

/// Applies the credential-pair rules to one named value (a label, an environment variable).
pub fn pair_hit(name: &str, value: &str) -> Option<Kind> {
    let tier = credential_tier(name)?;
    let v = value.trim();
    if is_placeholder(v) || (tier == Tier::Token && v.chars().any(char::is_whitespace)) {
        return None;
    }
    let aws_secret = {
        let n = name.to_ascii_lowercase().replace(['-', '.'], "_");
        (n.contains("aws") && n.contains("secret")) || n.ends_with("secret_access_key")
    };
    if aws_secret && v.len() == 40 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+') {
        return Some(Kind::AwsSecretKey);
    }
    let ok = match tier {
        Tier::Password => v.chars().count() >= 4,
        Tier::Token => looks_generated(v),
    };
    ok.then_some(Kind::CredentialPair)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// Passwords can be words: any non-placeholder value counts.
    Password,
    /// Keys, tokens and secrets are generated: only random-looking values count (`key="cold_start"` does not).
    Token,
}

fn credential_tier(name: &str) -> Option<Tier> {
    let words = split_words(name);
    let last = words.last()?.as_str();
    let whole: String = words.concat();
    const PASSWORD_SUFFIX: &[&str] = &["password", "passwd", "passphrase"];
    const PASSWORD_EXACT: &[&str] = &["pwd", "pass", "pw"];
    const TOKEN_SUFFIX: &[&str] = &["token", "secret", "apikey", "credential", "credentials"];
    const TOKEN_EXACT: &[&str] = &["key", "auth", "authorization", "signature", "sig", "cookie", "session"];
    if PASSWORD_SUFFIX.iter().any(|s| last.ends_with(s)) || PASSWORD_EXACT.contains(&last) {
        return Some(Tier::Password);
    }
    if TOKEN_SUFFIX.iter().any(|s| last.ends_with(s) || whole.ends_with(s)) || TOKEN_EXACT.contains(&last) {
        return Some(Tier::Token);
    }
    None
}

/// Lower-case words of an identifier: `DB_PASSWORD` -> [db, password], `apiKey` -> [api, key].
fn split_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Values that stand for a secret without being one: empty, masked, templated, references, booleans.
fn is_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    let first = v.chars().next();
    v.is_empty()
        || v.chars().all(|c| c == first.unwrap_or(' ') || c == '.')
        || matches!(first, Some('$' | '<' | '{' | '%' | '*' | '['))
        || lower.starts_with("arn:")
        || lower.contains("redacted")
        || [
            "null",
            "none",
            "nil",
            "true",
            "false",
            "yes",
            "no",
            "masked",
            "hidden",
            "unset",
            "empty",
            "undefined",
            "required",
            "optional",
            "string",
            "xxx",
        ]
        .contains(&lower.as_str())
}

/// A value that a machine generated rather than a person named: letters and digits interleaved.
fn looks_generated(v: &str) -> bool {
    let alnum: Vec<char> = v.chars().filter(char::is_ascii_alphanumeric).collect();
    let digits = alnum.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = alnum.len() - digits;
    v.chars().count() >= 8 && digits >= 2 && letters >= 2 && transition_ratio(&alnum) >= 0.25
}

/// Share of adjacent pairs that switch between upper case, lower case and digit.
fn transition_ratio(chars: &[char]) -> f64 {
    if chars.len() < 2 {
        return 0.0;
    }
    let class = |c: &char| {
        if c.is_ascii_digit() {
            0
        } else if c.is_ascii_uppercase() {
            1
        } else {
            2
        }
    };
    let switches = chars.windows(2).filter(|w| class(&w[0]) != class(&w[1])).count();
    switches as f64 / (chars.len() - 1) as f64
}

/// Mean length of the runs of lower-case letters: ~1.7 in random base64, 3.5+ in CamelCase identifiers.
fn mean_lowercase_run(chars: &[char]) -> f64 {
    let (mut runs, mut letters, mut in_run) = (0usize, 0usize, false);
    for c in chars {
        if c.is_ascii_lowercase() {
            letters += 1;
            runs += usize::from(!in_run);
            in_run = true;
        } else {
            in_run = false;
        }
    }
    if runs == 0 {
        0.0
    } else {
        letters as f64 / runs as f64
    }
}

fn captures(re: &Regex, text: &str, kind: Kind, hits: &mut Vec<Hit>) {
    for c in re.captures_iter(text) {
        let m = c.get(1).expect("group 1");
        hits.push(Hit { kind, span: m.range() });
    }
}

fn pem(text: &str, hits: &mut Vec<Hit>) {
    for c in PEM.captures_iter(text) {
        let begin = c.get(0).expect("match");
        let label = c.get(1).expect("group 1").as_str();
        let end_marker = format!("-----END {label}-----");
        let end = text[begin.end()..].find(&end_marker).map_or(text.len(), |i| begin.end() + i + end_marker.len());
        hits.push(Hit { kind: Kind::PrivateKey, span: begin.start()..end });
    }
}

/// A 40-character base64 string on the same line as an access key id is its secret key.
fn aws_secret_near_key_id(text: &str, hits: &mut Vec<Hit>) {
    for id in AWS_KEY_ID.find_iter(text) {
        let line_start = text[..id.start()].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[id.end()..].find('\n').map_or(text.len(), |i| id.end() + i);
        let mut tokens = Vec::new();
        tokenize(&text[line_start..line_end], |s: &str| s.len() == 40, &mut tokens);
        for (start, tok) in tokens {
            if tok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+') && mixed_case(tok) {
                hits.push(Hit { kind: Kind::AwsSecretKey, span: line_start + start..line_start + start + tok.len() });
            }
        }
    }
}

fn jwt(text: &str, hits: &mut Vec<Hit>) {
    for m in JWT.find_iter(text) {
        let header = m.as_str().split('.').next().unwrap_or("").trim_end_matches('=');
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else { continue };
        let is_jwt = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.contains_key("alg")))
            .unwrap_or(false);
        if is_jwt {
            hits.push(Hit { kind: Kind::Jwt, span: m.range() });
        }
    }
}

fn pairs(text: &str, field: Option<&str>, hits: &mut Vec<Hit>) {
    if let Some(name) = field {
        if let Some(kind) = pair_hit(name, text) {
            let lead = text.len() - text.trim_start().len();
            let span = lead..lead + text.trim().len();
            hits.push(Hit { kind, span });
            return;
        }
    }
    let mut pos = 0;
    while let Some(c) = PAIR.captures_at(text, pos) {
        let (name, value) = (c.get(1).expect("group 1"), c.get(2).expect("group 2"));
        // `password= token=abc`, `RequestId: api_key: abc`: the value is the next pair's name; resume there.
        if NESTED_PAIR.is_match(value.as_str()) {
            pos = value.start();
            continue;
        }
        if let Some(kind) = pair_hit(name.as_str(), value.as_str()) {
            hits.push(Hit { kind, span: value.range() });
        }
        pos = c.get(0).expect("match").end();
    }
}

/// Characters of a candidate token: the base64 (standard and URL-safe) alphabet.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')
}

/// Calls `keep` on each maximal run of token characters; paths (`/var/lib/...`) are split at `/`.
fn tokenize<'a>(text: &'a str, keep: impl Fn(&str) -> bool, out: &mut Vec<(usize, &'a str)>) {
    let mut start = None;
    let push = |s: usize, e: usize, out: &mut Vec<(usize, &'a str)>| {
        let tok = &text[s..e];
        if tok.starts_with('/') || tok.contains("./") {
            let mut off = s;
            for part in tok.split('/') {
                if keep(part) {
                    out.push((off, part));
                }
                off += part.len() + 1;
            }
        } else if keep(tok) {
            out.push((s, tok));
        }
    };
    for (i, c) in text.char_indices() {
        match (token_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                push(s, i, out);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        push(s, text.len(), out);
    }
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts.values().map(|&k| k as f64 / n).map(|p| -p * p.log2()).sum()
}

/// Entropy threshold for a base64 token of `len` characters: about the 1st percentile of the entropy of
/// uniformly random base64 strings of that length (measured: 20 -> 3.65, 24 -> 3.89, 32 -> 4.20,
/// 40 -> 4.48, 64 -> 4.92 bits/char).
fn base64_threshold(len: usize) -> f64 {
    const T: [(f64, f64); 5] = [(20.0, 3.6), (24.0, 3.8), (32.0, 4.1), (40.0, 4.35), (64.0, 4.75)];
    interpolate(&T, len as f64)
}

/// The same for hex tokens (measured 1st percentiles: 32 -> 3.25, 40 -> 3.40, 64 -> 3.63).
fn hex_threshold(len: usize) -> f64 {
    const T: [(f64, f64); 3] = [(32.0, 3.2), (40.0, 3.35), (64.0, 3.55)];
    interpolate(&T, len as f64)
}

fn interpolate(table: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (table[0], table[table.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    let i = table.iter().position(|&(k, _)| k >= x).unwrap_or(table.len() - 1);
    let ((x0, y0), (x1, y1)) = (table[i - 1], table[i]);
    y0 + (y1 - y0) * (x - x0) / (x1 - x0)
}

fn mixed_case(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase()) && s.bytes().any(|b| b.is_ascii_lowercase())
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
        && (s.bytes().all(|b| !b.is_ascii_uppercase()) || s.bytes().all(|b| !b.is_ascii_lowercase()))
}

/// Words just before a token (or in the name of the field holding it) that say it is a hash, a digest or an
/// id, which random-looking strings in performance data usually are.
const HASH_CONTEXT: &[&str] = &[
    "sha",
    "md5",
    "digest",
    "commit",
    "revision",
    "hash",
    "checksum",
    "etag",
    "trace",
    "span",
    "build",
    "docker",
    "containerd",
    "cri",
    "container",
    "image",
    "version",
    "request",
    "uuid",
    "id",
];

/// Whether the field's name, or for hex strings also the words just before, say the token is a hash or an id.
/// Preceding words count for hex only: mixed-case base64 is rarely a hash in performance data, and log lines
/// put words like `RequestId:` before anything.
fn hash_context(text: &str, start: usize, field: Option<&str>, hex: bool) -> bool {
    let is_hash_word =
        |w: &String| HASH_CONTEXT.iter().any(|h| w == h || (h.len() >= 3 && (w.starts_with(h) || w.ends_with(h))));
    let before_start = text[..start].char_indices().rev().nth(23).map_or(0, |(i, _)| i);
    field.is_some_and(|f| split_words(f).iter().any(is_hash_word))
        || (hex && split_words(&text[before_start..start]).iter().any(is_hash_word))
}

fn entropy_tokens(text: &str, field: Option<&str>, hits: &mut Vec<Hit>) {
    let mut tokens = Vec::new();
    tokenize(text, |t| t.len() >= 20, &mut tokens);
    for (start, tok) in tokens {
        let core = tok.trim_end_matches('=');
        if core.parse::<f64>().is_ok() || UUID.is_match(core) {
            continue;
        }
        let h = shannon_entropy(core);
        let hex = is_hex(core);
        let flagged = if hash_context(text, start, field, hex) {
            false
        } else if hex {
            core.len() >= 32 && h >= hex_threshold(core.len())
        } else {
            let alnum: Vec<char> = core.chars().filter(char::is_ascii_alphanumeric).collect();
            mixed_case(core)
                && alnum.iter().any(char::is_ascii_digit)
                && h >= base64_threshold(core.len())
                && transition_ratio(&alnum) >= 0.35
                && mean_lowercase_run(&alnum) <= 3.0
        };
        if flagged {
            hits.push(Hit { kind: Kind::HighEntropy, span: start..start + core.len() });
        }
    }
}

/// Keeps the most specific hit where hits overlap (the order of [`Kind`]), each range once.
fn resolve_overlaps(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by(|a, b| {
        a.kind.cmp(&b.kind).then(b.span.len().cmp(&a.span.len())).then(a.span.start.cmp(&b.span.start))
    });
    let mut kept: Vec<Hit> = Vec::new();
    for h in hits {
        if h.span.is_empty() {
            continue;
        }
        if kept.iter().all(|k| k.span.end <= h.span.start || h.span.end <= k.span.start) {
            kept.push(h);
        }
    }
    kept.sort_by_key(|h| h.span.start);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        detect(text, None, &[], true).into_iter().map(|h| h.kind).collect()
    }

    #[test]
    fn finds_each_kind_in_context() {
        let cases: &[(&str, Kind)] = &[
            ("key id AKIAQ3EGRTW5L7XYZ4PA in use", Kind::AwsAccessKeyId),
            ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Kind::AwsSecretKey),
            ("token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 here", Kind::GithubToken),
            ("slack xoxb-123456789012-abcdefABCDEF", Kind::SlackToken),
            ("Authorization: Bearer abc123.def456-ghi789", Kind::AuthHeader),
            ("db=postgres://app:s3cr3t-pw@db.internal:5432/app", Kind::UrlPassword),
            ("owner: jane.doe@example.com", Kind::Email),
            ("DB_PASSWORD=hunter22", Kind::CredentialPair),
            (r#"{"api_key": "k7Fq92LmZx04Rt"}"#, Kind::CredentialPair),
            ("blob Zm9vYmFyX2Jhel9xdXV4X3NlY3JldF8xMjM0NTY3OA9xQ2", Kind::HighEntropy),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", Kind::PrivateKey),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds(text), vec![*kind], "{text}");
        }
    }

    #[test]
    fn jwt_needs_a_json_header_with_alg() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(kinds(&format!("auth {jwt} ok")), vec![Kind::Jwt]);
        assert!(kinds("version 1234567890.12345.678 of foo.example.org").is_empty());
    }

    #[test]
    fn benign_performance_data_is_clean() {
        for text in [
            "lambda_cold_start_duration_seconds_bucket{function=\"fixture-rust\",le=\"0.005\"} 12",
            "image sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
            "request 123e4567-e89b-12d3-a456-426614174000 done",
            "AWSLambdaBasicExecutionRole2 MyFunctionName2024Version3Prod ThisIsAVeryLongCamelCaseIdentifier99",
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
            "pod fixture-rust-7d9f8b6c5d-x2x9q on /var/lib/docker/overlay2/l/ABCDEFGHIJKLMNOPQRSTUV",
            "key=cold_start secret=my-tls-secret password= token=${TOKEN} value 1.5e+06 +Inf NaN",
            "arn:aws:lambda:us-east-1:123456789012:function:fixture-rust",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn field_names_classify_values() {
        assert_eq!(pair_hit("DB_PASSWORD", "hunter22"), Some(Kind::CredentialPair));
        assert_eq!(pair_hit("apiKey", "k7Fq92LmZx04Rt"), Some(Kind::CredentialPair));
        assert_eq!(pair_hit("cache_key", "layer-2024"), None);
        assert_eq!(pair_hit("PASSWORD_FILE", "/run/secrets/pw"), None);
        assert_eq!(pair_hit("DB_PASSWORD", "${DB_PASSWORD}"), None);
        assert_eq!(pair_hit("bypass", "hunter22"), None);
        assert_eq!(
            pair_hit("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            Some(Kind::AwsSecretKey)
        );
    }

    #[test]
    fn known_credentials_win_over_patterns() {
        let known = vec!["perf-key-123456".to_string()];
        let hits = detect("x-api-key: perf-key-123456", None, &known, true);
        assert_eq!(hits, vec![Hit { kind: Kind::KnownCredential, span: 11..26 }]);
    }

    #[test]
    fn entropy_thresholds_follow_the_tables() {
        assert!((base64_threshold(28) - 3.95).abs() < 1e-9);
        assert_eq!(hex_threshold(100), 3.55);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-12);
    }
}
