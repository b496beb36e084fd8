//! The aws target's integration tests: against `moto_server` (a real AWS API emulator on loopback) and
//! against recorded responses served over loopback HTTP; `real_aws_tests` need a deployment and are ignored. One test binary, so the AWS SDK is linked once.

mod aws_target {
    pub mod e2e_tests;
    pub mod interrupt_tests;
    pub mod moto_tests;
    pub mod real_aws_tests;
    pub mod replay_tests;
    pub mod security_tests;
    pub mod support;
}
