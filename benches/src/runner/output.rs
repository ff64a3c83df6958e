//! Output: the report's files on disk.

use std::fs;
use std::path::{Path, PathBuf};

use crate::report::{self, charts, html, Report};
use crate::BenchError;

/// Writes `report.json`, `report.md`, `index.html` and `charts/*.svg` into `out`;
/// returns the files written.
pub fn write(report: &Report, out: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let charts_dir = out.join("charts");
    fs::create_dir_all(&charts_dir)
        .map_err(BenchError::io("creating the charts directory", &charts_dir))?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> Result<(), BenchError> {
        fs::write(&path, bytes).map_err(BenchError::io("writing a report file", &path))?;
        written.push(path);
        Ok(())
    };
    let charts = charts::all_charts(report)?;
    for (name, svg) in &charts {
        put(charts_dir.join(name), svg.as_bytes())?;
    }
    let json_path = out.join("report.json");
    let json = serde_json::to_string_pretty(report)
        .map_err(|source| BenchError::Json { path: json_path.clone(), source })?;
    put(json_path, json.as_bytes())?;
    let md = report::to_markdown(report);
    put(out.join("report.md"), md.as_bytes())?;
    let page = html::to_html("paxstore backend comparison", &md, &|name| {
        charts.iter().find(|(n, _)| n == name).map(|(_, svg)| svg.clone())
    });
    put(out.join("index.html"), page.as_bytes())?;
    Ok(written)
}
