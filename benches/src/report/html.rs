//! The report's HTML page, rendered from its Markdown so the two never disagree.
//!
//! `pulldown-cmark` turns the Markdown into HTML (headings, tables with their column
//! alignment, lists, inline markup). Our code does what it does not: a paragraph that is
//! only a chart (`![title](charts/<name>.svg)`) becomes a `<figure>` with the chart's SVG
//! inline, so `index.html` is one self-contained file; a chart that was not drawn becomes a
//! note saying so.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const HEAD: &str = "<meta charset=\"utf-8\">\n<style>\
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px}\
th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}figure{margin:1em 0}</style>\n";

/// The page for `markdown`; `chart(name)` returns the SVG of `charts/<name>` if drawn.
pub fn to_html(title: &str, markdown: &str, chart: &dyn Fn(&str) -> Option<String>) -> String {
    let events: Vec<Event> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    let mut body = String::new();
    html::push_html(&mut body, inline_charts(events, chart).into_iter());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><title>{}</title>\n{HEAD}</head><body>\n\
         {body}</body></html>\n",
        escape(title)
    )
}

/// Replaces each paragraph that holds only an image of `charts/<name>` with a figure: the
/// chart's SVG and the image's text as its caption.
fn inline_charts<'a>(
    events: Vec<Event<'a>>,
    chart: &dyn Fn(&str) -> Option<String>,
) -> Vec<Event<'a>> {
    let mut out = Vec::with_capacity(events.len());
    let mut i = 0;
    while i < events.len() {
        if let Some((figure, used)) = chart_paragraph(&events[i..], chart) {
            out.push(Event::Html(figure.into()));
            i += used;
        } else {
            out.push(events[i].clone());
            i += 1;
        }
    }
    out
}

/// If `events` start with a paragraph holding one image and nothing else: its figure and
/// the number of events it spans.
fn chart_paragraph(
    events: &[Event<'_>],
    chart: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, usize)> {
    let [Event::Start(Tag::Paragraph), Event::Start(Tag::Image { dest_url, .. }), rest @ ..] =
        events
    else {
        return None;
    };
    let end = rest.iter().position(|e| matches!(e, Event::End(TagEnd::Image)))?;
    if !matches!(rest.get(end + 1), Some(Event::End(TagEnd::Paragraph))) {
        return None;
    }
    let caption: String = rest[..end]
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    let name = dest_url.trim_start_matches("charts/");
    let figure = match chart(name) {
        Some(svg) => {
            format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", escape(&caption))
        }
        None => format!("<p>(chart {} not drawn)</p>\n", escape(name)),
    };
    Some((figure, end + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_charts_and_inline_markup() {
        let md = "# T\n\n| a | b |\n|---|---:|\n| **x** | `1` |\n\n![c](charts/c.svg)\n\n\
                  ![gone](charts/gone.svg)\n\n- one\n- two\n\n### Sub\n";
        let html = to_html("t", md, &|n| (n == "c.svg").then(|| "<svg/>".to_owned()));
        assert!(
            html.contains("<td><strong>x</strong></td>")
                && html.contains("<td style=\"text-align: right\"><code>1</code></td>"),
            "{html}"
        );
        assert!(html.contains("<figure><svg/><figcaption>c</figcaption></figure>"), "{html}");
        assert!(html.contains("<p>(chart gone.svg not drawn)</p>"), "{html}");
        assert!(!html.contains("<img"), "every chart is inlined or noted: {html}");
        assert!(html.contains("<li>two</li>\n</ul>"), "{html}");
        assert!(html.contains("<h3>Sub</h3>"), "{html}");
    }

    #[test]
    fn an_image_inside_text_is_left_to_the_markdown_renderer() {
        let md = "see ![c](charts/c.svg) here\n";
        let html = to_html("t", md, &|_| Some("<svg/>".to_owned()));
        assert!(!html.contains("<figure>") && html.contains("<img"), "{html}");
    }
}
