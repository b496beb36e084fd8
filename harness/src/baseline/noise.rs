//! [`measure_noise`]: the run-to-run jitter of a figure in one environment, from its history, beyond the
//! sampling error each run already reports in its confidence interval.
//!
//! The total run-to-run variance of `ln(figure)` is estimated from successive differences (the mean
//! square successive difference: a slow drift or a single step barely moves it, unlike the plain
//! variance); the typical (median) sampling variance of the runs is subtracted. The median, not the mean:
//! a percentile's order-statistic interval is asymmetric and, for a run that caught one slow tail, can be
//! ten times wider than the others; its square alone then outweighed the whole successive-difference
//! variance and clamped the jitter to zero (a "±0.0%" noise band from visibly jittering runs).

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
    let mut vars: Vec<f64> = pos.iter().filter_map(|e| e.log_se()).map(|s| s * s).collect();
    vars.sort_by(f64::total_cmp);
    let sampling = match vars.len() {
        0 => 0.0,
        k if k % 2 == 1 => vars[k / 2],
        k => 0.5 * (vars[k / 2 - 1] + vars[k / 2]),
    };
    // The mean square successive difference of m normal values has about 2(m-1)²/(3m-4) degrees of
    // freedom; the jitter is what is left after the sampling variance is taken out, and its relative
    // uncertainty grows by the share it has of the total.
    let jitter = (mssd - sampling).max(0.0);
    let dof_mssd = super::decision::spread_dof(m);
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
    fn one_run_with_a_wide_interval_does_not_zero_the_jitter() {
        // Warm P95s of six 3 s batches of one main-job run: one batch caught a slow tail (its 95% interval
        // is 0.0215..0.0400 s). The mean sampling variance exceeded the successive-difference variance and
        // the band read ±0.0%.
        let batches = [
            (0.02089, 0.0208, 0.02135),
            (0.02393, 0.02148, 0.03995),
            (0.02073, 0.02065, 0.02258),
            (0.02075, 0.02071, 0.02147),
            (0.0211, 0.02092, 0.02243),
            (0.02109, 0.02068, 0.02304),
        ];
        let series: Vec<Estimate> = batches
            .iter()
            .map(|&(v, lo, hi)| Estimate { value: v, ci_low: Some(lo), ci_high: Some(hi), n: 140 })
            .collect();
        let n = measure_noise(&series).unwrap();
        assert!(n.sigma > 0.03, "{n:?}");
        let mut rng = Rng::new(5);
        let mut series: Vec<Estimate> = (0..400)
            .map(|_| {
                let v = (0.04 * rng.normal()).exp();
                Estimate { value: v, ci_low: Some(v * 0.99), ci_high: Some(v * 1.01), n: 500 }
            })
            .collect();
        series[7].ci_high = Some(series[7].value * 20.0);
        assert!((measure_noise(&series).unwrap().sigma - 0.04).abs() < 0.006);
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
