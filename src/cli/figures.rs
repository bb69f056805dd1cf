//! SVG figures of the analyses, written beside their tables (as `export --svg` draws curves):
//! a heat map (CKA between layers, a 2-D loss landscape in contour bands) and line curves
//! (1-D landscapes of several runs).

use anyhow::Result;
use plotters::prelude::*;

/// A colour from deep blue (0) through green to yellow (1): viridis' ends and middle.
fn colour(t: f64) -> RGBColor {
    let stops = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let (i, f) = if t >= 2.0 {
        (1, 1.0)
    } else {
        (t as usize, t.fract())
    };
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// `values[row][column]` as coloured cells between `lo` and `hi` (`bands`: that many flat
/// colour bands, a contour map; else a continuous scale), labelled on both axes.
pub fn heat_map(
    title: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<f64>],
    (lo, hi): (f64, f64),
    bands: Option<usize>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let cell = (560 / columns.len().max(rows.len()).max(1)).clamp(6, 48) as i32;
        let (left, top) = (90, 50);
        let width = left + cell * columns.len() as i32 + 130;
        let height = top + cell * rows.len() as i32 + 90;
        let root =
            SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 16)))?;
        let span = (hi - lo).max(1e-12);
        for (i, row) in values.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let mut t = (v - lo) / span;
                if let Some(n) = bands {
                    t = ((t * n as f64).floor() / (n.max(2) - 1) as f64).min(1.0);
                }
                let (x, y) = (left + cell * j as i32, top + cell * i as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    colour(t).filled(),
                ))?;
            }
        }
        let every = |n: usize| (n / 24).max(1);
        for (i, name) in rows.iter().enumerate().step_by(every(rows.len())) {
            let y = top + cell * i as i32 + cell / 2 - 6;
            root.draw(&Text::new(name.clone(), (8, y), ("sans-serif", 12)))?;
        }
        for (j, name) in columns.iter().enumerate().step_by(every(columns.len())) {
            let x = left + cell * j as i32;
            let y = top + cell * rows.len() as i32 + 6;
            root.draw(&Text::new(name.clone(), (x, y), ("sans-serif", 11)))?;
        }
        // The scale.
        let x = left + cell * columns.len() as i32 + 30;
        for k in 0..100 {
            let y = top + 200 - 2 * k;
            root.draw(&Rectangle::new(
                [(x, y - 2), (x + 16, y)],
                colour(k as f64 / 99.0).filled(),
            ))?;
        }
        root.draw(&Text::new(
            format!("{hi:.3}"),
            (x + 22, top - 4),
            ("sans-serif", 12),
        ))?;
        root.draw(&Text::new(
            format!("{lo:.3}"),
            (x + 22, top + 192),
            ("sans-serif", 12),
        ))?;
        root.present()?;
    }
    Ok(svg)
}

/// Curves `(label, points)` on one chart.
pub fn curves(
    title: &str,
    x: &str,
    y: &str,
    curves: &[(String, Vec<(f64, f64)>)],
) -> Result<String> {
    let mut svg = String::new();
    {
        let points = curves.iter().flat_map(|(_, p)| p.iter());
        let (x0, x1, y0, y1) = points.fold(
            (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
            |(a, b, c, d), &(px, py)| (a.min(px), b.max(px), c.min(py), d.max(py)),
        );
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (-1.0, 1.0) };
        let (y0, y1) = if y0 < y1 {
            (y0, y1)
        } else {
            (y0 - 1.0, y0 + 1.0)
        };
        let legend_rows = curves.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (900, 480 + 16 + 22 * legend_rows))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_vertically(480);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart.configure_mesh().x_desc(x).y_desc(y).draw()?;
        for (i, (label, points)) in curves.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
            let row = 8 + 22 * i as i32 + 11;
            legend.draw(&PathElement::new(
                vec![(60, row), (90, row)],
                colour.stroke_width(2),
            ))?;
            legend.draw(&Text::new(
                label.clone(),
                (100, row - 7),
                ("sans-serif", 14),
            ))?;
        }
        root.present()?;
    }
    Ok(svg)
}
