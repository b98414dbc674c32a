//! The plot of a run (`bench/results/latest.svg`, shown in README.md): one panel
//! per thread count; for each model a group of bars, one per system, each the
//! system's median time over ONNX Runtime's on a log scale (below the line at 1×
//! is faster than ONNX Runtime). A system with no time on a model gets a mark
//! saying why (n/a, mismatch, error) instead of a bar.

use crate::report::{Run, Status};
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 70.0;
/// The log2 range of the ratio axis: 1/8× … 16×.
const LO: f64 = -3.0;
const HI: f64 = 4.0;

/// Systems plotted against ONNX Runtime, with their colors.
const SERIES: [(&str, &str, &str); 3] = [
    ("tract", "tract", "#8c8c8c"),
    ("smelt-cranelift", "smelt cranelift", "#d95f02"),
    ("smelt-llvm", "smelt llvm", "#1b9e77"),
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The SVG document.
pub fn plot(run: &Run) -> String {
    let threads = run.threads();
    let models = run.models();
    let series: Vec<_> = SERIES.iter().filter(|(s, ..)| run.entries.iter().any(|e| e.system == *s)).collect();
    let height = TOP + threads.len() as f64 * (PANEL + BOTTOM) + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Inference time relative to ONNX Runtime {} (log scale, lower is better)</text>"#,
        WIDTH / 2.0,
        esc(run.versions.get("onnxruntime").map(String::as_str).unwrap_or(""))
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="40" text-anchor="middle" fill="#555">{}</text>"##,
        WIDTH / 2.0,
        esc(&format!("{} · {} · smelt {} at -{}", run.date, run.machine.cpu, run.smelt_commit, run.opt_level))
    );
    // Legend.
    let mut lx = WIDTH - RIGHT - 130.0 * series.len() as f64;
    for (_, label, color) in &series {
        let _ = writeln!(s, r#"<rect x="{lx}" y="48" width="12" height="12" fill="{color}"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="58">{}</text>"#, lx + 16.0, esc(label));
        lx += 130.0;
    }
    let plot_w = WIDTH - LEFT - RIGHT;
    let group_w = if models.is_empty() { plot_w } else { plot_w / models.len() as f64 };
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).min(28.0);
    for (pi, &t) in threads.iter().enumerate() {
        let top = TOP + 14.0 + pi as f64 * (PANEL + BOTTOM);
        let y_of = |log: f64| top + (HI - log.clamp(LO, HI)) / (HI - LO) * PANEL;
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{t} thread{}</text>"#,
            top - 4.0,
            if t == 1 { "" } else { "s" }
        );
        // Grid and axis labels.
        for k in (LO as i32)..=(HI as i32) {
            let y = y_of(f64::from(k));
            let label = if k >= 0 { format!("{}×", 1u32 << k) } else { format!("1/{}×", 1u32 << -k) };
            let (stroke, w) = if k == 0 { ("#000", 1.5) } else { ("#ddd", 1.0) };
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}" stroke-width="{w}"/>"#,
                WIDTH - RIGHT
            );
            let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#, LEFT - 6.0, y + 4.0);
        }
        let base = y_of(0.0);
        for (mi, m) in models.iter().enumerate() {
            let gx = LEFT + mi as f64 * group_w;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + group_w / 2.0,
                top + PANEL + 18.0,
                esc(m)
            );
            if let Some(o) = run.get(m, "onnxruntime", t).and_then(|e| e.timed()) {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555" font-size="10">ORT {} ms</text>"##,
                    gx + group_w / 2.0,
                    top + PANEL + 32.0,
                    crate::report::fmt_ms(o)
                );
            }
            let x0 = gx + (group_w - bar_w * series.len() as f64) / 2.0;
            for (si, (system, _, color)) in series.iter().enumerate() {
                let x = x0 + si as f64 * bar_w;
                let cx = x + bar_w / 2.0;
                let entry = run.get(m, system, t);
                match run.ratio_to(m, system, "onnxruntime", t) {
                    Some(r) => {
                        let log = r.log2();
                        let y = y_of(log);
                        let (y0, h) = if y < base { (y, base - y) } else { (base, y - base) };
                        let _ = writeln!(
                            s,
                            r#"<rect x="{:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}</title></rect>"#,
                            x + 1.0,
                            bar_w - 2.0,
                            h.max(1.0),
                            esc(&format!("{system} on {m}, {t} thread(s): {r:.2}× ONNX Runtime"))
                        );
                        let clipped = if !(LO..=HI).contains(&log) { "↕" } else { "" };
                        let ty = if log >= 0.0 { y0 - 3.0 } else { y0 + h + 11.0 };
                        let _ = writeln!(
                            s,
                            r#"<text x="{cx:.1}" y="{ty:.1}" text-anchor="middle" font-size="9">{clipped}{}</text>"#,
                            format_ratio(r)
                        );
                    }
                    None => {
                        let why = match entry.map(|e| e.status) {
                            Some(Status::Mismatch) => "✗",
                            Some(Status::Error) => "err",
                            _ => "n/a",
                        };
                        let _ = writeln!(
                            s,
                            r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="{color}">{why}</text>"##,
                            base - 3.0
                        );
                    }
                }
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn format_ratio(r: f64) -> String {
    if r >= 10.0 { format!("{r:.0}") } else { format!("{r:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Entry;

    #[test]
    fn bars_marks_and_escaping() {
        let mut run = Run { date: "2026-11-27".into(), ..Run::default() };
        run.machine.cpu = "A<B>".into();
        let mut e = |m: &str, sys: &str, st: Status, ms: f64| {
            let mut x = Entry::new(m, sys, 1, st);
            x.median_ms = Some(ms);
            run.entries.push(x);
        };
        e("m1", "onnxruntime", Status::Ok, 10.0);
        e("m1", "tract", Status::Ok, 20.0);
        e("m1", "smelt-cranelift", Status::Ok, 5.0);
        e("m1", "smelt-llvm", Status::NotAvailable, 0.0);
        e("m2", "onnxruntime", Status::Ok, 1.0);
        e("m2", "smelt-cranelift", Status::Mismatch, 1.0);
        e("m2", "tract", Status::Ok, 1000.0);
        let svg = plot(&run);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("A&lt;B&gt;") && !svg.contains("A<B>"));
        // tract at 2×, cranelift at 0.5×, tract at 1000× is clipped.
        assert!(svg.contains(">2.00</text>") && svg.contains(">0.50</text>") && svg.contains(">↕1000</text>"));
        assert!(svg.contains(">n/a</text>") && svg.contains(">✗</text>"));
        assert_eq!(svg.matches("<rect x=").count(), 3 + 3, "3 legend swatches and 3 bars:\n{svg}");
    }
}
