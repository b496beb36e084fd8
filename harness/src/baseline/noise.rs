//! [`measure_noise`]: the run-to-run jitter of a figure in one environment, from its history, beyond the
//! sampling error each run already reports in its confidence interval.
//!
//! The total run-to-run variance of `ln(figure)` is estimated from successive differences (the mean
//! square successive difference: a slow drift or a single step barely moves it, unlike the plain
//! variance); the mean sampling variance of the runs is subtracted.

use super::decision::{Estimate, Noise};

/// Fewer comparable runs than this and the noise of an environment is not known.
pub const MIN_RUNS: usize = 5;

/// The noise of `series` (one check, one environment, oldest first), or `None` with fewer than
/// [`MIN_RUNS`] positive figures.
pub fn measure_noise(series: &[Estimate]) -> Option<Noise> {
    let pos: Vec<&Estimate> = series.iter().filter(|e| e.value > 0.0 && e.value.is_finite()).collect();
    let m = pos.len();
    if m < MIN_RUNS {
        return None;
    }
    let x: Vec<f64> = pos.iter().map(|e| e.value.ln()).collect();
    let mssd = x.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f64>() / (2.0 * (m - 1) as f64);
    let ses: Vec<f64> = pos.iter().filter_map(|e| e.log_se()).collect();
    let sampling = if ses.is_empty() { 0.0 } else { ses.iter().map(|s| s * s).sum::<f64>() / ses.len() as f64 };
    // The mean square successive difference of m normal values has about 2(m-1)²/(3m-4) degrees of
    // freedom; the jitter is what is left after the sampling variance is taken out, and its relative
    // uncertainty grows by the share it has of the total.
    let jitter = (mssd - sampling).max(0.0);
    let dof_mssd = 2.0 * ((m - 1) as f64).powi(2) / (3 * m - 4) as f64;
    let dof = if jitter > 0.0 { dof_mssd * (jitter / mssd).powi(2) } else { dof_mssd };
    Some(Noise { sigma: jitter.sqrt(), runs: m, dof })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::simulate::Rng;

    fn exact(v: f64) -> Estimate {
        Estimate { value: v, ci_low: Some(v), ci_high: Some(v), n: 1000 }
    }

    #[test]
    fn needs_enough_runs() {
        assert!(measure_noise(&[exact(1.0); 4]).is_none());
        let n = measure_noise(&[exact(1.0); 5]).unwrap();
        assert_eq!((n.sigma, n.runs), (0.0, 5));
        assert!((n.dof - 32.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn recovers_the_jitter_it_was_given() {
        let mut rng = Rng::new(7);
        let series: Vec<Estimate> = (0..4000).map(|_| exact((0.05 * rng.normal()).exp())).collect();
        let n = measure_noise(&series).unwrap();
        assert!((n.sigma - 0.05).abs() < 0.003, "{}", n.sigma);
    }

    #[test]
    fn sampling_error_is_not_counted_as_jitter() {
        // Figures whose spread is exactly what their intervals predict: no jitter beyond sampling.
        let mut rng = Rng::new(11);
        let se = 0.03;
        let half = (se * crate::baseline::decision::Z95).exp();
        let series: Vec<Estimate> = (0..4000)
            .map(|_| {
                let v = (se * rng.normal()).exp();
                Estimate { value: v, ci_low: Some(v / half), ci_high: Some(v * half), n: 500 }
            })
            .collect();
        assert!(measure_noise(&series).unwrap().sigma < 0.01);
    }

    #[test]
    fn a_single_step_barely_moves_it() {
        let mut rng = Rng::new(3);
        let series: Vec<Estimate> =
            (0..200).map(|i| exact((0.02 * rng.normal() + if i >= 100 { 0.3 } else { 0.0 }).exp())).collect();
        let n = measure_noise(&series).unwrap();
        assert!(n.sigma < 0.035, "{}", n.sigma);
    }
}
