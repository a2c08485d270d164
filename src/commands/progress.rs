//! The progress bar of commands that stream events (convert, inject).

use anyhow::{anyhow, Result};
use indicatif::{ProgressState, ProgressStyle};

/// `{prefix} [=====>    ] 402000/2000000 events, 1112290 events/s, eta 1s`; the prefix is a
/// template part too (`{msg}` for a message set per input).
pub fn events_style(prefix: &str) -> Result<ProgressStyle> {
    Ok(ProgressStyle::with_template(&format!(
        "{prefix} [{{bar:30}}] {{pos}}/{{len}} events, {{rate}} events/s, eta {{eta}}"
    ))
    .map_err(|e| anyhow!("{e}"))?
    .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        // Writing to the bar's line buffer cannot fail.
        let _ = write!(w, "{:.0}", s.per_sec());
    })
    .progress_chars("=> "))
}
