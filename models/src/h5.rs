//! Columnar HDF5 tables: `hepml convert` writes them, `hepml train` reads them.
//!
//! Layout written: group `/<key>` with one 1-D float64 dataset per column, chunked and
//! extendable so that conversion streams chunk by chunk (memory bounded by the chunk size), and
//! a `columns` attribute on the group listing the column order (h5py: `f[key][col][:]`).

use std::path::Path;

use hdf5_metno as hdf5;

#[derive(Debug, thiserror::Error)]
pub enum H5Error {
    #[error("{path}: {what}: {source}")]
    Hdf5 {
        path: String,
        what: String,
        source: hdf5::Error,
    },
    #[error("{path}: {what}")]
    Layout { path: String, what: String },
}

fn ctx<T>(r: hdf5::Result<T>, path: &Path, what: impl Into<String>) -> Result<T, H5Error> {
    r.map_err(|source| H5Error::Hdf5 {
        path: path.display().to_string(),
        what: what.into(),
        source,
    })
}

/// Streaming writer of a columnar table.
pub struct TableWriter {
    path: std::path::PathBuf,
    _file: hdf5::File,
    datasets: Vec<hdf5::Dataset>,
    len: usize,
}

impl TableWriter {
    pub fn create(path: &Path, key: &str, columns: &[String]) -> Result<Self, H5Error> {
        let file = ctx(hdf5::File::create(path), path, "create")?;
        let group = ctx(file.create_group(key), path, format!("create group {key}"))?;
        let mut datasets = Vec::with_capacity(columns.len());
        for c in columns {
            let ds = ctx(
                group
                    .new_dataset::<f64>()
                    .chunk(65_536)
                    .shape(0..)
                    .create(c.as_str()),
                path,
                format!("create dataset {c}"),
            )?;
            datasets.push(ds);
        }
        let names: Vec<hdf5::types::VarLenUnicode> = columns
            .iter()
            .map(|c| {
                c.parse().map_err(|_| H5Error::Layout {
                    path: path.display().to_string(),
                    what: format!("column name `{c}` is not a valid HDF5 string"),
                })
            })
            .collect::<Result<_, _>>()?;
        let attr = ctx(
            group
                .new_attr::<hdf5::types::VarLenUnicode>()
                .shape(names.len())
                .create("columns"),
            path,
            "create columns attribute",
        )?;
        ctx(attr.write_raw(&names), path, "write columns attribute")?;
        Ok(Self {
            path: path.to_owned(),
            _file: file,
            datasets,
            len: 0,
        })
    }

    /// Appends one chunk: `columns[i]` holds the new rows of column i (all the same length).
    pub fn append(&mut self, columns: &[Vec<f64>]) -> Result<(), H5Error> {
        let n = columns.first().map_or(0, Vec::len);
        if columns.len() != self.datasets.len() || columns.iter().any(|c| c.len() != n) {
            return Err(H5Error::Layout {
                path: self.path.display().to_string(),
                what: "append: ragged chunk".into(),
            });
        }
        if n == 0 {
            return Ok(());
        }
        let (start, end) = (self.len, self.len + n);
        for (ds, col) in self.datasets.iter().zip(columns) {
            ctx(ds.resize(end), &self.path, "resize")?;
            ctx(
                ds.write_slice(col.as_slice(), start..end),
                &self.path,
                "write",
            )?;
        }
        self.len = end;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A table read whole: column names and column-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.columns[i].as_slice())
    }
}

/// Reads a table written by [`TableWriter`].
pub fn read_table(path: &Path, key: &str) -> Result<Table, H5Error> {
    let file = ctx(hdf5::File::open(path), path, "open")?;
    let group = ctx(file.group(key), path, format!("group {key}"))?;
    let attr = ctx(group.attr("columns"), path, "columns attribute")?;
    let names: Vec<hdf5::types::VarLenUnicode> = ctx(attr.read_raw(), path, "columns attribute")?;
    let names: Vec<String> = names.iter().map(|s| s.as_str().to_owned()).collect();
    let mut columns = Vec::with_capacity(names.len());
    for n in &names {
        let ds = ctx(group.dataset(n), path, format!("dataset {n}"))?;
        columns.push(ctx(ds.read_raw::<f64>(), path, format!("read {n}"))?);
    }
    Ok(Table { names, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_in_chunks() {
        let dir = std::env::temp_dir().join(format!("hepml-h5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.h5");
        let cols = vec!["x".to_string(), "log(pt)".to_string()];
        let mut w = TableWriter::create(&path, "events", &cols).unwrap();
        w.append(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        w.append(&[vec![5.0], vec![6.0]]).unwrap();
        assert_eq!(w.len(), 3);
        drop(w);
        let t = read_table(&path, "events").unwrap();
        assert_eq!(t.names, cols);
        assert_eq!(t.column("x").unwrap(), &[1.0, 2.0, 5.0]);
        assert_eq!(t.column("log(pt)").unwrap(), &[3.0, 4.0, 6.0]);
        assert!(w_err(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn w_err(path: &Path) -> Result<Table, H5Error> {
        read_table(path, "nope")
    }
}
