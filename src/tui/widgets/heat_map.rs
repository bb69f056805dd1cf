//! One heat map for every view that shows a matrix: a labelled row per item, a column per
//! item, each cell a shade from light to heavy, one cell selected; and the shades themselves,
//! which the gradient-flow view draws over time.

use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};

/// Shades from the lowest value to the highest.
pub const SHADES: [(&str, Color); 5] = [
    ("░", Color::Blue),
    ("▒", Color::Cyan),
    ("▓", Color::Green),
    ("█", Color::Yellow),
    ("█", Color::Red),
];

/// The shade of a value at `share` of the way from the lowest to the highest (clamped).
pub fn shade(share: f64) -> (&'static str, Color) {
    let top = (SHADES.len() - 1) as f64;
    let share = if share.is_nan() { 0.0 } else { share };
    SHADES[(share.clamp(0.0, 1.0) * top).round() as usize]
}

/// What the selected cell shows.
const SELECTED: &str = "◆";

/// The scale's ends as a legend: `░ low .. █ high`.
pub fn legend(low: &str, high: &str, style: Style) -> Vec<Span<'static>> {
    let (first, last) = (SHADES[0], SHADES[SHADES.len() - 1]);
    vec![
        Span::styled(first.0, Style::default().fg(first.1)),
        Span::styled(format!(" {low} .. "), style),
        Span::styled(last.0, Style::default().fg(last.1)),
        Span::styled(format!(" {high}"), style),
    ]
}

/// A matrix to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    /// Above the row labels.
    pub corner: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// Each cell's place on the scale, 0 (lowest) to 1 (highest); `None`: there is no cell
    /// (drawn as a dot).
    pub shares: Vec<Vec<Option<f64>>>,
    /// The selected cell, (row, column).
    pub selected: (usize, usize),
}

/// Room for a row's label.
const LABEL_WIDTH: usize = 8;

impl HeatMap {
    /// The map as lines `width` wide and at most `height` high: a header of column names,
    /// then as many rows as fit, scrolled to keep the selected one in view. Cells are as wide
    /// as the room allows, up to the width of a layer's name.
    pub fn lines(&self, width: usize, height: usize) -> Vec<Line<'static>> {
        let cols = self.columns.len().max(1);
        let cell = (width.saturating_sub(LABEL_WIDTH + 1) / cols).clamp(1, 7);
        let fill = cell.saturating_sub(1).max(1);
        let gap = " ".repeat(cell - fill);
        let shown = height.saturating_sub(1);
        let (row, column) = self.selected;
        let first = row
            .saturating_sub(shown.saturating_sub(1))
            .min(self.rows.len().saturating_sub(shown));
        let mut header = format!("{:<LABEL_WIDTH$}", self.corner);
        for name in &self.columns {
            header.push_str(&format!("{:<cell$}", column_label(name, fill)));
        }
        let mut lines = vec![Line::from(header).bold()];
        for (i, label) in self.rows.iter().enumerate().skip(first).take(shown) {
            let label: String = label.chars().take(LABEL_WIDTH - 1).collect();
            let mut spans = vec![Span::raw(format!("{label:<LABEL_WIDTH$}"))];
            for j in 0..self.columns.len() {
                match self.shares.get(i).and_then(|r| r.get(j)).copied().flatten() {
                    Some(share) => {
                        let (symbol, colour) = shade(share);
                        // The selected cell: dark diamonds on its colour (a background
                        // would not show behind a full block).
                        spans.push(match (i, j) == (row, column) {
                            true => Span::styled(
                                SELECTED.repeat(fill),
                                Style::default().fg(Color::Black).bg(colour),
                            ),
                            false => Span::styled(symbol.repeat(fill), Style::default().fg(colour)),
                        });
                    }
                    None => spans.push(Span::styled(
                        format!("{:<fill$}", "·"),
                        Style::default().fg(Color::DarkGray),
                    )),
                }
                spans.push(Span::raw(gap.clone()));
            }
            lines.push(Line::from(spans));
        }
        lines
    }
}

/// A column's name in `width` characters: whole where it fits, else its number (`fc18` is
/// `18`: the rows name the layers in full), else its first characters.
fn column_label(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        return name.to_string();
    }
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    match digits {
        d if d > 0 && d <= width => name[name.len() - d..].to_string(),
        _ => name.chars().take(width).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn shades_span_the_scale_and_clamp() {
        assert_eq!(shade(0.0), SHADES[0]);
        assert_eq!(shade(1.0), SHADES[4]);
        assert_eq!(shade(0.5), SHADES[2]);
        assert_eq!(shade(-3.0), SHADES[0]);
        assert_eq!(shade(7.0), SHADES[4]);
        assert_eq!(shade(f64::NAN), SHADES[0]);
    }

    #[test]
    fn narrow_columns_are_labelled_by_their_layer_number() {
        assert_eq!(column_label("fc3", 6), "fc3");
        assert_eq!(column_label("fc18", 2), "18");
        assert_eq!(column_label("conv7", 3), "7");
        assert_eq!(column_label("head", 2), "he");
        assert_eq!(column_label("fc123", 2), "fc");
    }

    #[test]
    fn rows_scroll_to_keep_the_selected_one_shown() {
        let names: Vec<String> = (0..10).map(|i| format!("fc{i}")).collect();
        let map = HeatMap {
            corner: "from\\to".into(),
            rows: names.clone(),
            columns: names[..3].to_vec(),
            shares: (0..10)
                .map(|i| vec![Some(0.0), None, Some(f64::from(i) / 9.0)])
                .collect(),
            selected: (8, 2),
        };
        let lines = map.lines(40, 5);
        assert_eq!(lines.len(), 5);
        assert!(text(&lines[0]).starts_with("from\\to fc0"));
        // Rows 5..=8 shown: the selected one last.
        assert!(text(&lines[1]).starts_with("fc5"), "{}", text(&lines[1]));
        assert!(text(&lines[4]).starts_with("fc8"));
        // Empty cells are dots; the selected cell shows diamonds on its shade's colour.
        assert!(text(&lines[4]).contains('·'));
        let selected: Vec<&Span> = lines[4]
            .spans
            .iter()
            .filter(|s| s.content.contains(SELECTED))
            .collect();
        assert_eq!(selected.len(), 1);
        assert_eq!(selected[0].style.bg, Some(SHADES[4].1));
    }
}
