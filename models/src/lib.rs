//! hepml models (training, ONNX export) — see issue 4.
