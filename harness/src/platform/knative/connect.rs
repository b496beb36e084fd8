//! [`Cluster`]: a kube-rs client for the kubeconfig context the user chose, the namespace of the functions,
//! and the API resources (Knative Serving, the operator's `LambdaFunction`, PodMetrics) the procedures use.
//!
//! [`connect`] reads the kubeconfig (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`), picks the
//! context (`--context`, else current-context) and asks the API server for its version under a deadline,
//! so that an unreachable cluster is reported once, naming the context and the server URL.

use std::time::Duration;

use kube::{
    config::{KubeConfigOptions, Kubeconfig},
    core::{ApiResource, GroupVersionKind},
    Client, Config,
};

use super::error::{Error, Result};
use crate::platform::KnativeConfig;

/// Default `group/version/Kind` of the knative-lambda-operator's function resource.
pub const DEFAULT_LAMBDA_API: &str = "lambda.knative.io/v1alpha1/LambdaFunction";
/// Default `group/version` of Knative Serving.
pub const DEFAULT_SERVING_API: &str = "serving.knative.dev/v1";
/// How long the API server may take to answer the first request.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// The API resources the knative target reads, as dynamic objects.
#[derive(Debug, Clone)]
pub struct Apis {
    /// Knative `Service`.
    pub service: ApiResource,
    /// Knative `Revision`.
    pub revision: ApiResource,
    /// Knative `Route`.
    pub route: ApiResource,
    /// The operator's `LambdaFunction`.
    pub lambda: ApiResource,
    /// metrics-server `PodMetrics` (`metrics.k8s.io/v1beta1`, resource `pods`).
    pub pod_metrics: ApiResource,
}

impl Apis {
    /// The resources for the given serving `group/version` and lambda `group/version/Kind`.
    pub fn new(serving_api: &str, lambda_api: &str) -> Result<Apis> {
        let (sg, sv) = serving_api.split_once('/').ok_or_else(|| Error::Param {
            param: "serving_api".into(),
            problem: format!("`{serving_api}` is not group/version (e.g. {DEFAULT_SERVING_API})"),
        })?;
        let lambda_parts: Vec<&str> = lambda_api.split('/').collect();
        let [lg, lv, lk] = lambda_parts[..] else {
            return Err(Error::Param {
                param: "lambda_api".into(),
                problem: format!("`{lambda_api}` is not group/version/Kind (e.g. {DEFAULT_LAMBDA_API})"),
            });
        };
        let serving = |kind: &str| ApiResource::from_gvk(&GroupVersionKind::gvk(sg, sv, kind));
        Ok(Apis {
            service: serving("Service"),
            revision: serving("Revision"),
            route: serving("Route"),
            lambda: ApiResource::from_gvk(&GroupVersionKind::gvk(lg, lv, lk)),
            pod_metrics: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
                "pods",
            ),
        })
    }

    /// The resources named by `cfg`, defaults filled in.
    pub fn from_config(cfg: &KnativeConfig) -> Result<Apis> {
        Apis::new(
            cfg.serving_api.as_deref().unwrap_or(DEFAULT_SERVING_API),
            cfg.lambda_api.as_deref().unwrap_or(DEFAULT_LAMBDA_API),
        )
    }
}

/// Where a client points: for messages and the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// Kubeconfig context.
    pub context: String,
    /// API server URL.
    pub server: String,
}

/// A connected cluster: client, namespace of the functions, API resources, settings.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// Namespace of the functions.
    pub namespace: String,
    /// API resources.
    pub apis: Apis,
    /// Where the client points.
    pub origin: Origin,
    /// The target settings.
    pub config: KnativeConfig,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster on an existing client (tests hand in a client over a mocked API server).
    pub fn with_client(client: Client, namespace: &str, config: KnativeConfig) -> Result<Cluster> {
        Ok(Cluster {
            client,
            namespace: namespace.into(),
            apis: Apis::from_config(&config)?,
            origin: Origin { context: "(in-process)".into(), server: "(in-process)".into() },
            config,
        })
    }
}

fn load_kubeconfig(cfg: &KnativeConfig) -> Result<(Kubeconfig, String)> {
    if let Some(path) = &cfg.kubeconfig {
        let shown = path.display().to_string();
        return Kubeconfig::read_from(path)
            .map(|k| (k, shown.clone()))
            .map_err(|e| Error::Kubeconfig { path: shown, detail: e.to_string() });
    }
    let shown = std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into());
    Kubeconfig::read().map(|k| (k, shown.clone())).map_err(|e| Error::NoKubeconfig {
        detail: format!("could not read {shown} ({e}); pass --kubeconfig or set KUBECONFIG (scripts/kind/create-cluster.sh writes one)"),
    })
}

/// The context to use and the server URL it points at, with errors that list what the file offers.
pub fn pick_context(kc: &Kubeconfig, wanted: Option<&str>, path: &str) -> Result<Origin> {
    let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    let context =
        wanted.map(str::to_string).or_else(|| kc.current_context.clone()).ok_or_else(|| Error::Kubeconfig {
            path: path.into(),
            detail: format!("no current-context and no --context given (contexts: {})", names.join(", ")),
        })?;
    let ctx = kc.contexts.iter().find(|c| c.name == context).ok_or_else(|| Error::Kubeconfig {
        path: path.into(),
        detail: format!("no context `{context}` (contexts: {})", names.join(", ")),
    })?;
    let cluster_name = ctx.context.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let server = kc
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| Error::Kubeconfig {
            path: path.into(),
            detail: format!("context `{context}` names cluster `{cluster_name}`, which has no server URL"),
        })?;
    Ok(Origin { context, server })
}

/// Connects to the cluster `cfg` names and checks that its API server answers.
pub async fn connect(cfg: &KnativeConfig) -> Result<Cluster> {
    let (kc, path) = load_kubeconfig(cfg)?;
    let origin = pick_context(&kc, cfg.context.as_deref(), &path)?;
    let unreachable =
        |detail: String| Error::Unreachable { context: origin.context.clone(), server: origin.server.clone(), detail };
    let opts = KubeConfigOptions { context: Some(origin.context.clone()), ..KubeConfigOptions::default() };
    let mut config = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| Error::Kubeconfig { path: path.clone(), detail: format!("context `{}`: {e}", origin.context) })?;
    config.connect_timeout = Some(Duration::from_secs(5));
    let namespace = cfg.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| unreachable(format!("client set-up failed: {e}")))?;
    match tokio::time::timeout(PROBE_DEADLINE, client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(format!("{}; is the cluster running (kind get clusters)?", chain(&e)))),
        Err(_) => return Err(unreachable(format!("no answer within {}s", PROBE_DEADLINE.as_secs()))),
    }
    Ok(Cluster { client, namespace, apis: Apis::from_config(cfg)?, origin, config: cfg.clone() })
}

/// An error with its causes (`client error (Connect): tcp connect error: Connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out = format!("{out}: {s_text}");
        }
        cur = s.source();
    }
    out
}

/// `harness run --target knative` calls this first: an unreachable cluster stops the run with one clear
/// error instead of one error per check.
pub fn preflight(cfg: &KnativeConfig) -> Result<Origin> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::Unreachable {
        context: cfg.context.clone().unwrap_or_default(),
        server: String::new(),
        detail: format!("could not start a runtime: {e}"),
    })?;
    rt.block_on(connect(cfg)).map(|c| c.origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"
apiVersion: v1
kind: Config
current-context: kind-perf
clusters:
- name: kind-perf
  cluster: { server: "https://127.0.0.1:6443" }
contexts:
- name: kind-perf
  context: { cluster: kind-perf, user: kind-perf }
- name: broken
  context: { cluster: nowhere, user: kind-perf }
users:
- name: kind-perf
  user: { token: abc }
"#;

    #[test]
    fn context_defaults_to_current_and_errors_list_the_choices() {
        let kc = Kubeconfig::from_yaml(KC).unwrap();
        let o = pick_context(&kc, None, "kc.yaml").unwrap();
        assert_eq!(o, Origin { context: "kind-perf".into(), server: "https://127.0.0.1:6443".into() });
        let e = pick_context(&kc, Some("prod"), "kc.yaml").unwrap_err().to_string();
        assert!(e.contains("no context `prod`") && e.contains("kind-perf, broken") && e.contains("kc.yaml"), "{e}");
        let e = pick_context(&kc, Some("broken"), "kc.yaml").unwrap_err().to_string();
        assert!(e.contains("cluster `nowhere`"), "{e}");
    }

    #[test]
    fn api_resources_take_configurable_groups() {
        let a = Apis::new("serving.knative.dev/v1", "lambda.knative.io/v1alpha1/LambdaFunction").unwrap();
        assert_eq!((a.service.plural.as_str(), a.service.api_version.as_str()), ("services", "serving.knative.dev/v1"));
        assert_eq!((a.lambda.plural.as_str(), a.lambda.group.as_str()), ("lambdafunctions", "lambda.knative.io"));
        assert_eq!(
            (a.pod_metrics.plural.as_str(), a.pod_metrics.api_version.as_str()),
            ("pods", "metrics.k8s.io/v1beta1")
        );
        let a = Apis::new("serving.knative.dev/v1", "fn.example.com/v1/Function").unwrap();
        assert_eq!(a.lambda.plural, "functions");
        assert!(Apis::new("serving", DEFAULT_LAMBDA_API).unwrap_err().to_string().contains("group/version"));
        assert!(Apis::new(DEFAULT_SERVING_API, "a/b").unwrap_err().to_string().contains("group/version/Kind"));
    }
}
