//! The `security` procedure's aws subject against `moto_server`: the IAM-signed CloudWatch API is asked
//! unsigned, with made-up credentials and with the harness's own, and judged on what it answered. With IAM
//! enforced (moto's `INITIAL_NO_AUTH_ACTION_COUNT`) made-up credentials are refused; moto answers an unsigned
//! request with a 500 and, since the test's CBOR-to-JSON translation in `moto_boot.py` changes the signed
//! body, the harness's own request with SignatureDoesNotMatch: both are reported as problems, as observed.
//! With the emulator's default (no enforcement) the openness is reported as two problems, never passed.

use harness::{
    platform::aws::StageThrottling,
    security::{aws::AwsSubject, SecuritySubject},
};

use super::support::{self, Moto};

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    xml[start..].split("</").next().unwrap().to_string()
}

fn no_throttling() -> StageThrottling {
    StageThrottling {
        stage: "perf".into(),
        methods: Default::default(),
        usage_plan: None,
        usage_plan_covers_stage: false,
    }
}

async fn subject(moto: &Moto, dir: &std::path::Path, creds: Option<(String, String)>) -> AwsSubject {
    let mut opts = support::options(dir);
    if let Some((id, secret)) = creds {
        opts.credentials = Some(aws_sdk_lambda::config::Credentials::new(id, secret, None, None, "test-iam-user"));
    }
    let t = support::target(support::settings(&moto.url), opts).await;
    AwsSubject::new(t, "localstack", "unused-api-key".into(), no_throttling(), dir).unwrap()
}

#[tokio::test]
async fn cloudwatch_refuses_made_up_credentials_when_iam_is_enforced_and_the_rest_is_judged_as_observed() {
    // Three unauthenticated actions create the user the harness then signs as; every later call is checked.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    moto.query("iam", "Action=CreateUser&UserName=harness&Version=2010-05-08");
    let key = moto.query("iam", "Action=CreateAccessKey&UserName=harness&Version=2010-05-08");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudwatch:*","Resource":"*"}]}"#;
    moto.query(
        "iam",
        &format!(
            "Action=PutUserPolicy&UserName=harness&PolicyName=cw&PolicyDocument={}&Version=2010-05-08",
            form_encode(policy)
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let creds = (xml_field(&key, "AccessKeyId"), xml_field(&key, "SecretAccessKey"));
    let s = subject(&moto, dir.path(), Some(creds)).await;
    let r = s.signed_endpoints().await.unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    let cw = &r[0];
    eprintln!("{cw:?}");
    assert_eq!(cw.wrong, 403, "made-up credentials refused: {cw:?}");
    assert!(!cw.problems.iter().any(|p| p.contains("made-up")), "{cw:?}");
    // Whatever else the emulator answered is a problem exactly when it is not a refusal / not a 2xx.
    let unsigned_ok = [401, 403].contains(&cw.none);
    let right_ok = (200..300).contains(&cw.right);
    assert_eq!(cw.problems.len(), usize::from(!unsigned_ok) + usize::from(!right_ok), "{cw:?}");
    if !right_ok {
        assert!(
            cw.problems
                .iter()
                .any(|p| p.contains(&format!("answered {}", cw.right)) && p.contains("own signed request")),
            "{cw:?}"
        );
    }
}

#[tokio::test]
async fn an_emulator_that_accepts_anything_is_reported_not_passed() {
    let moto = Moto::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let s = subject(&moto, dir.path(), None).await;
    let r = s.signed_endpoints().await.unwrap();
    let cw = &r[0];
    assert_eq!((cw.none, cw.wrong, cw.right), (200, 200, 200), "{cw:?}");
    assert_eq!(cw.problems.len(), 2, "{cw:?}");
    assert!(cw.problems[0].contains("unsigned") && cw.problems[1].contains("made-up"), "{cw:?}");
    // moto_boot.py routes the unsigned request by its Host, so it was CloudWatch that served it.
    assert!(!cw.problems[0].contains("another service"), "{cw:?}");
    assert!(s.notes().iter().any(|n| n.contains("INITIAL_NO_AUTH_ACTION_COUNT")), "{:?}", s.notes());
    let tls = s.tls_unavailable().unwrap();
    assert!(tls.contains("no HTTPS route"), "{tls}");
}
