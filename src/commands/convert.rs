//! `hepml convert CONFIG -o OUT.h5`: ROOT ntuples -> one pandas-readable HDF5 table.

use crate::cli::ConvertArgs;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use models::config::ConvertConfig;

pub fn run(a: ConvertArgs) -> Result<()> {
    let cfg = ConvertConfig::from_file(&a.config)?;
    let total = models::convert::count_entries(&cfg)?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("convert [{bar:30}] {pos}/{len} events, {per_sec}, eta {eta}")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    let t0 = std::time::Instant::now();
    let stats = models::convert::convert(&cfg, &a.output, |n| bar.inc(n))
        .with_context(|| a.config.display().to_string())?;
    bar.finish_and_clear();
    let kept: u64 = stats.iter().map(|s| s.kept).sum();
    for s in &stats {
        eprintln!(
            "hepml: sample {}: {} file(s), {} events read, {} kept ({:.1}%), weight sum {:.6}",
            s.name,
            s.files,
            s.read,
            s.kept,
            100.0 * s.kept as f64 / s.read.max(1) as f64,
            s.weight_sum
        );
    }
    eprintln!(
        "hepml: wrote {} ({} events, key `events`) in {:.2} s",
        a.output.display(),
        kept,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
