//! Plots as SVG text, written by hand: dots, lines and labels need no plotting library, and
//! no fonts on the machine that writes the report (the reader's browser sets the text).

/// Scale `v` to [0, 1] over [lo, hi] (0.5 when they are equal).
pub(crate) fn unit(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small SVG canvas: the plots are dots, lines and labels, which needs no plotting library
/// (and no fonts on the machine that writes the report: the reader's browser sets the text).
pub(crate) struct Svg {
    body: String,
    width: u32,
    height: u32,
}

impl Svg {
    pub(crate) fn new(width: u32, height: u32, title: &str) -> Self {
        let mut s = Self {
            body: String::new(),
            width,
            height,
        };
        s.text(width as f64 / 2.0, 20.0, title, "middle", 15);
        s
    }

    pub(crate) fn text(&mut self, x: f64, y: f64, text: &str, anchor: &str, size: u32) {
        self.body.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-family=\"sans-serif\" \
             font-size=\"{size}\">{}</text>\n",
            escape(text)
        ));
    }

    pub(crate) fn dot(&mut self, x: f64, y: f64, colour: &str) {
        self.body.push_str(&format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{colour}\" fill-opacity=\"0.7\"/>\n"
        ));
    }

    pub(crate) fn line(&mut self, a: (f64, f64), b: (f64, f64), colour: &str) {
        self.body.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\"/>\n",
            a.0, a.1, b.0, b.1
        ));
    }

    pub(crate) fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.height
        )
    }
}

/// Ten colours that stay apart (Tableau's).
pub(crate) const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
