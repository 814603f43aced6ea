//! `weir report`: the window objects of the `profile` plugin (one JSON
//! line per key and window) as one self-contained HTML page — no script,
//! no fetches: per window a table of each column's figures and a chart
//! per column (an inline SVG histogram for numbers, true/false bars for
//! booleans, the top values for text).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The input cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a profile window.
    #[error("{path}, line {line}: {why}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// Nothing to report.
    #[error("{0} holds no windows")]
    Empty(String),
}

/// One profiled window, as the profile plugin writes it.
#[derive(Debug, Clone)]
pub struct ProfiledWindow {
    /// The key.
    pub key: String,
    /// First instant (RFC 3339).
    pub start: String,
    /// End (RFC 3339).
    pub end: String,
    /// Rows in the window.
    pub rows: u64,
    /// Each column's profile, by name.
    pub columns: Vec<(String, Value)>,
}

/// Reads profile windows from JSON lines (`-`: stdin).
pub fn read(path: &Path) -> Result<Vec<ProfiledWindow>, ReportError> {
    let name = path.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|source| ReportError::Read { path: name.clone(), source })?
    } else {
        std::fs::read_to_string(path).map_err(|source| ReportError::Read { path: name.clone(), source })?
    };
    let mut windows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |why: String| ReportError::Line { path: name.clone(), line: i + 1, why };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let field = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| bad(format!("no text field `{f}` (is this the output of the profile plugin?)")));
        let columns = v.get("columns").and_then(Value::as_object).ok_or_else(|| bad("no object field `columns` (is this the output of the profile plugin?)".to_owned()))?;
        windows.push(ProfiledWindow {
            key: field("key")?,
            start: field("start")?,
            end: field("end")?,
            rows: v.get("rows").and_then(Value::as_u64).unwrap_or(0),
            columns: columns.iter().map(|(k, c)| (k.clone(), c.clone())).collect(),
        });
    }
    if windows.is_empty() {
        return Err(ReportError::Empty(name));
    }
    windows.sort_by(|a, b| (&a.key, &a.start).cmp(&(&b.key, &b.start)));
    Ok(windows)
}

/// The page for `windows`, titled `title`.
pub fn html(title: &str, windows: &[ProfiledWindow]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<p class=\"summary\">{} windows, {} keys, {} rows</p>\n",
        windows.len(),
        windows.iter().map(|w| &w.key).collect::<std::collections::BTreeSet<_>>().len(),
        windows.iter().map(|w| w.rows).sum::<u64>(),
        t = escape(title),
    );
    out.push_str("<nav><ul>\n");
    for (i, w) in windows.iter().enumerate() {
        let _ = writeln!(out, "<li><a href=\"#w{i}\">{} · {}</a></li>", escape(&w.key), escape(&w.start));
    }
    out.push_str("</ul></nav>\n");
    for (i, w) in windows.iter().enumerate() {
        let _ = writeln!(out, "<section class=\"window\" id=\"w{i}\"><h2>{}</h2><p>{} – {} · {} rows</p>", escape(&w.key), escape(&w.start), escape(&w.end), w.rows);
        out.push_str("<div class=\"columns\">\n");
        for (name, c) in &w.columns {
            column(&mut out, name, c);
        }
        out.push_str("</div></section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

// One column: its figures and its chart.
fn column(out: &mut String, name: &str, c: &Value) {
    let kind = c.get("type").and_then(Value::as_str).unwrap_or("float");
    let _ = write!(out, "<div class=\"column\" data-column=\"{n}\"><h3>{n} <small>{kind}</small></h3><table>", n = escape(name));
    let figures: &[&str] = match kind {
        "bool" => &["count", "missing", "true", "false"],
        "text" => &["count", "missing", "distinct"],
        _ => &["count", "missing", "distinct", "mean", "std", "min", "p25", "p50", "p75", "max"],
    };
    for f in figures {
        if let Some(v) = c.get(*f) {
            let _ = write!(out, "<tr><th>{f}</th><td>{}</td></tr>", number(v));
        }
    }
    out.push_str("</table>");
    match kind {
        "bool" => {
            let t = c.get("true").and_then(Value::as_u64).unwrap_or(0);
            let f = c.get("false").and_then(Value::as_u64).unwrap_or(0);
            bars(out, &[("true".to_owned(), t), ("false".to_owned(), f)]);
        }
        "text" => {
            let top: Vec<(String, u64)> = c
                .get("top")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_u64()?))).collect())
                .unwrap_or_default();
            bars(out, &top);
        }
        _ => {
            if let Some(h) = c.get("histogram") {
                let counts: Vec<u64> = h.get("counts").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
                let edges: Vec<f64> = h.get("edges").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
                histogram(out, &counts, &edges);
            }
        }
    }
    out.push_str("</div>\n");
}

const W: f64 = 300.0;
const H: f64 = 120.0;

// Equal-width bins as an SVG bar chart, with the range under it.
fn histogram(out: &mut String, counts: &[u64], edges: &[f64]) {
    if counts.is_empty() {
        return;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = W / counts.len() as f64;
    let _ = write!(out, "<svg class=\"chart\" viewBox=\"0 0 {W} {}\" width=\"{W}\" height=\"{}\" role=\"img\">", H + 16.0, H + 16.0);
    for (i, &n) in counts.iter().enumerate() {
        let h = (n as f64 / max) * H;
        let _ = write!(out, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{n}</title></rect>", i as f64 * bw + 1.0, H - h, bw - 2.0);
    }
    if let (Some(lo), Some(hi)) = (edges.first(), edges.last()) {
        let _ = write!(out, "<text x=\"0\" y=\"{}\">{}</text><text x=\"{W}\" y=\"{}\" text-anchor=\"end\">{}</text>", H + 13.0, short(*lo), H + 13.0, short(*hi));
    }
    out.push_str("</svg>");
}

// Labelled horizontal bars.
fn bars(out: &mut String, items: &[(String, u64)]) {
    if items.is_empty() {
        return;
    }
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let row = 22.0;
    let height = row * items.len() as f64;
    let _ = write!(out, "<svg class=\"chart\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" role=\"img\">");
    for (i, (label, n)) in items.iter().enumerate() {
        let y = i as f64 * row;
        let w = (*n as f64 / max) * (W - 110.0);
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"70\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{n}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            y + 15.0,
            escape(&truncate(label, 10)),
            y + 3.0,
            row - 6.0,
            74.0 + w,
            y + 15.0
        );
    }
    out.push_str("</svg>");
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => short(x),
        _ => escape(&v.to_string()),
    }
}

// Four significant digits.
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_owned() } else { text.chars().take(max - 1).collect::<String>() + "…" }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{margin:0 0 .2em}\
nav ul{columns:3;padding-left:1em}section.window{border-top:1px solid #ccc;margin-top:1.5em}\
.columns{display:flex;flex-wrap:wrap;gap:1.2em}.column{border:1px solid #ddd;border-radius:6px;padding:.6em;width:320px}\
.column h3{margin:.1em 0 .4em}.column small{color:#888;font-weight:normal}table{border-collapse:collapse;margin-bottom:.5em}\
th{text-align:left;font-weight:normal;color:#666;padding-right:1em}td{text-align:right;font-variant-numeric:tabular-nums}\
svg.chart rect{fill:#4a7fb5}svg.chart text{font-size:11px;fill:#444}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_chart_per_column_and_escapes_text() {
        let w = ProfiledWindow {
            key: "<dev>".into(),
            start: "2020-07-12T00:00:00Z".into(),
            end: "2020-07-12T01:00:00Z".into(),
            rows: 3,
            columns: vec![
                ("temp".into(), serde_json::json!({"type":"float","count":3,"missing":0,"mean":2.0,"min":1.0,"max":3.0,"histogram":{"edges":[1.0,2.0,3.0],"counts":[1,2]}})),
                ("light".into(), serde_json::json!({"type":"bool","count":3,"missing":0,"true":1,"false":2})),
            ],
        };
        let page = html("seed 001", &[w]);
        assert_eq!(page.matches("<svg class=\"chart\"").count(), 2);
        assert!(page.contains("&lt;dev&gt;") && !page.contains("<dev>"));
        assert!(page.contains("<th>mean</th><td>2.000</td>"), "{page}");
        assert!(!page.contains("<script"), "self-contained, no script");
    }

    #[test]
    fn a_line_that_is_not_a_profile_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"key\":\"a\",\"start\":\"s\",\"end\":\"e\",\"columns\":{}}\n\n{\"key\":\"b\",\"count\":1}\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.ends_with("line 3: no object field `columns` (is this the output of the profile plugin?)"), "{err}");
        assert_eq!(short(0.0027915834), "0.002792");
        assert_eq!(short(75.41575), "75.42");
    }
}
