//! Check (a), access to performance data requires authentication: each [`Protected`] endpoint is asked
//! three times, with no credential, with a wrong one and with the right one. It must refuse the first two
//! (401 or 403) and serve the third (2xx); an [`AuthReport`] counts the endpoints that do not.

use serde::{Deserialize, Serialize};

use super::{
    http::{HttpClient, Req},
    Error,
};

/// A credential and how it is presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum Credential {
    /// A header carrying the secret as is (`x-api-key`).
    Header {
        /// Header name.
        name: String,
        /// The secret.
        value: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl Credential {
    /// The headers presenting this credential.
    pub fn headers(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        match self {
            Credential::Header { name, value } => vec![(name.clone(), value.clone())],
            Credential::Bearer { token } => vec![("authorization".into(), format!("Bearer {token}"))],
            Credential::Basic { user, password } => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                vec![("authorization".into(), format!("Basic {b64}"))]
            }
        }
    }

    /// The same credential with a wrong secret (same scheme, same length, every character changed).
    pub fn wrong(&self) -> Credential {
        fn garble(s: &str) -> String {
            let g: String = s.chars().map(|c| if c == 'x' { 'y' } else { 'x' }).collect();
            if g.is_empty() {
                "x".into()
            } else {
                g
            }
        }
        match self {
            Credential::Header { name, value } => Credential::Header { name: name.clone(), value: garble(value) },
            Credential::Bearer { token } => Credential::Bearer { token: garble(token) },
            Credential::Basic { user, password } => {
                Credential::Basic { user: user.clone(), password: garble(password) }
            }
        }
    }

    /// The secrets in it, for redaction and for the scanner's known credentials.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Credential::Header { value, .. } => vec![value.clone()],
            Credential::Bearer { token } => vec![token.clone()],
            Credential::Basic { user, password } => {
                use base64::Engine as _;
                vec![password.clone(), base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))]
            }
        }
    }
}

/// An endpoint serving performance data, and the credential that should open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protected {
    /// What it is (`platform /metrics`, `front door (https)`).
    pub name: String,
    /// URL to GET (or POST, with `body`).
    pub url: String,
    /// The right credential.
    pub credential: Credential,
    /// Body to POST (an invoke payload); `None` sends a GET.
    #[serde(default)]
    pub body: Option<String>,
}

impl Protected {
    fn request(&self, credential: Option<&Credential>) -> Req {
        let mut req = match &self.body {
            Some(b) => Req::post(&self.url, b.clone()),
            None => Req::get(&self.url),
        };
        for (k, v) in credential.map(Credential::headers).unwrap_or_default() {
            req = req.header(&k, &v);
        }
        req
    }
}

/// What one endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointResult {
    /// Endpoint name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Status without a credential.
    pub none: u16,
    /// Status with a wrong credential.
    pub wrong: u16,
    /// Status with the right credential.
    pub right: u16,
    /// What is wrong, empty when the endpoint behaves.
    pub problems: Vec<String>,
}

/// The result of check (a).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthReport {
    /// Per endpoint.
    pub endpoints: Vec<EndpointResult>,
}

impl AuthReport {
    /// Endpoints that served without or with a wrong credential, or refused the right one.
    pub fn violations(&self) -> usize {
        self.endpoints.iter().filter(|e| !e.problems.is_empty()).count()
    }
}

fn refused(status: u16) -> bool {
    status == 401 || status == 403
}

/// Asks each endpoint without, with a wrong and with the right credential (each on a new connection).
/// An endpoint that cannot be reached is an error, not a pass.
pub async fn check(client: &HttpClient, endpoints: &[Protected]) -> Result<AuthReport, Error> {
    if endpoints.is_empty() {
        return Err(Error::Measurement("no performance-data endpoint to check for authentication".into()));
    }
    let mut report = AuthReport::default();
    for ep in endpoints {
        let none = client.send(&ep.request(None)).await?.status;
        let wrong = client.send(&ep.request(Some(&ep.credential.wrong()))).await?.status;
        let right = client.send(&ep.request(Some(&ep.credential))).await?.status;
        let mut problems = Vec::new();
        if !refused(none) {
            problems.push(format!("answered {none} without a credential (expected 401 or 403)"));
        }
        if !refused(wrong) {
            problems.push(format!("answered {wrong} to a wrong credential (expected 401 or 403)"));
        }
        if !(200..300).contains(&right) {
            problems.push(format!("answered {right} to the right credential (expected 2xx): cannot show it serves"));
        }
        report.endpoints.push(EndpointResult {
            name: ep.name.clone(),
            url: ep.url.clone(),
            none,
            wrong,
            right,
            problems,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_credentials_differ_everywhere_and_keep_the_scheme() {
        let c = Credential::Basic { user: "u".into(), password: "xax".into() };
        assert_eq!(c.wrong(), Credential::Basic { user: "u".into(), password: "yxy".into() });
        let h = Credential::Header { name: "x-api-key".into(), value: "k1".into() };
        assert_eq!(h.wrong().headers(), vec![("x-api-key".to_string(), "xx".to_string())]);
        assert_eq!(Credential::Bearer { token: "t".into() }.headers()[0].1, "Bearer t");
        assert_eq!(c.headers()[0].1, "Basic dTp4YXg=");
    }
}
