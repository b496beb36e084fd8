//! The function's log group as the suite reads it: the REPORT lines (text format) and `platform.report`
//! records (JSON format) Lambda wrote in a time window, via FilterLogEvents, parsed by
//! [`crate::platform::report_line`]. A malformed report line is an error, not a skipped sample.

use std::time::SystemTime;

use super::{error::classify, AwsTarget, Error};
use crate::platform::report_line::{self, PlatformLine, Report};

/// Filter pattern matching the report lines of both log formats (CloudWatch's OR of quoted terms).
pub const REPORT_FILTER: &str = "?\"REPORT RequestId\" ?\"platform.report\"";

/// The reports found in a window.
#[derive(Debug, Clone, Default)]
pub struct LogReports {
    /// Reports, in log order.
    pub reports: Vec<Report>,
    /// Log events read (report lines and anything else the filter let through).
    pub events_read: usize,
    /// True when `limit` stopped the reading before the window's end.
    pub truncated: bool,
}

impl AwsTarget {
    /// The reports in the function's log group between `start` and `end`, at most `limit` events read.
    pub async fn log_reports(&self, start: SystemTime, end: SystemTime, limit: usize) -> Result<LogReports, Error> {
        let group = &self.settings.log_group;
        let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let mut out = LogReports::default();
        let mut token: Option<String> = None;
        loop {
            let r = self
                .logs
                .filter_log_events()
                .log_group_name(group)
                .filter_pattern(REPORT_FILTER)
                .start_time(ms(start))
                .end_time(ms(end))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    classify(&self.ctx("CloudWatch Logs", "FilterLogEvents", &format!("log group {group}")), e)
                })?;
            for ev in r.events() {
                out.events_read += 1;
                let line = ev.message().unwrap_or_default();
                for (i, l) in line.lines().enumerate() {
                    if let Some(PlatformLine::Report(rep)) = report_line::parse_line(l, i + 1)? {
                        out.reports.push(rep);
                    }
                }
                if out.events_read >= limit {
                    out.truncated = true;
                    return Ok(out);
                }
            }
            token = r.next_token().map(str::to_string).filter(|t| Some(t) != token.as_ref());
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
