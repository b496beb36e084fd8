//! Fuzz target for the secret scanner: any input, through every entry point, must not panic; findings of
//! free text lie inside the input on character boundaries, carry the right line, and never show the secret.

#![no_main]

use harness::security::Scanner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let scanner = Scanner::new().with_credentials(["perf-key-0001"]);
    for f in scanner.text("fuzz", &text) {
        assert!(f.span.start < f.span.end && f.span.end <= text.len(), "span {:?} outside the input", f.span);
        assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
        assert_eq!(f.location.line, Some(text[..f.span.start].matches('\n').count() + 1));
        let secret = &text[f.span.clone()];
        if secret.chars().count() >= 8 && !"fuzz".contains(secret) {
            assert!(!f.to_string().contains(secret), "finding {f} shows the secret");
        }
    }
    for f in scanner.exposition("fuzz", &text) {
        assert!(!f.fingerprint.is_empty());
    }
    let _ = scanner.config("fuzz", &text);
    let _ = scanner.series("fuzz", &text);
    let _ = scanner.log_tail("fuzz", &text);
});
