//! The provenance record of an output file: a TNamed `hepml_provenance` whose title is JSON
//! naming hepml's version, the input, the engine option, every model (engine, file, hash), the
//! engine each model got and why, and the branches written. `TFile::Get("hepml_provenance")->GetTitle()` in ROOT, or uproot.

use super::error::InjectError;
use super::pipeline::ModelJob;
use engine::EngineKind;
use rootio::write::{FileWriter, TOP};
use std::path::Path;

/// Writes the record into `fw`.
pub(crate) fn write(
    fw: &mut FileWriter,
    jobs: &[ModelJob],
    engine: EngineKind,
    input: &Path,
) -> Result<(), InjectError> {
    let text = serde_json::json!({
        "hepml": env!("CARGO_PKG_VERSION"),
        "input": input.display().to_string(),
        // The engine option as given (auto, tract, ...): its Debug name in lower case.
        "engine": format!("{engine:?}").to_lowercase(),
        "models": jobs.iter().map(|j| j.models.describe()).collect::<Vec<_>>(),
        // Per model (in the order of "models"): the engine loaded and why.
        "engines": jobs.iter().flat_map(|j| j.choices.iter().map(|c| serde_json::json!({
            "engine": c.kind.name(),
            "reason": c.reason,
        }))).collect::<Vec<_>>(),
        "branches": jobs.iter().flat_map(|j| j.outputs.iter().map(|o| o.branch.clone())).collect::<Vec<_>>(),
    })
    .to_string();
    fw.write_named(TOP, "hepml_provenance", &text)?;
    Ok(())
}
