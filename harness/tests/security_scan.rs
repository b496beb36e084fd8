//! Property tests of the secret scanner: planted secrets in random surrounding text are found, random benign
//! Prometheus expositions produce no findings, and no finding ever holds the secret it reports. The last test
//! is the stable-Rust counterpart of `fuzz/fuzz_targets/scan.rs`: arbitrary input through every entry point.

use base64::Engine as _;
use harness::security::{Finding, Kind, Scanner};
use proptest::{prelude::*, sample::select};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Ordinary words of performance data, none of them a credential name.
const WORDS: &[&str] = &[
    "lambda",
    "cold",
    "start",
    "duration",
    "seconds",
    "bucket",
    "fixture-rust",
    "invoke",
    "p95",
    "warm",
    "memory",
    "MiB",
    "ok",
    "ERROR",
    "REPORT",
    "RequestId:",
    "Billed",
    "Duration:",
    "12.5",
    "ms",
    "Init",
    "the",
    "of",
    "function",
    "scaled",
    "to",
    "3",
    "environments",
    "/var/task/bootstrap",
    "GET",
    "/2015-03-31/functions",
    "200",
];

fn filler() -> impl Strategy<Value = String> {
    let sep = select(vec![" ", "\n", ", ", "; ", " | ", "\t", " (", ") "]);
    proptest::collection::vec((select(WORDS), sep), 0..25)
        .prop_map(|v| v.into_iter().map(|(w, s)| format!("{w}{s}")).collect())
}

/// A generated random-looking token: distinct characters, classes interleaved (the shape of real keys);
/// at most 62 characters.
fn random_token(len: usize) -> impl Strategy<Value = String> {
    let pools = (
        Just(('A'..='Z').collect::<Vec<char>>()).prop_shuffle(),
        Just(('a'..='z').collect::<Vec<char>>()).prop_shuffle(),
        Just(('0'..='9').collect::<Vec<char>>()).prop_shuffle(),
    );
    pools.prop_map(move |(u, l, d)| {
        let mut out = String::new();
        let (mut iu, mut il, mut id) = (u.into_iter(), l.into_iter(), d.into_iter());
        for _ in 0..26 {
            for it in [&mut iu, &mut il, &mut id] {
                if let Some(c) = it.next() {
                    out.push(c);
                }
            }
        }
        out.truncate(len);
        out
    })
}

fn upper_alnum(n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(select(('A'..='Z').chain('0'..='9').collect::<Vec<char>>()), n)
        .prop_map(|v| v.into_iter().collect())
}

/// A secret of some kind, the text to plant, and the secret part of it.
fn planted() -> impl Strategy<Value = (Kind, String, String)> {
    let pw = "[a-zA-Z0-9!^_+~-]{8,20}";
    prop_oneof![
        upper_alnum(16).prop_map(|s| {
            let k = format!("AKIA{s}");
            (Kind::AwsAccessKeyId, k.clone(), k)
        }),
        random_token(36).prop_map(|s| {
            let k = format!("ghp_{s}");
            (Kind::GithubToken, k.clone(), k)
        }),
        (random_token(12), random_token(24)).prop_map(|(a, b)| {
            let k = format!("xoxb-{a}-{b}");
            (Kind::SlackToken, k.clone(), k)
        }),
        (random_token(10), random_token(43)).prop_map(|(sub, sig)| {
            let h = B64URL.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
            let p = B64URL.encode(format!(r#"{{"sub":"{sub}"}}"#));
            let k = format!("{h}.{p}.{sig}");
            (Kind::Jwt, k.clone(), k)
        }),
        ("[a-z]{3,8}", pw).prop_map(|(u, p)| (Kind::UrlPassword, format!("https://{u}:{p}@db.internal:5432/app"), p)),
        ("[a-z]{2,8}\\.[a-z]{2,8}", "[a-z]{3,10}").prop_map(|(l, d)| {
            let e = format!("{l}@{d}.example.com");
            (Kind::Email, e.clone(), e)
        }),
        random_token(60).prop_map(|b| {
            let k = format!("-----BEGIN EC PRIVATE KEY-----\n{b}\n-----END EC PRIVATE KEY-----");
            (Kind::PrivateKey, k.clone(), k)
        }),
        (select(vec!["password", "DB_PASSWORD", "passwd"]), pw).prop_map(|(n, p)| (
            Kind::CredentialPair,
            format!("{n}={p}"),
            p
        )),
        (select(vec!["api_key", "token", "client_secret", "X-Api-Key"]), random_token(24)).prop_map(|(n, p)| (
            Kind::CredentialPair,
            format!("{n}: {p}"),
            p
        )),
        random_token(40).prop_map(|k| (Kind::HighEntropy, k.clone(), k)),
    ]
}

fn never_echoes(findings: &[Finding], secret: &str) -> Result<(), TestCaseError> {
    for f in findings {
        let shown = format!("{f} {}", serde_json::to_string(f).unwrap());
        prop_assert!(!shown.contains(secret), "finding echoes the secret: {}", shown);
    }
    Ok(())
}

/// A benign label value: numbers, ids, digests, names, paths, URLs without credentials.
fn benign_value() -> impl Strategy<Value = (Option<&'static str>, String)> {
    prop_oneof![
        any::<u32>().prop_map(|n| (None, n.to_string())),
        (0.0f64..1e9).prop_map(|x| (None, format!("{x}"))),
        select(vec!["+Inf", "-Inf", "NaN", "1e+06", "0.005", "2.5e-05"]).prop_map(|s| (None, s.to_string())),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(|s| (None, s)),
        "[0-9a-f]{64}".prop_map(|h| (None, format!("registry.local/fn@sha256:{h}"))),
        "[0-9a-f]{40}".prop_map(|h| (Some("revision"), h)),
        "[0-9a-f]{64}".prop_map(|h| (Some("container_id"), format!("docker://{h}"))),
        "[a-z]{3,10}-[0-9a-f]{10}-[a-z0-9]{5}".prop_map(|s| (Some("pod"), s)),
        "[a-z]{2,12}(_[a-z]{2,12}){0,4}".prop_map(|s| (None, s)),
        "(/[a-z0-9._-]{1,12}){1,6}".prop_map(|s| (Some("path"), s)),
        ("[a-z]{3,10}", 1024u16..65535).prop_map(|(h, p)| (Some("instance"), format!("http://{h}.svc:{p}/metrics"))),
        ("[0-9]{1,2}", "[0-9]{1,2}", "[0-9]{1,3}").prop_map(|(a, b, c)| (Some("version"), format!("v{a}.{b}.{c}"))),
        "[0-9]{12}".prop_map(|a| (None, format!("arn:aws:lambda:us-east-1:{a}:function:fixture-rust"))),
    ]
}

/// Names that are never credential names (the scanner judges values by their label's name).
fn benign_name() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,20}".prop_filter("credential-like name", |n| {
        !["key", "token", "secret", "pass", "pw", "auth", "sig", "cookie", "session", "credential"]
            .iter()
            .any(|w| n.contains(w))
    })
}

fn exposition() -> impl Strategy<Value = String> {
    let sample = (benign_name(), proptest::collection::vec((benign_name(), benign_value()), 0..6), 0.0f64..1e6);
    proptest::collection::vec(sample, 1..30).prop_map(|samples| {
        let mut out = String::new();
        for (metric, labels, v) in samples {
            out.push_str(&format!("# HELP {metric} Performance of the {metric} path.\n# TYPE {metric} gauge\n"));
            let labels: Vec<String> = labels
                .into_iter()
                .map(|(name, (forced, value))| format!("{}=\"{value}\"", forced.map_or(name, str::to_string)))
                .collect();
            out.push_str(&format!("{metric}{{{}}} {v}\n", labels.join(",")));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn planted_secrets_are_found_and_never_echoed(before in filler(), (kind, plant, secret) in planted(), after in filler()) {
        let text = format!("{before} {plant} {after}");
        let at = before.len() + 1;
        let findings = Scanner::new().text("log", &text);
        let hit = findings.iter().find(|f| f.span.start < at + plant.len() && f.span.end > at);
        prop_assert!(hit.is_some(), "no finding for {:?} in {:?}: {:?}", kind, text, findings);
        prop_assert_eq!(hit.unwrap().kind, kind);
        never_echoes(&findings, &secret)?;
    }

    #[test]
    fn planted_in_a_label_or_env_var_is_found_and_never_echoed(expo in exposition(), (kind, plant, secret) in planted()) {
        let escaped = plant.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let text = format!("{expo}leaky_metric{{function=\"fixture-rust\",detail=\"{escaped}\"}} 1\n");
        let findings = Scanner::new().exposition("metrics", &text);
        prop_assert!(findings.iter().any(|f| f.kind == kind && f.location.field.as_deref() == Some("leaky_metric{detail}")),
            "{:?} not found: {:?}", kind, findings);
        never_echoes(&findings, &secret)?;
        let cfg = serde_json::json!({"Environment": {"Variables": {"LOG_LEVEL": "info", "DETAIL": plant}}}).to_string();
        let findings = Scanner::new().config("function config", &cfg).unwrap();
        prop_assert!(findings.iter().any(|f| f.kind == kind), "{:?} not found in env: {:?}", kind, findings);
        never_echoes(&findings, &secret)?;
    }

    #[test]
    fn benign_expositions_have_no_findings(expo in exposition()) {
        let findings = Scanner::new().exposition("metrics", &expo);
        prop_assert!(findings.is_empty(), "{:?}\n{}", findings, expo);
    }
}

/// Stable-Rust fuzzing: arbitrary strings (and strings made of the characters secrets are made of) through
/// every entry point, checking the invariants the fuzz target checks.
mod fuzz_style {
    use super::*;

    fn check(input: &str) -> Result<(), TestCaseError> {
        let scanner = Scanner::new().with_credentials(["perf-key-0001"]);
        let findings = scanner.text("fuzz", input);
        for f in &findings {
            prop_assert!(f.span.start < f.span.end && f.span.end <= input.len(), "span {:?} outside input", f.span);
            prop_assert!(input.is_char_boundary(f.span.start) && input.is_char_boundary(f.span.end));
            let secret = &input[f.span.clone()];
            let line = input[..f.span.start].matches('\n').count() + 1;
            prop_assert_eq!(f.location.line, Some(line));
            if secret.chars().count() >= 8 && !"fuzz".contains(secret) {
                prop_assert!(!f.to_string().contains(secret), "{} echoes {:?}", f, secret);
            }
        }
        for f in scanner.exposition("fuzz", input) {
            prop_assert!(f.span.end <= input.len());
        }
        let _ = scanner.config("fuzz", input);
        let _ = scanner.series("fuzz", input);
        let _ = scanner.log_tail("fuzz", input);
        let _ = scanner.log_tail("fuzz", &base64::engine::general_purpose::STANDARD.encode(input));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_unicode(input in "\\PC{0,400}") {
            check(&input)?;
        }

        #[test]
        fn secret_alphabet_soup(input in "[A-Za-z0-9+/=_.:@ \"'{}=,\\n\\\\-]{0,600}") {
            check(&input)?;
        }

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check(&String::from_utf8_lossy(&bytes))?;
        }
    }
}
