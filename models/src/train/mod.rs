//! `hepml train`: a DNN or parameterised NN on burn's `flex` CPU backend, or a tree ensemble
//! (gradient-boosted trees, a random forest: [`train_trees`]), from the tables `hepml convert`
//! writes (or any pandas `fixed` HDF5 file), with k-fold ensembles routed by event number,
//! weighted and class-balanced loss, early stopping, OneCycle and an LR finder.
//!
//! The run directory holds `model.json` (per fold: standardisation and dense layers, batch norm
//! folded in), `metrics.json`, the resolved config, and per fold the raw test inputs with burn's
//! scores (`test_fold<i>_x.npy`, `test_fold<i>_score.npy`) so an export can be checked against
//! the trained model.

mod data;
mod fit;
mod net;
mod trees;

use std::path::{Path, PathBuf};

use burn::tensor::TensorData;

pub use crate::metrics::summary as metrics;
pub use data::{load, parameter_values, per_parameter, splits, Data, Split};
pub use fit::{device, train, DeviceKind, History, Outcome};
pub use net::{DenseFold, FoldModel, KFold, Layer, Net, SavedModel};
pub use trees::{train_trees, TreeImportance};

use crate::h5::H5Error;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    H5(#[from] H5Error),
    #[error("{0}")]
    Data(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A tensor read back from burn was not the float32 data the network computes in.
    #[error("reading {what} back from burn: {source}")]
    Tensor {
        what: &'static str,
        source: burn::tensor::DataError,
    },
}

/// The values of `data` as f32 (`what` names the tensor in the error): a tensor of another
/// element type is an error, never an empty vector.
fn f32_values(data: TensorData, what: &'static str) -> Result<Vec<f32>, TrainError> {
    data.try_to_vec::<f32>()
        .map_err(|source| TrainError::Tensor { what, source })
}

fn data_err(msg: impl Into<String>) -> TrainError {
    TrainError::Data(msg.into())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a little-endian float32 .npy array.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), TrainError> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if dims.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in data {
        out.extend(v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor that is not float32 cannot come out of the network from any config (burn
    /// computes in f32 on both backends), so the error path is exercised here directly.
    #[test]
    fn non_f32_tensor_is_an_error_not_an_empty_vector() {
        let ints = TensorData::new(vec![1i32, 2, 3], [3]);
        let err = f32_values(ints, "the scores").unwrap_err();
        assert!(
            matches!(
                err,
                TrainError::Tensor {
                    what: "the scores",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("reading the scores back from burn"),
            "{err}"
        );
        let floats = TensorData::new(vec![1f32, 2.0], [2]);
        assert_eq!(f32_values(floats, "x").unwrap(), vec![1.0, 2.0]);
    }
}
