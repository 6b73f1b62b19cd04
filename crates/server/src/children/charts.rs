//! Growth charts of the child page: server-rendered inline SVG of the WHO 2006 standards'
//! −3, −2, 0, +2 and +3 SD curves with the child's measurements on them, each with a title, a
//! description and a table of the same figures (no script needed).

use std::fmt::Write as _;

use chrono::NaiveDate;
use inkingi_domain::children::growth::{
    self, AgeDays, HeadCircumferenceCm, Indicator, LengthCm, LengthMeasurement, MeasuredPosition,
    MuacCm, Sex, WeightKg, ZScore, SD_LINES,
};
use inkingi_store::children::{Measurement, MeasurementKind};

/// One chart, ready for the page.
pub struct Chart {
    /// Element id stem (`chart-wfa`).
    pub id: &'static str,
    pub title: String,
    /// The `<svg>` element; built from numbers, dates and fixed labels only.
    pub svg: String,
    pub x_label: &'static str,
    pub y_label: &'static str,
    pub rows: Vec<ChartRow>,
}

/// A point of the child, as the table fallback lists it.
pub struct ChartRow {
    pub date: String,
    pub x: String,
    pub y: String,
    pub z: String,
}

const W: f64 = 640.0;
const H: f64 = 360.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;
/// Days between two sampled points of a reference curve by age.
const AGE_STEP: u32 = 7;
/// Millimetres between two sampled points of a curve by length.
const LENGTH_STEP: u32 = 5;

/// A point: x (days or cm), y (kg or cm), its date and z-score.
struct Point {
    x: f64,
    y: f64,
    on: NaiveDate,
    z: Option<f64>,
}

/// What one chart plots.
struct Spec {
    id: &'static str,
    indicator: Indicator,
    title: &'static str,
    x_label: &'static str,
    y_label: &'static str,
    /// The reference table's keys drawn (days, or mm of length).
    keys: (u32, u32),
    by_length: bool,
}

/// The charts of a child of `sex` born on `birth` with `measurements`: weight-for-age,
/// length/height-for-age and weight-for-length (or -height from two years) always; head
/// circumference and MUAC when measured.
pub fn charts(sex: Sex, birth: NaiveDate, today: NaiveDate, ms: &[Measurement]) -> Vec<Chart> {
    let age_now = (today - birth).num_days().max(0);
    let last = ms
        .iter()
        .map(|m| (m.measured_on - birth).num_days())
        .max()
        .unwrap_or(0)
        .max(age_now);
    // Two years at least, six months beyond the latest, at most the standards' five years.
    let span = u32::try_from((last + 182).clamp(730, 1856)).unwrap_or(1856);
    let age_spec =
        |id: &'static str, indicator: Indicator, title: &'static str, y_label: &'static str| Spec {
            id,
            indicator,
            title,
            x_label: "age (months)",
            y_label,
            keys: (0, span),
            by_length: false,
        };
    let mut out = Vec::new();
    let of = |k: &[MeasurementKind]| of_kinds(ms, k);
    let weights = of(&[MeasurementKind::Weight]);
    let lengths = of(&[MeasurementKind::Length, MeasurementKind::Height]);
    let at = |m: &Measurement| AgeDays::between(birth, m.measured_on).ok();
    let wfa: Vec<Point> = weights
        .iter()
        .filter_map(|m| {
            let age = at(m)?;
            let z = WeightKg::new(m.value)
                .ok()
                .and_then(|w| growth::weight_for_age(sex, age, w).ok());
            Some(point(f64::from(age.days()), m, z))
        })
        .collect();
    out.push(render(
        &age_spec(
            "wfa",
            Indicator::WeightForAge,
            "Weight-for-age",
            "weight (kg)",
        ),
        sex,
        &wfa,
    ));
    let lhfa: Vec<Point> = lengths
        .iter()
        .filter_map(|m| {
            let age = at(m)?;
            let z = length_of(m).and_then(|l| growth::length_for_age(sex, age, l).ok());
            Some(point(f64::from(age.days()), m, z))
        })
        .collect();
    out.push(render(
        &age_spec(
            "lhfa",
            Indicator::LengthForAge,
            "Length/height-for-age",
            "length or height (cm)",
        ),
        sex,
        &lhfa,
    ));
    out.push(weight_for_length(sex, birth, age_now, &weights, &lengths));
    for (kind, id, indicator, title, y_label) in [
        (
            MeasurementKind::HeadCircumference,
            "hcfa",
            Indicator::HeadCircumferenceForAge,
            "Head-circumference-for-age",
            "head circumference (cm)",
        ),
        (
            MeasurementKind::Muac,
            "mfa",
            Indicator::MuacForAge,
            "MUAC-for-age",
            "mid-upper-arm circumference (cm)",
        ),
    ] {
        let pts: Vec<Point> = of(&[kind])
            .iter()
            .filter_map(|m| {
                let age = at(m)?;
                let z = match kind {
                    MeasurementKind::Muac => MuacCm::new(m.value)
                        .ok()
                        .and_then(|v| growth::muac_for_age(sex, age, v).ok()),
                    _ => HeadCircumferenceCm::new(m.value)
                        .ok()
                        .and_then(|v| growth::head_circumference_for_age(sex, age, v).ok()),
                };
                Some(point(f64::from(age.days()), m, z))
            })
            .collect();
        if !pts.is_empty() {
            let (first, _) = growth::table_range(indicator);
            let mut spec = age_spec(id, indicator, title, y_label);
            spec.keys.0 = first;
            out.push(render(&spec, sex, &pts));
        }
    }
    out
}

fn of_kinds<'m>(ms: &'m [Measurement], kinds: &[MeasurementKind]) -> Vec<&'m Measurement> {
    ms.iter().filter(|m| kinds.contains(&m.kind)).collect()
}

fn point(x: f64, m: &Measurement, z: Option<ZScore>) -> Point {
    Point {
        x,
        y: m.value,
        on: m.measured_on,
        z: z.map(|z| z.rounded()),
    }
}

fn length_of(m: &Measurement) -> Option<LengthMeasurement> {
    let position = if m.kind == MeasurementKind::Length {
        MeasuredPosition::Lying
    } else {
        MeasuredPosition::Standing
    };
    Some(LengthMeasurement::new(
        LengthCm::new(m.value).ok()?,
        position,
    ))
}

/// Weight against length (under two years) or height (from two years), pairing the weight and
/// length measured on the same day.
fn weight_for_length(
    sex: Sex,
    birth: NaiveDate,
    age_now: i64,
    weights: &[&Measurement],
    lengths: &[&Measurement],
) -> Chart {
    let under_two = age_now < 731;
    let (indicator, id, title, x_label) = if under_two {
        (
            Indicator::WeightForLength,
            "wfl",
            "Weight-for-length",
            "length (cm)",
        )
    } else {
        (
            Indicator::WeightForHeight,
            "wfh",
            "Weight-for-height",
            "height (cm)",
        )
    };
    let pts: Vec<Point> = weights
        .iter()
        .filter_map(|w| {
            let l = lengths.iter().find(|l| l.measured_on == w.measured_on)?;
            let age = AgeDays::between(birth, w.measured_on).ok()?;
            let length = length_of(l)?;
            // Only points of the chart's own table (length before two years, height after).
            if (age.days() < 731) != under_two {
                return None;
            }
            let z = WeightKg::new(w.value)
                .ok()
                .and_then(|kg| growth::weight_for_length_or_height(sex, age, kg, length).ok());
            Some(point(length.standardised_cm(age), w, z))
        })
        .collect();
    let spec = Spec {
        id,
        indicator,
        title,
        x_label,
        y_label: "weight (kg)",
        keys: growth::table_range(indicator),
        by_length: true,
    };
    render(&spec, sex, &pts)
}

/// The reference curves: for each SD line, (x, y) points.
fn curves(spec: &Spec, sex: Sex) -> Vec<Vec<(f64, f64)>> {
    let step = if spec.by_length {
        LENGTH_STEP
    } else {
        AGE_STEP
    };
    let mut lines: Vec<Vec<(f64, f64)>> = vec![Vec::new(); SD_LINES.len()];
    let mut key = spec.keys.0;
    loop {
        if let Some(ys) = growth::reference_lines(spec.indicator, sex, key) {
            let x = if spec.by_length {
                f64::from(key) / 10.0
            } else {
                f64::from(key)
            };
            for (line, y) in lines.iter_mut().zip(ys) {
                line.push((x, y));
            }
        }
        if key >= spec.keys.1 {
            break;
        }
        key = (key + step).min(spec.keys.1);
    }
    lines
}

/// A "nice" tick step for a range: 1, 2 or 5 times a power of ten, about six ticks.
fn tick_step(span: f64) -> f64 {
    let raw = span / 6.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn render(spec: &Spec, sex: Sex, pts: &[Point]) -> Chart {
    let lines = curves(spec, sex);
    let xs = lines[0].iter().map(|p| p.0);
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let ys = lines
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(pts.iter().map(|p| p.y));
    let (mut y0, mut y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let ystep = tick_step(y1 - y0);
    y0 = (y0 / ystep).floor() * ystep;
    y1 = (y1 / ystep).ceil() * ystep;
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let sy = |y: f64| TOP + (y1 - y) / (y1 - y0) * (H - TOP - BOTTOM);
    let title_id = format!("chart-{}-title", spec.id);
    let desc_id = format!("chart-{}-desc", spec.id);
    let sex_word = match sex {
        Sex::Female => "girls",
        Sex::Male => "boys",
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"growth-chart\" id=\"chart-{id}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-labelledby=\"{title_id} {desc_id}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{title_id}\">{title} ({sex_word}, WHO 2006)</title>\
         <desc id=\"{desc_id}\">The WHO standard's -3, -2, 0 (median), +2 and +3 SD curves of \
         {title} for {sex_word}, and the child's {n} measurement(s) as dots. The same figures \
         are in the table after the chart.</desc>",
        id = spec.id,
        title = spec.title,
        n = pts.len(),
    );
    // The band between -2 and +2 SD.
    let band: Vec<String> = lines[1]
        .iter()
        .chain(lines[3].iter().rev())
        .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
        .collect();
    let _ = write!(
        svg,
        "<polygon class=\"band\" fill=\"#e6f2e6\" points=\"{}\"/>",
        band.join(" ")
    );
    axes(&mut svg, spec, (x0, x1), (y0, y1, ystep), &sx, &sy);
    for (line, z) in lines.iter().zip(SD_LINES) {
        let d: Vec<String> = line
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let (colour, width) = match z.abs() as u8 {
            0 => ("#2a7a2a", 2),
            2 => ("#c98a00", 1),
            _ => ("#b00020", 1),
        };
        let _ = write!(
            svg,
            "<polyline class=\"sd\" data-sd=\"{z}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"{width}\" points=\"{}\"/>",
            d.join(" ")
        );
        if let Some((x, y)) = line.last() {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                sx(*x) + 3.0,
                sy(*y) + 4.0,
                sd_label(z)
            );
        }
    }
    for p in pts {
        let z = p.z.map(|z| format!(", z = {z}")).unwrap_or_default();
        let _ = write!(
            svg,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#1f4e9c\">\
             <title>{}: {}{z}</title></circle>",
            sx(p.x),
            sy(p.y),
            p.on,
            p.y
        );
    }
    svg.push_str("</svg>");
    Chart {
        id: spec.id,
        title: format!("{} ({sex_word})", spec.title),
        svg,
        x_label: spec.x_label,
        y_label: spec.y_label,
        rows: pts
            .iter()
            .map(|p| ChartRow {
                date: p.on.to_string(),
                x: if spec.by_length {
                    format!("{:.1}", p.x)
                } else {
                    format!("{:.1}", p.x / 30.4375)
                },
                y: p.y.to_string(),
                z: p.z.map(|z| z.to_string()).unwrap_or_default(),
            })
            .collect(),
    }
}

fn sd_label(z: f64) -> String {
    if z > 0.0 {
        format!("+{z}")
    } else {
        format!("{z}")
    }
}

/// Grid, ticks and axis labels: age in months (every 6) or length in cm (every 10).
fn axes(
    svg: &mut String,
    spec: &Spec,
    (x0, x1): (f64, f64),
    (y0, y1, ystep): (f64, f64, f64),
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
) {
    let (bottom, left, right) = (H - BOTTOM, LEFT, W - RIGHT);
    let grid = "stroke=\"#ccc\" stroke-width=\"0.5\"";
    let mut y = y0;
    while y <= y1 + 1e-9 {
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{py:.1}\" y2=\"{py:.1}\" {grid}/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\">{y}</text>",
            py = sy(y),
            tx = left - 4.0,
            ty = sy(y) + 4.0,
        );
        y += ystep;
    }
    // Age ticks every 6 months (in days), length ticks every 10 cm.
    let (step, scale) = if spec.by_length {
        (10.0, 1.0)
    } else {
        (6.0 * 30.4375, 1.0 / 30.4375)
    };
    let mut x = (x0 / step).ceil() * step;
    while x <= x1 + 1e-9 {
        let _ = write!(
            svg,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{bottom}\" {grid}/>\
             <text x=\"{px:.1}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"middle\">{v}</text>",
            px = sx(x),
            ty = bottom + 14.0,
            v = (x * scale).round(),
        );
        x += step;
    }
    let _ = write!(
        svg,
        "<text x=\"{cx}\" y=\"{ly}\" font-size=\"12\" text-anchor=\"middle\">{xl}</text>\
         <text x=\"12\" y=\"{cy}\" font-size=\"12\" text-anchor=\"middle\" \
         transform=\"rotate(-90 12 {cy})\">{yl}</text>",
        cx = (left + right) / 2.0,
        ly = H - 6.0,
        cy = (TOP + bottom) / 2.0,
        xl = spec.x_label,
        yl = spec.y_label,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use inkingi_store::children::{Provenance, Subject};
    use serde_json::json;

    fn m(kind: MeasurementKind, value: f64, on: NaiveDate) -> Measurement {
        Measurement {
            id: uuid::Uuid::nil(),
            subject: Subject {
                person_id: None,
                source_person_id: None,
            },
            kind,
            loinc: String::new(),
            value,
            unit: "kg".into(),
            measured_on: on,
            zscores: json!({}),
            provenance: Provenance {
                source_system: "t".into(),
                source_id: "t".into(),
                received_at: chrono::Utc::now(),
                received_by: "t".into(),
            },
        }
    }

    #[test]
    fn charts_draw_five_sd_lines_and_the_childs_points() {
        let birth = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let on = NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
        let ms = [
            m(MeasurementKind::Weight, 7.3, on),
            m(MeasurementKind::Length, 65.7, on),
        ];
        let today = NaiveDate::from_ymd_opt(2024, 8, 1).unwrap();
        let cs = charts(Sex::Female, birth, today, &ms);
        let ids: Vec<&str> = cs.iter().map(|c| c.id).collect();
        assert_eq!(ids, ["wfa", "lhfa", "wfl"]);
        for c in &cs {
            assert_eq!(c.svg.matches("class=\"sd\"").count(), 5, "{}", c.id);
            assert_eq!(c.svg.matches("<circle").count(), 1, "{}", c.id);
            assert_eq!(c.rows.len(), 1);
            assert!(c.svg.contains("<title id=\"chart-") && c.svg.contains("<desc"));
        }
        // A girl of 182 days weighing her median has z close to 0.
        let z: f64 = cs[0].rows[0].z.parse().unwrap();
        assert!(z.abs() < 0.5, "{z}");
        // Head circumference measured: its chart appears.
        let more = [m(MeasurementKind::HeadCircumference, 42.0, on)];
        assert_eq!(charts(Sex::Male, birth, today, &more).len(), 4);
    }
}
