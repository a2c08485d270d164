//! The provenance record of an output file: a TNamed `hepml_provenance` whose title is JSON
//! naming hepml's version, the input, the engine choice, every model (engine, file, hash) and
//! the branches written. `TFile::Get("hepml_provenance")->GetTitle()` in ROOT, or uproot.

use super::error::InjectError;
use super::pipeline::ModelJob;
use crate::engine::EngineKind;
use rootio::object::{default_object, Value};
use rootio::rbuf::WBuf;
use rootio::write::FileWriter;
use rootio::RootError;
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
        "branches": jobs.iter().flat_map(|j| j.outputs.iter().map(|o| o.branch.clone())).collect::<Vec<_>>(),
    })
    .to_string();
    let mut obj = default_object(&fw.streamers, "TNamed")?;
    let missing = |f: &str| RootError::malformed(format!("TNamed streamer without {f}"));
    *obj.get_mut("fName").ok_or_else(|| missing("fName"))? =
        Value::Str(b"hepml_provenance".to_vec());
    *obj.get_mut("fTitle").ok_or_else(|| missing("fTitle"))? =
        Value::Str(text.clone().into_bytes());
    fw.write_object("TNamed", "hepml_provenance", &text, |keylen| {
        let mut w = WBuf::new(keylen);
        rootio::object::Writer::new().write_object(&mut w, &obj)?;
        Ok(w.data)
    })?;
    Ok(())
}
