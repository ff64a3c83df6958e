//! How figures are written for people: thousands separators, ratios, percentages.

/// A number with thousands separators, and two significant decimals below 10.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    if x.abs() < 10.0 {
        return format!("{x:.2}");
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A count per decided entry: three significant figures below 1 (`0.00300`, `0.333`), so
/// one write per thousand entries does not read as zero.
pub fn fmt_per_entry(x: f64) -> String {
    if x.is_finite() && x > 0.0 && x < 1.0 {
        let decimals = (2.0 - x.log10().floor()).clamp(0.0, 9.0) as usize;
        format!("{x:.decimals$}")
    } else {
        fmt_num(x)
    }
}

/// A ratio with two significant figures or one decimal, e.g. `2.4` or `37`.
pub fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// A fraction as a percentage, e.g. `87%`.
pub fn fmt_pct(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x < 0.1 {
        format!("{:.1}%", x * 100.0)
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

/// The spread of repetitions as `min–max`.
pub(crate) fn spread(min: f64, max: f64) -> String {
    format!("{}–{}", fmt_num(min), fmt_num(max))
}

/// A cell's write amplification for the progress line: device bytes per payload byte
/// (the lowest repetition), the idle baseline of that repetition, the backend's own
/// count and the page cache dirtied.
pub fn fmt_device_writes(reps: &[super::DeviceWrites]) -> String {
    let per = |x: Option<f64>| x.map_or("–".to_owned(), fmt_ratio);
    let lowest = super::DeviceWrites::lowest(reps);
    let Some(d) = reps.iter().find(|d| d.amplification() == lowest) else {
        return "no device figure".to_owned();
    };
    format!(
        "{} device B per payload B (idle {}, own {}, dirtied {})",
        per(lowest),
        per(d.noise()),
        per(d.own_amplification()),
        per(d.dirtied_bytes.map(|b| b as f64 / d.payload_bytes.max(1) as f64))
    )
}
