//! HDF5 tables that pandas and h5py read: `hepml convert` writes them, `hepml train` reads them.
//!
//! All HDF5 goes through `hdf5-pure`, a pure-Rust implementation of the format: no libhdf5 is
//! linked, so one `hepml` binary runs on any Linux machine (see the README's design notes for
//! the evaluation behind this choice).
//!
//! Written ([`TableWriter`]), in one of two pandas layouts ([`Format`]):
//! - `fixed` (the default): the layout `DataFrame.to_hdf(path, key=key, format="fixed")`
//!   produces (group `/<key>` with `pandas_type = "frame"`, `axis0` = column names, `axis1` =
//!   row index, `block<i>_items`/`block<i>_values`), with one block per column, so each column
//!   is also a plain 1-D dataset for h5py;
//! - `table`: pandas' queryable, appendable layout (`pandas_type = "frame_table"`: a compound
//!   `/<key>/table` with every column a data column), so `pd.read_hdf(f, key, where=...)` works.
//!
//! Value datasets are chunked and extendable: a conversion streams chunk by chunk with memory
//! bounded by the chunk size.
//!
//! Read ([`read_table`], [`read_table_chunks`]), a few MB of rows at a time:
//! - both pandas layouts as hepml or pandas 2.x write them (any number of blocks, any numeric
//!   or bool dtype, uncompressed or zlib, as the public top-tagging data set's files use;
//!   `table` with `values_block_<i>` fields whose column names PyTables stores as pickled
//!   lists, and data columns as fields of their own);
//! - a group of 1-D datasets, a column each, as h5py users write them (and earlier hepml
//!   versions, with a `columns` attribute listing them);
//! - a compound dataset (a NumPy structured array written by h5py): a column per field.
//!
//! Only numbers and bools are columns; string, object and array columns are left out and
//! listed in [`Table::skipped`] with what they hold, so that asking for one says why.
//!
//! Compression: what hdf5-pure decodes (deflate/zlib, shuffle, LZF, scale-offset, Fletcher-32),
//! and Blosc and bzip2 (pandas' other `complib`s), whose chunks `chunks` reads and decodes
//! itself. Another filter (szip, the hdf5plugin family) is an error naming it.

mod blosc;
mod chunks;
mod pickle;
mod read;
mod write;

pub use read::{read_sources, read_table, read_table_chunks};
pub use write::TableWriter;

#[cfg(test)]
pub(crate) use read::read_chunks_of;

#[derive(Debug, thiserror::Error)]
pub enum H5Error {
    #[error("{path}: {what}: {source}")]
    Hdf5 {
        path: String,
        what: String,
        source: hdf5_pure::Error,
    },
    #[error("{path}: {what}")]
    Layout { path: String, what: String },
}

fn ctx<T>(
    r: Result<T, hdf5_pure::Error>,
    path: &std::path::Path,
    what: impl Into<String>,
) -> Result<T, H5Error> {
    r.map_err(|source| match source {
        hdf5_pure::Error::Format(hdf5_pure::FormatError::UnsupportedFilter(id)) => {
            unsupported_filter(path, &what.into(), id)
        }
        source => H5Error::Hdf5 {
            path: path.display().to_string(),
            what: what.into(),
            source,
        },
    })
}

/// A dataset compressed with a filter hepml cannot decompress: which one, and how to write the
/// file so that it can (hepml reads gzip/zlib, shuffle, LZF, scale-offset, Fletcher-32, and,
/// through `chunks`, bzip2 and Blosc: every compressor pandas offers).
fn unsupported_filter(path: &std::path::Path, what: &str, id: u16) -> H5Error {
    let name = match id {
        4 => "szip",
        32004 => "LZ4 (hdf5plugin)",
        32008 => "bitshuffle (hdf5plugin)",
        32015 => "Zstandard (hdf5plugin)",
        _ => "a plugin filter",
    };
    layout(
        path,
        format!(
            "{what}: compressed with HDF5 filter {id}, {name}, which hepml cannot decompress; \
             write it with zlib (pandas: complib='zlib'; h5py: compression='gzip')"
        ),
    )
}

fn layout(path: &std::path::Path, what: impl Into<String>) -> H5Error {
    H5Error::Layout {
        path: path.display().to_string(),
        what: what.into(),
    }
}

/// Storage type of a column. Values are handed over as f64 and stored in this type (integers
/// up to 2^53 survive exactly: event numbers, labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    F64,
    F32,
    I64,
}

/// Which pandas layout [`TableWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// pandas' `fixed` layout: fastest to write and read.
    #[default]
    Fixed,
    /// pandas' `table` layout: queryable with `pd.read_hdf(f, key, where=...)`.
    Table,
}

/// The group attribute in which `hepml convert` records each column's source expression.
pub const SOURCES_ATTR: &str = "hepml_sources";

/// A table read whole: column names and column-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
    /// Columns the file holds but hepml does not read (strings, Python objects, arrays), each
    /// with what it holds: named in the error when one is asked for.
    pub skipped: Vec<(String, String)>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.columns[i].as_slice())
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// What column `name` holds, if the file has it but hepml does not read it.
    pub fn skipped(&self, name: &str) -> Option<&str> {
        self.skipped
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, holds)| holds.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn roundtrip(format: Format) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.h5");
        let cols = vec!["x".to_string(), "log(pt)".to_string()];
        let typed: Vec<(String, ColType)> =
            cols.iter().map(|c| (c.clone(), ColType::F64)).collect();
        let mut w = TableWriter::create_with(&path, "events", &typed, format).unwrap();
        w.append(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        w.append(&[vec![5.0], vec![6.0]]).unwrap();
        assert_eq!(w.len(), 3);
        w.finish().unwrap();
        let t = read_table(&path, "events").unwrap();
        assert_eq!(t.names, cols);
        assert_eq!(t.column("x").unwrap(), &[1.0, 2.0, 5.0]);
        assert_eq!(t.column("log(pt)").unwrap(), &[3.0, 4.0, 6.0]);
        assert!(w_err(&path).is_err());
        // In chunks of one and of two rows: the same columns, the right first rows.
        for values in [1, 4] {
            let mut got = vec![Vec::new(); 2];
            let mut starts = Vec::new();
            read_chunks_of(&path, "events", values, |r0, c: &Table| {
                starts.push(r0);
                for (g, col) in got.iter_mut().zip(&c.columns) {
                    g.extend_from_slice(col);
                }
                Ok::<_, H5Error>(())
            })
            .unwrap();
            assert_eq!(got, t.columns);
            assert_eq!(
                starts,
                if values == 1 {
                    vec![0, 1, 2]
                } else {
                    vec![0, 2]
                }
            );
        }
    }

    #[test]
    fn roundtrip_in_chunks() {
        roundtrip(Format::Fixed);
    }

    #[test]
    fn roundtrip_in_chunks_table_layout() {
        roundtrip(Format::Table);
    }

    fn w_err(path: &Path) -> Result<Table, H5Error> {
        read_table(path, "nope")
    }
}
