//! Draws the charts of the HTML report as SVG with `plotters`: a distribution's CDF with the threshold and
//! the statistic's confidence band, a scale-up timeline, a memory sweep, build times with cache hit rates,
//! and a check's trend over the last runs. Every function draws exactly the data it is given.

use plotters::{
    coord::{
        ranged1d::{AsRangedCoord, ValueFormatter},
        types::RangedCoordf64,
        Shift,
    },
    prelude::*,
};

use super::charts::{BuildTimes, CheckTrend, LatencySamples, Sweep, Timeline};
use crate::{
    criteria::{fmt_num, Unit},
    evidence::Evidence,
};

/// Size of one chart, pixels.
pub const SIZE: (u32, u32) = (660, 320);

const FONT: &str = "sans-serif";
const THRESHOLD: RGBColor = RGBColor(192, 57, 43);
const DATA: RGBColor = RGBColor(31, 100, 170);
const SECOND: RGBColor = RGBColor(120, 120, 120);
const GOOD: RGBColor = RGBColor(39, 150, 90);
const MARK: RGBColor = RGBColor(211, 120, 20);

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("chart could not be drawn: {0}")]
pub struct Error(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for Error {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Error(e.to_string())
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn svg(draw: impl FnOnce(&Area) -> Result<(), Error>) -> Result<String, Error> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

/// What a check's charts mark: its threshold and the statistic it compared, in the check's unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    /// The check's unit (`s`, `ms`, `%`).
    pub unit: String,
    /// Threshold operator and value.
    pub threshold: Option<(String, f64)>,
    /// Statistic name (`p95`, `mean`), when the check reduces samples.
    pub statistic: Option<String>,
    /// Measured value with its confidence bounds.
    pub estimate: Option<(f64, Option<f64>, Option<f64>)>,
}

impl Marks {
    /// The marks of a check's evidence.
    pub fn of(e: &Evidence) -> Marks {
        let unit = e.threshold.as_ref().map(|t| t.unit.clone()).or_else(|| e.measured.as_ref().map(|m| m.unit.clone()));
        Marks {
            unit: unit.unwrap_or_default(),
            threshold: e.threshold.as_ref().map(|t| (t.op.clone(), t.value)),
            statistic: e.statistic.clone(),
            estimate: e.measured.as_ref().map(|m| (m.value, m.ci_low, m.ci_high)),
        }
    }
}

fn num(v: f64) -> String {
    let r = if v == 0.0 || !v.is_finite() {
        v
    } else if v.abs() >= 100.0 {
        v.round()
    } else if v.abs() >= 1.0 {
        (v * 100.0).round() / 100.0
    } else {
        let mag = 10f64.powi(3 - v.abs().log10().floor() as i32);
        (v * mag).round() / mag
    };
    fmt_num(r)
}

fn with_unit(v: f64, unit: &str) -> String {
    let space = if unit.contains('/') { " " } else { "" };
    format!("{}{space}{unit}", num(v))
}

fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
}

/// CDF of a distribution with the check's threshold line and its statistic with the confidence band.
pub fn cdf(title: &str, s: &LatencySamples, marks: &Marks) -> Result<String, Error> {
    let (unit, factor, comparable) = match (Unit::parse(&s.unit), Unit::parse(&marks.unit)) {
        (Some(from), Some(to)) if from.dimension == to.dimension => (marks.unit.clone(), from.factor / to.factor, true),
        _ => (s.unit.clone(), 1.0, false),
    };
    let mut v: Vec<f64> = s.values.iter().filter(|x| x.is_finite()).map(|x| x * factor).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return Err(Error("no finite samples".into()));
    }
    let marks = if comparable { marks.clone() } else { Marks::default() };
    let (lo, hi) = (v[0], *v.last().expect("validated non-empty"));
    let mut top = hi;
    if let Some((_, t)) = marks.threshold {
        top = top.max(t);
    }
    if let Some((_, _, Some(h))) = marks.estimate {
        top = top.max(h);
    }
    let log = lo > 0.0 && top / lo > 20.0;
    let caption = format!("{title}: CDF of {} samples", v.len());
    svg(|root| {
        if log {
            draw_cdf(root, &caption, (lo * 0.8..top * 1.25).log_scale(), &v, &unit, &marks)
        } else {
            let start = if lo >= 0.0 { 0.0 } else { lo * 1.05 };
            draw_cdf(root, &caption, start..(top * 1.05).max(start + f64::EPSILON), &v, &unit, &marks)
        }
    })
}

fn draw_cdf<X>(root: &Area, caption: &str, x: X, v: &[f64], unit: &str, marks: &Marks) -> Result<(), Error>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let n = v.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(x, 0f64..1.02f64)?;
    chart
        .configure_mesh()
        .x_desc(format!("value ({unit})"))
        .y_desc("share of samples at or below")
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .x_label_formatter(&|x| num(*x))
        .light_line_style(WHITE)
        .draw()?;
    let q = marks.statistic.as_deref().and_then(|s| s.strip_prefix('p')).and_then(|q| q.parse::<f64>().ok());
    if let Some((value, ci_low, ci_high)) = marks.estimate {
        let (x0, x1) = (ci_low.unwrap_or(v[0]), ci_high.unwrap_or(v[v.len() - 1]));
        let band = format!(
            "{} {} (95% CI {}..{})",
            marks.statistic.as_deref().unwrap_or("value"),
            with_unit(value, unit),
            ci_low.map_or("unbounded".into(), |l| with_unit(l, unit)),
            ci_high.map_or("unbounded".into(), |h| with_unit(h, unit)),
        );
        chart
            .draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, 1.02)], DATA.mix(0.15).filled())))?
            .label(band)
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], DATA.mix(0.3).filled()));
        chart.draw_series(DashedLineSeries::new(vec![(value, 0.0), (value, 1.02)], 4, 3, DATA.stroke_width(1)))?;
        if let Some(q) = q {
            let (first, last) = (v[0], v[v.len() - 1]);
            chart.draw_series(DashedLineSeries::new(
                vec![(first, q / 100.0), (last, q / 100.0)],
                4,
                3,
                SECOND.stroke_width(1),
            ))?;
        }
    }
    let mut steps = Vec::with_capacity(v.len() * 2);
    for (i, x) in v.iter().enumerate() {
        steps.push((*x, i as f64 / n));
        steps.push((*x, (i + 1) as f64 / n));
    }
    chart
        .draw_series(LineSeries::new(steps, DATA.stroke_width(2)))?
        .label(format!("samples (n={})", v.len()))
        .legend(legend_line(DATA));
    if let Some((op, t)) = &marks.threshold {
        chart
            .draw_series(LineSeries::new(vec![(*t, 0.0), (*t, 1.02)], THRESHOLD.stroke_width(2)))?
            .label(format!(
                "threshold {}{op} {}",
                marks.statistic.as_deref().map(|s| format!("{s} ")).unwrap_or_default(),
                with_unit(*t, unit)
            ))
            .legend(legend_line(THRESHOLD));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(SECOND)
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

fn span(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else {
        (lo, hi)
    }
}

fn top_of(values: impl IntoIterator<Item = f64>) -> f64 {
    let (_, hi) = span(values);
    if hi > 0.0 {
        hi * 1.15
    } else {
        1.0
    }
}

/// Environments and offered load against time, with the concurrency limit and marked events.
pub fn timeline(title: &str, t: &Timeline) -> Result<String, Error> {
    let (t0, t1) = span(t.t_s.iter().copied());
    let t1 = if t1 > t0 { t1 } else { t0 + 1.0 };
    let env_top = top_of(t.envs.iter().copied().chain(t.limit));
    let rps_top = top_of(t.load_rps.iter().copied());
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{title}: environments and load over time"), (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .right_y_label_area_size(56)
            .build_cartesian_2d(t0..t1, 0f64..env_top)?
            .set_secondary_coord(t0..t1, 0f64..rps_top);
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("environments")
            .x_label_formatter(&|x| num(*x))
            .y_label_formatter(&|y| num(*y))
            .light_line_style(WHITE)
            .draw()?;
        chart.configure_secondary_axes().y_desc("offered load (req/s)").y_label_formatter(&|y| num(*y)).draw()?;
        chart
            .draw_secondary_series(AreaSeries::new(
                t.t_s.iter().copied().zip(t.load_rps.iter().copied()),
                0.0,
                SECOND.mix(0.18),
            ))?
            .label("offered load (req/s, right axis)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], SECOND.mix(0.3).filled()));
        let mut steps = Vec::with_capacity(t.t_s.len() * 2);
        for (i, (x, e)) in t.t_s.iter().zip(&t.envs).enumerate() {
            if i > 0 {
                steps.push((*x, t.envs[i - 1]));
            }
            steps.push((*x, *e));
        }
        chart
            .draw_series(LineSeries::new(steps, DATA.stroke_width(2)))?
            .label("environments")
            .legend(legend_line(DATA));
        if let Some(limit) = t.limit {
            chart
                .draw_series(DashedLineSeries::new(vec![(t0, limit), (t1, limit)], 6, 4, THRESHOLD.stroke_width(2)))?
                .label(format!("concurrency limit {}", num(limit)))
                .legend(legend_line(THRESHOLD));
        }
        for m in &t.marks {
            chart.draw_series(DashedLineSeries::new(
                vec![(m.t_s, 0.0), (m.t_s, env_top)],
                3,
                3,
                MARK.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                m.label.clone(),
                (m.t_s, env_top * 0.97),
                (FONT, 12).into_font().color(&MARK),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(SECOND)
            .label_font((FONT, 12))
            .draw()?;
        Ok(())
    })
}

/// Median duration and cost per memory size, with the recommended and configured sizes.
pub fn sweep(title: &str, s: &Sweep) -> Result<String, Error> {
    let (m0, m1) = span(s.points.iter().map(|p| p.memory_mb).chain(s.recommended_mb).chain(s.configured_mb));
    let pad = ((m1 - m0) * 0.06).max(16.0);
    let (x0, x1) = ((m0 - pad).max(0.0), m1 + pad);
    let d_top = top_of(s.points.iter().map(|p| p.duration_ms));
    let c_top = top_of(s.points.iter().map(|p| p.cost_gbs));
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{title}: duration and cost per memory size"), (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .right_y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0f64..d_top)?
            .set_secondary_coord(x0..x1, 0f64..c_top);
        chart
            .configure_mesh()
            .x_desc("memory size (MB)")
            .y_desc("median duration (ms)")
            .x_label_formatter(&|x| num(*x))
            .light_line_style(WHITE)
            .draw()?;
        chart.configure_secondary_axes().y_desc("cost per invocation (GB-s)").y_label_formatter(&|y| num(*y)).draw()?;
        let d: Vec<(f64, f64)> = s.points.iter().map(|p| (p.memory_mb, p.duration_ms)).collect();
        let c: Vec<(f64, f64)> = s.points.iter().map(|p| (p.memory_mb, p.cost_gbs)).collect();
        chart
            .draw_series(LineSeries::new(d.clone(), DATA.stroke_width(2)))?
            .label("median duration (ms)")
            .legend(legend_line(DATA));
        chart.draw_series(d.iter().map(|p| Circle::new(*p, 4, DATA.filled())))?;
        chart
            .draw_secondary_series(LineSeries::new(c.clone(), MARK.stroke_width(2)))?
            .label("cost (GB-s, right axis)")
            .legend(legend_line(MARK));
        chart.draw_secondary_series(c.iter().map(|p| TriangleMarker::new(*p, 5, MARK.filled())))?;
        for (x, label, color) in [(s.recommended_mb, "recommended", GOOD), (s.configured_mb, "configured", THRESHOLD)] {
            if let Some(x) = x {
                chart
                    .draw_series(DashedLineSeries::new(vec![(x, 0.0), (x, d_top)], 5, 4, color.stroke_width(2)))?
                    .label(format!("{label} {} MB", num(x)))
                    .legend(legend_line(color));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperMiddle)
            .background_style(WHITE.mix(0.9))
            .border_style(SECOND)
            .label_font((FONT, 12))
            .draw()?;
        Ok(())
    })
}

/// Build durations per build, baseline against optimized (and cached rebuilds), beside the cache hit rates.
pub fn builds(title: &str, b: &BuildTimes) -> Result<String, Error> {
    svg(|root| {
        let root = root.titled(&format!("{title}: build times and cache hits"), (FONT, 16))?;
        let (left, right) = if b.cache.is_empty() {
            (root.clone(), None)
        } else {
            let (l, r) = root.split_horizontally(380);
            (l, Some(r))
        };
        draw_durations(&left, b)?;
        if let Some(right) = right {
            draw_cache(&right, b)?;
        }
        Ok(())
    })
}

fn draw_durations(area: &Area, b: &BuildTimes) -> Result<(), Error> {
    let series = [
        ("baseline (clean)", &b.baseline, THRESHOLD),
        ("optimized (clean)", &b.optimized, DATA),
        ("optimized, cached rebuild", &b.incremental, GOOD),
    ];
    let most = series.iter().map(|s| s.1.len()).max().unwrap_or(0).max(1);
    let top = top_of(series.iter().flat_map(|s| s.1.iter().copied())) * 1.35;
    let mut chart: ChartContext<_, Cartesian2d<RangedCoordf64, RangedCoordf64>> = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.5f64..most as f64 + 0.5, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("build #")
        .y_desc(format!("duration ({})", b.unit))
        .x_labels(most.min(10))
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("{}", x.round()) } else { String::new() })
        .y_label_formatter(&|y| num(*y))
        .light_line_style(WHITE)
        .draw()?;
    for (label, values, color) in series {
        if values.is_empty() {
            continue;
        }
        let pts: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect();
        chart.draw_series(LineSeries::new(pts.clone(), color.mix(0.5).stroke_width(1)))?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))?
            .label(format!("{label}, n={}", values.len()))
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(SECOND)
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

fn draw_cache(area: &Area, b: &BuildTimes) -> Result<(), Error> {
    let k = b.cache.len() as i32;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(96)
        .build_cartesian_2d(0f64..125f64, (0..k).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_desc("cache hit rate (%)")
        .x_labels(6)
        .x_label_formatter(&|x| if *x <= 100.0 { num(*x) } else { String::new() })
        .y_labels(b.cache.len())
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(i) => b.cache.get(*i as usize).map(|c| short(&c.build, 14)).unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FONT, 12))
        .draw()?;
    let rate = |c: &super::charts::CacheHits| {
        if c.lookups == 0 {
            0.0
        } else {
            100.0 * f64::from(c.hits) / f64::from(c.lookups)
        }
    };
    chart.draw_series(
        Histogram::horizontal(&chart)
            .style(GOOD.mix(0.8).filled())
            .margin(8)
            .data(b.cache.iter().enumerate().map(|(i, c)| (i as i32, rate(c)))),
    )?;
    chart.draw_series(b.cache.iter().enumerate().map(|(i, c)| {
        Text::new(
            format!("{}/{}", c.hits, c.lookups),
            (rate(c) + 2.0, SegmentValue::CenterOf(i as i32)),
            (FONT, 12).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        )
    }))?;
    Ok(())
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// A check's value over the last runs: baseline runs, change points, the threshold and the current run.
pub fn trend(title: &str, t: &CheckTrend, marks: &Marks) -> Result<String, Error> {
    let pts = &t.points;
    let n = pts.len();
    let threshold = marks.threshold.as_ref().filter(|_| marks.unit == t.unit).map(|(op, v)| (op.clone(), *v));
    let (lo, hi) = span(pts.iter().map(|p| p.value));
    let mut range = (lo, hi);
    if let Some((_, v)) = &threshold {
        if *v <= hi * 2.0 && *v >= lo / 2.0 {
            range = (range.0.min(*v), range.1.max(*v));
        }
    }
    let pad = if range.1 > range.0 { (range.1 - range.0) * 0.15 } else { range.1.abs().max(1.0) * 0.1 };
    let y0 = if range.0 >= 0.0 { (range.0 - pad).max(0.0) } else { range.0 - pad };
    let y1 = range.1 + pad + (range.1 + pad - y0) * 0.6;
    let baseline: Vec<f64> = {
        let mut b: Vec<f64> = pts.iter().filter(|p| p.is_baseline).map(|p| p.value).collect();
        b.sort_by(f64::total_cmp);
        b
    };
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{title}: last {n} runs"), (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("run (start date)")
            .y_desc(format!("measured ({})", t.unit))
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-9 || i < 0.0 {
                    return String::new();
                }
                pts.get(i as usize).map(|p| p.started.format("%m-%d").to_string()).unwrap_or_default()
            })
            .y_label_formatter(&|y| num(*y))
            .light_line_style(WHITE)
            .draw()?;
        if !baseline.is_empty() {
            let median = baseline[(baseline.len() - 1) / 2];
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(-0.5, median), (n as f64 - 0.5, median)],
                    5,
                    4,
                    GOOD.stroke_width(1),
                ))?
                .label(format!("baseline median {} ({} runs)", with_unit(median, &t.unit), baseline.len()))
                .legend(legend_line(GOOD));
        }
        if let Some((op, v)) = &threshold {
            if (y0..=y1).contains(v) {
                chart
                    .draw_series(LineSeries::new(vec![(-0.5, *v), (n as f64 - 0.5, *v)], THRESHOLD.stroke_width(2)))?
                    .label(format!("threshold {op} {}", with_unit(*v, &t.unit)))
                    .legend(legend_line(THRESHOLD));
            }
        }
        for (i, p) in pts.iter().enumerate().filter(|(_, p)| p.change_point) {
            let x = i as f64 - 0.5;
            chart.draw_series(DashedLineSeries::new(vec![(x, y0), (x, y1)], 3, 3, MARK.stroke_width(2)))?;
            chart.draw_series(std::iter::once(Text::new(
                format!(" change at {}", short(&p.run_id, 20)),
                (x, y1 - (y1 - y0) * 0.02),
                (FONT, 12).into_font().color(&MARK),
            )))?;
        }
        let line: Vec<(f64, f64)> = pts.iter().enumerate().map(|(i, p)| (i as f64, p.value)).collect();
        chart.draw_series(LineSeries::new(line, DATA.stroke_width(2)))?.label("measured").legend(legend_line(DATA));
        chart
            .draw_series(pts.iter().enumerate().filter(|(_, p)| p.is_baseline).map(|(i, p)| {
                EmptyElement::at((i as f64, p.value)) + Rectangle::new([(-5, -5), (5, 5)], GOOD.filled())
            }))?
            .label("baseline run")
            .legend(|(x, y)| Rectangle::new([(x + 4, y - 4), (x + 12, y + 4)], GOOD.filled()));
        chart.draw_series(
            pts.iter()
                .enumerate()
                .filter(|(_, p)| !p.is_baseline)
                .map(|(i, p)| Circle::new((i as f64, p.value), 3, DATA.filled())),
        )?;
        if let Some(last) = pts.last() {
            chart.draw_series(std::iter::once(Circle::new(((n - 1) as f64, last.value), 7, DATA.stroke_width(2))))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(SECOND)
            .label_font((FONT, 12))
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::charts::{CacheHits, Mark, SweepPoint, TrendPoint};

    fn marks() -> Marks {
        Marks {
            unit: "ms".into(),
            threshold: Some(("<".into(), 1000.0)),
            statistic: Some("p95".into()),
            estimate: Some((450.0, Some(420.0), Some(480.0))),
        }
    }

    #[test]
    fn cdf_draws_samples_in_the_checks_unit_with_threshold_and_band() {
        let s = LatencySamples { unit: "s".into(), values: (1..=40).map(|i| 0.3 + f64::from(i) * 0.005).collect() };
        let out = cdf("cold start", &s, &marks()).unwrap();
        assert!(out.starts_with("<svg"), "{}", &out[..40]);
        assert!(out.contains("threshold p95 &lt; 1000ms"), "threshold label");
        assert!(out.contains("p95 450ms (95% CI 420ms..480ms)"), "band label");
        assert!(out.contains("samples (n=40)"));
        assert!(out.contains("value (ms)"));
    }

    #[test]
    fn cdf_of_another_dimension_draws_no_threshold() {
        let s = LatencySamples { unit: "%".into(), values: vec![50.0, 60.0] };
        let out = cdf("memory", &s, &marks()).unwrap();
        assert!(!out.contains("threshold"));
        assert!(out.contains("value (%)"));
    }

    #[test]
    fn other_charts_draw_their_labels() {
        let t = Timeline {
            t_s: vec![0.0, 1.0, 2.0],
            envs: vec![0.0, 4.0, 10.0],
            load_rps: vec![0.0, 50.0, 50.0],
            limit: Some(10.0),
            marks: vec![Mark { t_s: 0.5, label: "spike".into() }],
        };
        let out = timeline("scale-up", &t).unwrap();
        assert!(out.contains("concurrency limit 10") && out.contains("spike") && out.contains("offered load"));
        let s = Sweep {
            points: vec![
                SweepPoint { memory_mb: 128.0, duration_ms: 300.0, cost_gbs: 0.04 },
                SweepPoint { memory_mb: 256.0, duration_ms: 140.0, cost_gbs: 0.035 },
            ],
            recommended_mb: Some(256.0),
            configured_mb: Some(1024.0),
        };
        let out = sweep("sweep", &s).unwrap();
        assert!(out.contains("recommended 256 MB") && out.contains("configured 1024 MB"));
        let b = BuildTimes {
            unit: "s".into(),
            baseline: vec![60.0, 62.0],
            optimized: vec![40.0],
            incremental: vec![],
            cache: vec![CacheHits { build: "rebuild".into(), hits: 7, lookups: 8 }],
        };
        let out = builds("build", &b).unwrap();
        assert!(out.contains("baseline (clean), n=2") && out.contains("7/8") && !out.contains("cached rebuild"));
        let tr = CheckTrend {
            unit: "ms".into(),
            points: (0..5)
                .map(|i| TrendPoint {
                    run_id: format!("r{i}"),
                    started: "2026-01-01T00:00:00Z".parse().unwrap(),
                    value: 400.0 + f64::from(i) * 10.0,
                    is_baseline: i < 2,
                    change_point: i == 3,
                })
                .collect(),
        };
        let out = trend("cold", &tr, &marks()).unwrap();
        assert!(
            out.contains("baseline median 400ms (2 runs)")
                && out.contains("change at r3")
                && out.contains("last 5 runs")
        );
    }
}
