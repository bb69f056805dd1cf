//! A field over a square grid (a 2-D loss landscape) drawn as filled contour bands at the
//! terminal's resolution: each cell takes the field bilinearly interpolated at its centre,
//! and its band (between two contour levels) sets both its colour and its glyph, so the
//! bands read without colour too (`NO_COLOR`, `--ascii`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;

/// The bands from the lowest to the highest: a glyph growing heavier and a colour from blue
/// to magenta.
pub const BANDS: [(&str, Color); 8] = [
    (".", Color::Blue),
    (":", Color::LightBlue),
    ("-", Color::Cyan),
    ("=", Color::Green),
    ("+", Color::Yellow),
    ("*", Color::LightRed),
    ("#", Color::Red),
    ("@", Color::Magenta),
];

/// Contour levels between `lo` and `hi`: `BANDS.len() - 1` boundaries, spaced evenly on a
/// log scale where the field is positive and spans more than a factor of 10 (a loss does,
/// away from the minimum), else evenly.
pub fn levels(lo: f64, hi: f64) -> Vec<f64> {
    let n = BANDS.len();
    let logarithmic = lo > 0.0 && hi / lo > 10.0;
    (1..n)
        .map(|k| {
            let t = k as f64 / n as f64;
            if logarithmic {
                lo * (hi / lo).powf(t)
            } else {
                lo + (hi - lo) * t
            }
        })
        .collect()
}

/// The band `value` falls in: how many levels lie at or below it.
pub fn band(value: f64, levels: &[f64]) -> usize {
    levels.iter().take_while(|&&l| l <= value).count()
}

/// A field sampled on `points × points` grid points, row by row; rows are the first axis
/// (drawn upwards), columns the second (drawn rightwards).
#[derive(Clone, Debug, PartialEq)]
pub struct ContourMap<'a> {
    pub values: &'a [f64],
    pub points: usize,
    pub levels: &'a [f64],
    /// Where to mark the centre of the grid (the trained weights).
    pub centre: &'a str,
}

impl ContourMap<'_> {
    /// The field at fractional grid coordinates (`row`, `column`), bilinearly.
    fn at(&self, row: f64, column: f64) -> f64 {
        let last = (self.points - 1) as f64;
        let (r, c) = (row.clamp(0.0, last), column.clamp(0.0, last));
        let (r0, c0) = (r.floor() as usize, c.floor() as usize);
        let (r1, c1) = ((r0 + 1).min(self.points - 1), (c0 + 1).min(self.points - 1));
        let (fr, fc) = (r - r0 as f64, c - c0 as f64);
        let v = |i: usize, j: usize| self.values[i * self.points + j];
        let top = v(r0, c0) * (1.0 - fc) + v(r0, c1) * fc;
        let bottom = v(r1, c0) * (1.0 - fc) + v(r1, c1) * fc;
        top * (1.0 - fr) + bottom * fr
    }

    /// The square (by eye: a cell is about twice as tall as wide) the map fills in `area`.
    pub fn square(area: Rect) -> Rect {
        let height = area.height.min(area.width / 2).max(1);
        Rect::new(area.x, area.y, (height * 2).min(area.width), height)
    }
}

impl Widget for ContourMap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if self.points < 2 || self.values.len() != self.points * self.points {
            return;
        }
        let area = Self::square(area);
        let last = (self.points - 1) as f64;
        let scale = |i: u16, n: u16| match n {
            0 | 1 => last / 2.0,
            n => last * f64::from(i) / f64::from(n - 1),
        };
        for y in 0..area.height {
            // The first axis grows upwards.
            let row = last - scale(y, area.height);
            for x in 0..area.width {
                let value = self.at(row, scale(x, area.width));
                let (glyph, colour) = BANDS[band(value, self.levels).min(BANDS.len() - 1)];
                buf[(area.x + x, area.y + y)]
                    .set_symbol(glyph)
                    .set_style(Style::default().fg(colour));
            }
        }
        let (cx, cy) = (area.x + area.width / 2, area.y + area.height / 2);
        buf[(cx, cy)]
            .set_symbol(self.centre)
            .set_style(Style::default().fg(Color::White));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_logarithmic_for_a_wide_positive_range_and_bands_count_them() {
        let l = levels(0.1, 100.0);
        assert_eq!(l.len(), BANDS.len() - 1);
        // Equal ratios between neighbours.
        let ratios: Vec<f64> = l.windows(2).map(|w| w[1] / w[0]).collect();
        assert!(
            ratios.iter().all(|r| (r - ratios[0]).abs() < 1e-9),
            "{ratios:?}"
        );
        let linear = levels(1.0, 2.0);
        assert!((linear[1] - linear[0] - 0.125).abs() < 1e-12);
        assert_eq!(band(0.05, &l), 0);
        assert_eq!(band(1000.0, &l), BANDS.len() - 1);
        assert_eq!(band(l[2], &l), 3);
    }

    #[test]
    fn a_bowl_draws_rings_around_its_centre() {
        // loss = 1 + a² + b² on 5 × 5 points over [-1, 1].
        let axis = [-1.0, -0.5, 0.0, 0.5, 1.0];
        let values: Vec<f64> = axis
            .iter()
            .flat_map(|a| axis.iter().map(move |b| 1.0 + a * a + b * b))
            .collect();
        let l = levels(1.0, 3.0);
        let map = ContourMap {
            values: &values,
            points: 5,
            levels: &l,
            centre: "o",
        };
        let area = Rect::new(0, 0, 22, 11);
        let mut buf = Buffer::empty(area);
        map.render(area, &mut buf);
        let row =
            |y: u16| -> String { (0..22).map(|x| buf[(x, y)].symbol().to_string()).collect() };
        // A square 22 wide, 11 high; the centre marked, the lowest band around it, the
        // highest in the corners.
        assert_eq!(&row(5)[11..12], "o");
        assert_eq!(buf[(12, 5)].symbol(), ".");
        assert_eq!(buf[(0, 0)].symbol(), "@");
        assert_eq!(buf[(21, 10)].symbol(), "@");
        // Symmetric: left and right, top and bottom.
        assert_eq!(row(3), row(7));
        let line = row(2);
        assert_eq!(line, line.chars().rev().collect::<String>());
    }
}
