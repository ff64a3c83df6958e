//! The report's HTML page, rendered from its Markdown so the two never disagree: headings,
//! tables, lists and paragraphs, with each chart's SVG embedded inline.

use std::fmt::Write as _;

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Inline Markdown: `code`, **bold** and *italic*, on escaped text.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    for (i, part) in escape(s).split('`').enumerate() {
        if i > 0 {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
        }
        if code {
            out.push_str(part);
        } else {
            out.push_str(&emphasis(part));
        }
    }
    out
}

fn emphasis(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split("**").enumerate() {
        if i > 0 {
            out.push_str(if i % 2 == 1 { "<b>" } else { "</b>" });
        }
        for (j, p) in part.split('*').enumerate() {
            if j > 0 {
                out.push_str(if j % 2 == 1 { "<i>" } else { "</i>" });
            }
            out.push_str(p);
        }
    }
    out
}

fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_start_matches('|').trim_end_matches('|').split('|').map(str::trim).collect()
}

/// The page for `markdown`; `chart(name)` returns the SVG of `charts/<name>` if drawn.
pub fn to_html(title: &str, markdown: &str, chart: &dyn Fn(&str) -> Option<String>) -> String {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:14px}}td,th{{border:1px solid #ccc;padding:3px 8px}}\
         td{{text-align:right}}td:first-child,td:nth-child(2),td:nth-child(3){{text-align:left}}\
         th{{background:#f3f3f3}}code{{background:#f6f6f6;padding:0 3px}}figure{{margin:1em 0}}</style>\n\
         </head><body>",
        escape(title)
    );
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    let mut in_list = false;
    while i < lines.len() {
        let line = lines[i];
        if in_list && !line.starts_with("- ") && !line.starts_with("  ") {
            h.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", inline(t));
        } else if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(h, "<h1>{}</h1>", inline(t));
        } else if line.starts_with('|') {
            h.push_str("<table>\n");
            let header = cells(line);
            h.push_str("<tr>");
            for c in header {
                let _ = write!(h, "<th>{}</th>", inline(c));
            }
            h.push_str("</tr>\n");
            i += 1; // the |---| line
            while i + 1 < lines.len() && lines[i + 1].starts_with('|') {
                i += 1;
                h.push_str("<tr>");
                for c in cells(lines[i]) {
                    let _ = write!(h, "<td>{}</td>", inline(c));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        } else if let Some(rest) = line.strip_prefix("![") {
            let (alt, target) = rest.split_once("](").unwrap_or((rest, ""));
            let name = target.trim_end_matches(')').trim_start_matches("charts/");
            match chart(name) {
                Some(svg) => {
                    let _ = writeln!(
                        h,
                        "<figure>{svg}<figcaption>{}</figcaption></figure>",
                        inline(alt)
                    );
                }
                None => {
                    let _ = writeln!(h, "<p>(chart {} not drawn)</p>", escape(name));
                }
            }
        } else if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                h.push_str("<ul>\n");
                in_list = true;
            }
            let _ = write!(h, "<li>{}", inline(item));
            while i + 1 < lines.len() && lines[i + 1].starts_with("  ") {
                i += 1;
                let _ = write!(h, " {}", inline(lines[i].trim()));
            }
            h.push_str("</li>\n");
        } else if !line.trim().is_empty() {
            let _ = writeln!(h, "<p>{}</p>", inline(line.trim_end_matches("  ")));
        }
        i += 1;
    }
    if in_list {
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_charts_and_inline_markup() {
        let md =
            "# T\n\n| a | b |\n|---|---:|\n| **x** | `1` |\n\n![c](charts/c.svg)\n- one\n- two\n";
        let html = to_html("t", md, &|n| (n == "c.svg").then(|| "<svg/>".to_owned()));
        assert!(html.contains("<td><b>x</b></td><td><code>1</code></td>"), "{html}");
        assert!(html.contains("<figure><svg/>"), "{html}");
        assert!(html.contains("<li>two</li>\n</ul>"), "{html}");
    }
}
