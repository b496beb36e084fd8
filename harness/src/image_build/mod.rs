//! Image builds for AC1: the local Docker engine with BuildKit ([`Docker`], [`parse_plain`]), Kaniko's
//! logs for the knative target ([`parse_kaniko`]), the build fixtures ([`BuildFixture`]), the locally made
//! base images ([`ensure_base_images`]), the build metrics pushed to a [`crate::services::Pushgateway`] ([`BuildMetrics`])
//! and the `build` measurement procedure ([`measure`]).

mod base;
mod build_metrics;
mod docker;
mod error;
mod figures;
mod fixture;
mod kaniko;
mod outcome;
mod procedure;
mod progress;
mod session;

pub use base::{ensure_base_images, BaseImages, BASE_IMAGES};
pub use build_metrics::{BuildMetrics, BuildRecord, Family};
pub use docker::{owner, BuildRequest, Built, ContainerRun, Docker, DockerOptions, Layer, OWNER_LABEL};
pub use error::Error;
pub use fixture::{BuildFixture, Change, TestSummary, Variant};
pub use kaniko::{parse_kaniko, CacheLookup, KanikoBuild, KanikoCommand};
pub use outcome::{Batch, Outcome, Recorded, Tests};
pub use procedure::{measure, run_local, Config, JOB};
pub use progress::{parse_plain, Progress, Step, StepStatus};
pub use session::{Kind, Measured};
