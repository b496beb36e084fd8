//! The output contract between the Terraform module (`terraform/outputs.tf`) and the harness: [`OUTPUTS`]
//! lists every output the harness reads, with its type; [`AwsSettings`] is what the aws and localstack
//! targets make of them. Every read goes through [`OUTPUTS`] (reading an undeclared name is a harness bug
//! and panics in tests), so the module's contract test checks exactly what the harness needs.

use std::{collections::BTreeMap, fmt};

use super::outputs::{Error, Outputs};

/// The module that declares the outputs, named in every error about one.
pub const MODULE: &str = "terraform/outputs.tf";

/// The type of an output, as the harness reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    /// `string`.
    String,
    /// `map(string)` (an object whose values are all strings is accepted too).
    MapOfString,
}

impl OutputType {
    /// HCL notation.
    pub fn hcl(self) -> &'static str {
        match self {
            OutputType::String => "string",
            OutputType::MapOfString => "map(string)",
        }
    }
}

/// One output the harness reads.
#[derive(Debug, Clone, Copy)]
pub struct OutputSpec {
    /// Output name.
    pub name: &'static str,
    /// Its type.
    pub ty: OutputType,
    /// Whether a deployment must have it (optional ones may be absent or null).
    pub required: bool,
    /// Whether the module must mark it `sensitive = true`.
    pub sensitive: bool,
    /// What it is.
    pub about: &'static str,
}

macro_rules! out {
    ($n:literal, $t:ident, req, $a:literal) => {
        OutputSpec { name: $n, ty: OutputType::$t, required: true, sensitive: false, about: $a }
    };
    ($n:literal, $t:ident, opt, $a:literal) => {
        OutputSpec { name: $n, ty: OutputType::$t, required: false, sensitive: false, about: $a }
    };
    ($n:literal, $t:ident, secret, $a:literal) => {
        OutputSpec { name: $n, ty: OutputType::$t, required: true, sensitive: true, about: $a }
    };
}

/// Every output the harness reads.
pub const OUTPUTS: &[OutputSpec] = &[
    out!("region", String, req, "AWS region of the deployment"),
    out!("function_name", String, req, "name of the Lambda function under test"),
    out!("function_arn", String, opt, "ARN of the Lambda function"),
    out!(
        "function_alias",
        String,
        opt,
        "alias the API invokes (and provisioned concurrency is set on); null for $LATEST"
    ),
    out!("api_id", String, req, "id of the API Gateway REST API"),
    out!("api_url", String, req, "invoke URL of the API Gateway stage"),
    out!("api_stage", String, req, "name of the API Gateway stage"),
    out!("usage_plan_id", String, req, "id of the API Gateway usage plan holding the API key"),
    out!(
        "api_key_secret",
        String,
        secret,
        "reference to the API key: apigateway-key:<api key id>, env:<VARIABLE>, or value:<key> for local examples"
    ),
    out!("log_group", String, req, "CloudWatch Logs group of the function"),
    out!(
        "alarm_names",
        MapOfString,
        req,
        "CloudWatch alarm names by role: cold_starts, init_duration, throttles, memory, duration, errors"
    ),
    out!("dashboard_name", String, req, "CloudWatch dashboard name"),
    out!("endpoint_url", String, opt, "AWS API endpoint override (LocalStack, an emulator); null on AWS"),
    out!("lambda_endpoint_url", String, opt, "Lambda API endpoint override (a local Invoke API); null on AWS"),
];

/// Roles every deployment must have an alarm for (keys of `alarm_names`), as seeds 002 and 004 list them.
pub const ALARM_ROLES: &[&str] = &["cold_starts", "init_duration", "throttles", "memory", "duration", "errors"];

/// The contract entry for `name`; panics on a name the contract does not list (a harness bug).
pub fn spec(name: &str) -> &'static OutputSpec {
    OUTPUTS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("harness bug: output `{name}` is read but not listed in terraform::OUTPUTS"))
}

/// A secret value: never printed (`Debug` and `Display` show `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (a request header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the API key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An API Gateway API key, read with `GetApiKey(includeValue)`.
    ApiGatewayKey(String),
    /// An environment variable of the harness process.
    Env(String),
    /// The key itself (local examples only).
    Value(Secret),
}

impl SecretRef {
    fn parse(text: &str) -> Result<SecretRef, String> {
        let (scheme, rest) = text.split_once(':').unwrap_or(("", text));
        let rest = rest.trim();
        match scheme {
            "apigateway-key" if !rest.is_empty() => Ok(SecretRef::ApiGatewayKey(rest.into())),
            "env" if !rest.is_empty() => Ok(SecretRef::Env(rest.into())),
            "value" if !rest.is_empty() => Ok(SecretRef::Value(Secret::new(rest))),
            "apigateway-key" | "env" | "value" => Err(format!("`{scheme}:` is followed by nothing")),
            "arn" | "ssm" | "secretsmanager" => Err(
                "Secrets Manager and SSM references are not read by the harness; output `apigateway-key:<api key id>` \
                 (as terraform/outputs.tf does) or `env:<VARIABLE>`"
                    .into(),
            ),
            _ => Err("it is not a reference the harness knows (apigateway-key:<id>, env:<VARIABLE>, value:<key>); its value is not shown".into()),
        }
    }
}

/// What the aws and localstack targets read from Terraform outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// Region.
    pub region: String,
    /// Function name.
    pub function_name: String,
    /// Function ARN, when output.
    pub function_arn: Option<String>,
    /// Alias the API invokes; `None` for `$LATEST`.
    pub function_alias: Option<String>,
    /// REST API id.
    pub api_id: String,
    /// Stage invoke URL.
    pub api_url: String,
    /// Stage name.
    pub api_stage: String,
    /// Usage plan id.
    pub usage_plan_id: String,
    /// Where the API key is.
    pub api_key: SecretRef,
    /// Log group of the function.
    pub log_group: String,
    /// Alarm names by role (every role of [`ALARM_ROLES`] present).
    pub alarm_names: BTreeMap<String, String>,
    /// Dashboard name.
    pub dashboard_name: String,
    /// Endpoint override for all AWS APIs.
    pub endpoint_url: Option<String>,
    /// Endpoint override for the Lambda API only.
    pub lambda_endpoint_url: Option<String>,
    /// Where the settings came from (for messages).
    pub source_name: String,
}

impl AwsSettings {
    /// Reads the settings from outputs, checking every output of the contract.
    pub fn from_outputs(o: &Outputs) -> Result<AwsSettings, Error> {
        o.check_contract()?;
        let url = |name: &str, required: bool| -> Result<Option<String>, Error> {
            let v = if required { Some(o.string(name)?) } else { o.optional_string(name)? };
            if let Some(u) = &v {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(o.bad_value(name, format!("`{u}` is not an http(s) URL")));
                }
            }
            Ok(v)
        };
        let alarm_names = o.string_map("alarm_names")?;
        let missing: Vec<&str> = ALARM_ROLES.iter().copied().filter(|r| !alarm_names.contains_key(*r)).collect();
        if !missing.is_empty() {
            return Err(o.bad_value(
                "alarm_names",
                format!(
                    "it lacks the key(s) {} (every one of {} is needed)",
                    missing.join(", "),
                    ALARM_ROLES.join(", ")
                ),
            ));
        }
        let api_key = SecretRef::parse(&o.string("api_key_secret")?).map_err(|p| o.bad_value("api_key_secret", p))?;
        Ok(AwsSettings {
            region: o.string("region")?,
            function_name: o.string("function_name")?,
            function_arn: o.optional_string("function_arn")?,
            function_alias: o.optional_string("function_alias")?,
            api_id: o.string("api_id")?,
            api_url: url("api_url", true)?.unwrap_or_default(),
            api_stage: o.string("api_stage")?,
            usage_plan_id: o.string("usage_plan_id")?,
            api_key,
            log_group: o.string("log_group")?,
            alarm_names,
            dashboard_name: o.string("dashboard_name")?,
            endpoint_url: url("endpoint_url", false)?,
            lambda_endpoint_url: url("lambda_endpoint_url", false)?,
            source_name: o.source_name().to_string(),
        })
    }

    /// The function qualifier the suite invokes and tunes: the alias, or `None` for `$LATEST`.
    pub fn qualifier(&self) -> Option<&str> {
        self.function_alias.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn doc(overrides: &[(&str, Value)]) -> String {
        let mut m = serde_json::Map::new();
        let s = |v: &str| json!({"sensitive": false, "type": "string", "value": v});
        m.insert("region".into(), s("eu-west-1"));
        m.insert("function_name".into(), s("perf-fixture"));
        m.insert("function_arn".into(), s("arn:aws:lambda:eu-west-1:123456789012:function:perf-fixture"));
        m.insert("function_alias".into(), s("live"));
        m.insert("api_id".into(), s("a1b2c3d4e5"));
        m.insert("api_url".into(), s("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/perf"));
        m.insert("api_stage".into(), s("perf"));
        m.insert("usage_plan_id".into(), s("up1234"));
        m.insert("api_key_secret".into(), json!({"sensitive": true, "type": "string", "value": "apigateway-key:k123"}));
        m.insert("log_group".into(), s("/aws/lambda/perf-fixture"));
        let alarms: serde_json::Map<String, Value> =
            ALARM_ROLES.iter().map(|r| (r.to_string(), json!(format!("perf-fixture-{r}")))).collect();
        m.insert("alarm_names".into(), json!({"sensitive": false, "type": ["object", {}], "value": alarms}));
        m.insert("dashboard_name".into(), s("perf-fixture"));
        m.insert("endpoint_url".into(), json!({"sensitive": false, "type": "string", "value": null}));
        for (k, v) in overrides {
            if v.is_null() {
                m.remove(*k);
            } else {
                m.insert(k.to_string(), v.clone());
            }
        }
        Value::Object(m).to_string()
    }

    fn settings(overrides: &[(&str, Value)]) -> Result<AwsSettings, Error> {
        AwsSettings::from_outputs(&Outputs::parse(&doc(overrides), "saved outputs t.json")?)
    }

    #[test]
    fn a_complete_document_maps_to_typed_settings() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.qualifier(), Some("live"));
        assert_eq!(s.api_key, SecretRef::ApiGatewayKey("k123".into()));
        assert_eq!(s.alarm_names.len(), ALARM_ROLES.len());
        assert_eq!((s.endpoint_url, s.lambda_endpoint_url), (None, None));
    }

    #[test]
    fn a_missing_output_names_itself_its_type_and_the_module() {
        let e = settings(&[("api_url", Value::Null)]).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Missing { state: "missing", .. }), "{m}");
        for part in ["`api_url`", "string", "terraform/outputs.tf", "t.json"] {
            assert!(m.contains(part), "{part} not in: {m}");
        }
    }

    #[test]
    fn every_broken_output_is_listed_at_once() {
        let e = settings(&[
            ("api_url", Value::Null),
            ("region", json!({"type": "number", "value": 1})),
            ("log_group", Value::Null),
        ])
        .unwrap_err();
        let Error::Several { errors } = &e else { panic!("{e}") };
        let names: Vec<String> = errors
            .iter()
            .map(|x| match x {
                Error::Missing { name, .. } | Error::WrongType { name, .. } => name.clone(),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(names, ["region", "api_url", "log_group"]);
        assert!(e.to_string().starts_with("3 terraform outputs are missing or mistyped"), "{e}");
    }

    #[test]
    fn a_null_required_output_is_missing_and_a_null_optional_one_is_none() {
        let null = json!({"sensitive": false, "type": "string", "value": null});
        let e = settings(&[("dashboard_name", null.clone())]).unwrap_err();
        assert!(matches!(e, Error::Missing { state: "null", .. }), "{e}");
        assert_eq!(settings(&[("function_alias", null)]).unwrap().qualifier(), None);
    }

    #[test]
    fn a_mistyped_output_names_expected_and_found_types() {
        let e = settings(&[("region", json!({"sensitive": false, "type": "number", "value": 3}))]).unwrap_err();
        assert!(
            matches!(&e, Error::WrongType { found, expected, .. } if found == "number" && *expected == "string"),
            "{e}"
        );
        assert!(e.to_string().contains("terraform/outputs.tf"), "{e}");
        let e = settings(&[("alarm_names", json!({"sensitive": false, "type": ["list", "string"], "value": ["a"]}))])
            .unwrap_err();
        assert!(
            matches!(&e, Error::WrongType { found, expected, .. } if found == "list(string)" && *expected == "map(string)"),
            "{e}"
        );
    }

    #[test]
    fn alarm_names_must_cover_every_role() {
        let e =
            settings(&[("alarm_names", json!({"type": ["map", "string"], "value": {"throttles": "t"}}))]).unwrap_err();
        assert!(e.to_string().contains("lacks the key(s) cold_starts, init_duration, memory, duration, errors"), "{e}");
    }

    #[test]
    fn urls_must_be_http() {
        let e = settings(&[("api_url", json!({"type": "string", "value": "a1b2.execute-api"}))]).unwrap_err();
        assert!(e.to_string().contains("not an http(s) URL"), "{e}");
        let s =
            settings(&[("lambda_endpoint_url", json!({"type": "string", "value": "http://127.0.0.1:9001"}))]).unwrap();
        assert_eq!(s.lambda_endpoint_url.as_deref(), Some("http://127.0.0.1:9001"));
    }

    #[test]
    fn secret_references_parse_and_bad_ones_never_echo_the_value() {
        let s = settings(&[(
            "api_key_secret",
            json!({"sensitive": true, "type": "string", "value": "value:s3cr3t-key-material"}),
        )])
        .unwrap();
        assert_eq!(s.api_key, SecretRef::Value(Secret::new("s3cr3t-key-material")));
        assert!(!format!("{s:?}").contains("s3cr3t"), "Debug leaks the key");
        let e = settings(&[("api_key_secret", json!({"type": "string", "value": "hunter2-plain-key"}))]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("apigateway-key:<id>"), "{e}");
        let e = settings(&[(
            "api_key_secret",
            json!({"type": "string", "value": "arn:aws:secretsmanager:eu-west-1:1:secret:k"}),
        )])
        .unwrap_err();
        assert!(e.to_string().contains("Secrets Manager"), "{e}");
        assert_eq!(SecretRef::parse("env:PERF_API_KEY"), Ok(SecretRef::Env("PERF_API_KEY".into())));
    }

    #[test]
    #[should_panic(expected = "not listed in terraform::OUTPUTS")]
    fn reading_an_output_outside_the_contract_is_a_bug() {
        let _ = spec("not_in_contract");
    }
}
