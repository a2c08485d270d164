//! HDF5 tables in pandas' `fixed` layout: `hepml convert` writes them, `hepml train` reads them.
//!
//! Written: the layout `DataFrame.to_hdf(path, key=key, format="fixed")` produces (group
//! `/<key>` with `pandas_type = "frame"`, `axis0` = column names, `axis1` = row index,
//! `block<i>_items`/`block<i>_values` = one 2-D `[rows, columns]` block per dtype), so
//! `pandas.read_hdf(path, key)` and h5py read it. The value and index datasets are chunked and
//! extendable: conversion streams chunk by chunk with memory bounded by the chunk size.
//!
//! Read: that layout (any number of blocks, any numeric or bool dtype, as the public
//! top-tagging data set's files use), pandas' `table` layout (`format="table"`: a compound
//! `/<key>/table` with `values_block_<i>` fields whose column names PyTables stores as pickled
//! lists, and data columns as fields of their own; numeric columns), and the columnar layout of
//! earlier hepml versions (one 1-D dataset per column and a `columns` attribute).

use std::path::Path;
use std::str::FromStr;

use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor};
use hdf5_metno as hdf5;
use hdf5_metno_sys as hdf5_sys;
use ndarray::{s, ArrayView2};

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

fn layout(path: &Path, what: impl Into<String>) -> H5Error {
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

/// Longest column name stored (bytes).
const NAME_LEN: usize = 255;
type Name = FixedAscii<NAME_LEN>;
/// Rows per HDF5 chunk of the value datasets.
const CHUNK_ROWS: usize = 16_384;

/// A scalar string attribute as PyTables writes them (UTF-8 strings come back as `str` in
/// PyTables; ASCII ones as bytes, which is how pandas stores a pickled `None` name: `N.`).
fn str_attr(
    loc: &hdf5::Location,
    path: &Path,
    name: &str,
    value: &str,
    utf8: bool,
) -> Result<(), H5Error> {
    let what = format!("attribute {name}");
    // Stored with the value's exact length (no padding PyTables would keep): the memory
    // string is converted to the file's fixed-length type by HDF5.
    let len = value.len().max(1);
    let file_type = if utf8 {
        TypeDescriptor::FixedUnicode(len)
    } else {
        TypeDescriptor::FixedAscii(len)
    };
    let a = ctx(
        loc.new_attr_builder()
            .empty_as(&file_type)
            .shape(())
            .create(name),
        path,
        &what,
    )?;
    if utf8 {
        let v = FixedUnicode::<64>::from_str(value).map_err(|_| layout(path, &what))?;
        ctx(a.write_scalar(&v), path, &what)
    } else {
        let v = FixedAscii::<64>::from_ascii(value.as_bytes()).map_err(|_| layout(path, &what))?;
        ctx(a.write_scalar(&v), path, &what)
    }
}

fn int_attr<T: hdf5::H5Type>(
    loc: &hdf5::Location,
    path: &Path,
    name: &str,
    value: T,
) -> Result<(), H5Error> {
    let a = ctx(loc.new_attr::<T>().shape(()).create(name), path, name)?;
    ctx(a.write_scalar(&value), path, name)
}

/// PyTables' bookkeeping attributes of an array node, and pandas' `transposed` flag.
fn array_attrs(ds: &hdf5::Dataset, path: &Path, kind: Option<&str>) -> Result<(), H5Error> {
    str_attr(ds, path, "CLASS", "ARRAY", true)?;
    str_attr(ds, path, "VERSION", "2.4", true)?;
    str_attr(ds, path, "FLAVOR", "numpy", true)?;
    int_attr(ds, path, "transposed", 1u8)?;
    if let Some(k) = kind {
        str_attr(ds, path, "kind", k, true)?;
        // pickle of None: pandas' "no name".
        str_attr(ds, path, "name", "N.", false)?;
    }
    Ok(())
}

fn names_dataset(
    group: &hdf5::Group,
    path: &Path,
    ds_name: &str,
    names: &[&str],
) -> Result<(), H5Error> {
    let v: Vec<Name> = names
        .iter()
        .map(|n| {
            Name::from_ascii(n.as_bytes()).map_err(|_| {
                layout(
                    path,
                    format!("column name `{n}` must be ASCII and at most {NAME_LEN} bytes"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let ds = ctx(
        group.new_dataset::<Name>().shape(v.len()).create(ds_name),
        path,
        ds_name,
    )?;
    ctx(ds.write_raw(&v), path, ds_name)?;
    array_attrs(&ds, path, Some("string"))
}

struct Block {
    ds: hdf5::Dataset,
    ty: ColType,
    /// Positions of this block's columns in the table's column order.
    cols: Vec<usize>,
}

/// Streaming writer of a table in pandas' `fixed` layout.
pub struct TableWriter {
    path: std::path::PathBuf,
    _file: hdf5::File,
    group: hdf5::Group,
    index: hdf5::Dataset,
    blocks: Vec<Block>,
    ncols: usize,
    len: usize,
}

impl TableWriter {
    /// A table of float64 columns.
    pub fn create(path: &Path, key: &str, columns: &[String]) -> Result<Self, H5Error> {
        let typed: Vec<(String, ColType)> =
            columns.iter().map(|c| (c.clone(), ColType::F64)).collect();
        Self::create_typed(path, key, &typed)
    }

    /// A table whose columns are stored with the given types (one pandas block per type, in
    /// the order F64, F32, I64; `axis0` keeps the given column order).
    pub fn create_typed(
        path: &Path,
        key: &str,
        columns: &[(String, ColType)],
    ) -> Result<Self, H5Error> {
        let file = ctx(hdf5::File::create(path), path, "create")?;
        str_attr(&file, path, "CLASS", "GROUP", true)?;
        str_attr(&file, path, "PYTABLES_FORMAT_VERSION", "2.1", true)?;
        str_attr(&file, path, "VERSION", "1.0", true)?;
        let group = ctx(file.create_group(key), path, format!("create group {key}"))?;
        str_attr(&group, path, "CLASS", "GROUP", true)?;
        str_attr(&group, path, "VERSION", "1.0", true)?;
        str_attr(&group, path, "pandas_type", "frame", true)?;
        str_attr(&group, path, "encoding", "UTF-8", true)?;
        str_attr(&group, path, "errors", "strict", true)?;
        int_attr(&group, path, "ndim", 2i64)?;
        let all: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        names_dataset(&group, path, "axis0", &all)?;
        str_attr(&group, path, "axis0_variety", "regular", true)?;
        str_attr(&group, path, "axis1_variety", "regular", true)?;
        let index = ctx(
            group
                .new_dataset::<i64>()
                .chunk(CHUNK_ROWS)
                .shape(0..)
                .create("axis1"),
            path,
            "create axis1",
        )?;
        array_attrs(&index, path, Some("integer"))?;
        let mut blocks = Vec::new();
        for ty in [ColType::F64, ColType::F32, ColType::I64] {
            let cols: Vec<usize> = (0..columns.len()).filter(|&i| columns[i].1 == ty).collect();
            if cols.is_empty() {
                continue;
            }
            let b = blocks.len();
            let names: Vec<&str> = cols.iter().map(|&i| all[i]).collect();
            names_dataset(&group, path, &format!("block{b}_items"), &names)?;
            str_attr(
                &group,
                path,
                &format!("block{b}_items_variety"),
                "regular",
                true,
            )?;
            let name = format!("block{b}_values");
            let k = cols.len();
            let chunk = (CHUNK_ROWS.min((1 << 20) / k.max(1)).max(1), k);
            let ds = match ty {
                ColType::F64 => group
                    .new_dataset::<f64>()
                    .chunk(chunk)
                    .shape((0.., k))
                    .create(name.as_str()),
                ColType::F32 => group
                    .new_dataset::<f32>()
                    .chunk(chunk)
                    .shape((0.., k))
                    .create(name.as_str()),
                ColType::I64 => group
                    .new_dataset::<i64>()
                    .chunk(chunk)
                    .shape((0.., k))
                    .create(name.as_str()),
            };
            let ds = ctx(ds, path, format!("create {name}"))?;
            array_attrs(&ds, path, None)?;
            blocks.push(Block { ds, ty, cols });
        }
        int_attr(&group, path, "nblocks", blocks.len() as i64)?;
        Ok(Self {
            path: path.to_owned(),
            _file: file,
            group,
            index,
            blocks,
            ncols: columns.len(),
            len: 0,
        })
    }

    /// Records where columns came from (column name -> the branch or expression that made it)
    /// in the attribute [`SOURCES_ATTR`] of the table's group, a JSON object that `hepml train`
    /// carries into the model and `hepml export` into its `hepml.inputs`, so a renamed column
    /// (`{name: lead_jet_pt, expr: "Jet_pt[0]"}`) is computed from the ntuple again by `inject`.
    /// pandas and h5py ignore the attribute.
    pub fn set_sources(
        &self,
        sources: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), H5Error> {
        let text = serde_json::to_string(sources).unwrap_or_default();
        let v = hdf5::types::VarLenUnicode::from_str(&text)
            .map_err(|_| layout(&self.path, "column sources: not a valid string"))?;
        let what = format!("attribute {SOURCES_ATTR}");
        let a = ctx(
            self.group
                .new_attr::<hdf5::types::VarLenUnicode>()
                .shape(())
                .create(SOURCES_ATTR),
            &self.path,
            &what,
        )?;
        ctx(a.write_scalar(&v), &self.path, &what)
    }

    /// Appends one chunk: `columns[i]` holds the new rows of column i (all the same length).
    pub fn append(&mut self, columns: &[Vec<f64>]) -> Result<(), H5Error> {
        let n = columns.first().map_or(0, Vec::len);
        if columns.len() != self.ncols || columns.iter().any(|c| c.len() != n) {
            return Err(layout(&self.path, "append: ragged chunk"));
        }
        if n == 0 {
            return Ok(());
        }
        let (start, end) = (self.len, self.len + n);
        let p = &self.path;
        for b in &self.blocks {
            let k = b.cols.len();
            ctx(b.ds.resize((end, k)), p, "resize")?;
            macro_rules! put {
                ($t:ty) => {{
                    let mut buf: Vec<$t> = Vec::with_capacity(n * k);
                    for r in 0..n {
                        buf.extend(b.cols.iter().map(|&c| columns[c][r] as $t));
                    }
                    let view = ArrayView2::from_shape((n, k), &buf)
                        .map_err(|e| layout(p, e.to_string()))?;
                    ctx(b.ds.write_slice(view, s![start..end, ..]), p, "write")?;
                }};
            }
            match b.ty {
                ColType::F64 => put!(f64),
                ColType::F32 => put!(f32),
                ColType::I64 => put!(i64),
            }
        }
        ctx(self.index.resize(end), p, "resize")?;
        let idx: Vec<i64> = (start as i64..end as i64).collect();
        ctx(self.index.write_slice(&idx, start..end), p, "write index")?;
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

/// The group attribute in which `hepml convert` records each column's source expression.
pub const SOURCES_ATTR: &str = "hepml_sources";

/// The column sources `hepml convert` recorded in `path` (see [`TableWriter::set_sources`]);
/// empty for files written by anything else, whose column names are taken as the branches.
pub fn read_sources(
    path: &Path,
    key: &str,
) -> Result<std::collections::BTreeMap<String, String>, H5Error> {
    let file = ctx(hdf5::File::open(path), path, "open")?;
    let group = ctx(file.group(key), path, format!("no group `{key}`"))?;
    if group.attr(SOURCES_ATTR).is_err() {
        return Ok(Default::default());
    }
    let text = attr_string(&group, SOURCES_ATTR)
        .ok_or_else(|| layout(path, format!("attribute {SOURCES_ATTR} is not a string")))?;
    serde_json::from_str(&text).map_err(|e| layout(path, format!("attribute {SOURCES_ATTR}: {e}")))
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

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }
}

fn read_names(group: &hdf5::Group, path: &Path, name: &str) -> Result<Vec<String>, H5Error> {
    let ds = ctx(group.dataset(name), path, name)?;
    // Fixed-length strings of any size convert to a wider fixed-length memory type.
    if let Ok(v) = ds.read_raw::<FixedAscii<1024>>() {
        return Ok(v.iter().map(|s| s.as_str().to_owned()).collect());
    }
    if let Ok(v) = ds.read_raw::<FixedUnicode<1024>>() {
        return Ok(v.iter().map(|s| s.as_str().to_owned()).collect());
    }
    let v = ctx(
        ds.read_raw::<hdf5::types::VarLenUnicode>(),
        path,
        format!("{name}: column names must be strings"),
    )?;
    Ok(v.iter().map(|s| s.as_str().to_owned()).collect())
}

fn attr_string(loc: &hdf5::Location, name: &str) -> Option<String> {
    let a = loc.attr(name).ok()?;
    if let Ok(v) = a.read_scalar::<hdf5::types::VarLenUnicode>() {
        return Some(v.as_str().to_owned());
    }
    if let Ok(v) = a.read_scalar::<FixedUnicode<256>>() {
        return Some(v.as_str().to_owned());
    }
    a.read_scalar::<FixedAscii<256>>()
        .ok()
        .map(|v| v.as_str().to_owned())
}

/// Reads a table: pandas `fixed` layout (what [`TableWriter`] writes, or pandas itself), or the
/// older one-dataset-per-column layout.
pub fn read_table(path: &Path, key: &str) -> Result<Table, H5Error> {
    let file = ctx(hdf5::File::open(path), path, "open")?;
    let group = ctx(file.group(key), path, format!("no group `{key}`"))?;
    match attr_string(&group, "pandas_type").as_deref() {
        Some("frame") => {
            let fx = Fixed::open(&group, path)?;
            fx.read(path, 0, fx.rows)
        }
        _ => read_other(&group, path, key),
    }
}

/// Values per chunk of [`read_table_chunks`]: 8 MB as f64.
const CHUNK_VALUES: usize = 1 << 20;

/// Reads a table in chunks of rows, calling `f(first_row, chunk)` for each (at least once, so
/// an empty table still shows its columns). A pandas `fixed` table (what `hepml convert`
/// writes) is read a few MB at a time, so a reader that keeps only what it needs stays
/// small; the other layouts come as one chunk.
pub fn read_table_chunks<E: From<H5Error>>(
    path: &Path,
    key: &str,
    f: impl FnMut(usize, &Table) -> Result<(), E>,
) -> Result<(), E> {
    read_chunks_of(path, key, CHUNK_VALUES, f)
}

fn read_chunks_of<E: From<H5Error>>(
    path: &Path,
    key: &str,
    values: usize,
    mut f: impl FnMut(usize, &Table) -> Result<(), E>,
) -> Result<(), E> {
    let file = ctx(hdf5::File::open(path), path, "open")?;
    let group = ctx(file.group(key), path, format!("no group `{key}`"))?;
    if attr_string(&group, "pandas_type").as_deref() != Some("frame") {
        return f(0, &read_other(&group, path, key)?);
    }
    let fx = Fixed::open(&group, path)?;
    let step = (values / fx.names.len().max(1)).max(1);
    let mut r0 = 0;
    loop {
        let r1 = (r0 + step).min(fx.rows);
        f(r0, &fx.read(path, r0, r1)?)?;
        r0 = r1;
        if r0 >= fx.rows {
            return Ok(());
        }
    }
}

fn read_other(group: &hdf5::Group, path: &Path, key: &str) -> Result<Table, H5Error> {
    match attr_string(group, "pandas_type").as_deref() {
        Some("frame_table") => read_pandas_table(group, path),
        Some(other) => Err(layout(
            path,
            format!("`{key}` is a pandas `{other}`, not a DataFrame"),
        )),
        None if group.attr("columns").is_ok() => read_columnar(group, path),
        None => Err(layout(
            path,
            format!("`{key}` is neither a pandas DataFrame nor a hepml table"),
        )),
    }
}

/// A pandas `fixed` DataFrame: the column names and, per dtype block, its dataset and where
/// its columns go.
struct Fixed {
    names: Vec<String>,
    rows: usize,
    blocks: Vec<FixedBlock>,
}

struct FixedBlock {
    name: String,
    ds: hdf5::Dataset,
    items: Vec<String>,
    /// Column index in `names` of each item.
    pos: Vec<usize>,
    /// Stored `[rows, items]` (pandas' usual), else `[items, rows]`.
    transposed: bool,
}

impl Fixed {
    fn open(group: &hdf5::Group, path: &Path) -> Result<Fixed, H5Error> {
        let names = read_names(group, path, "axis0")?;
        let nblocks: i64 = ctx(
            group.attr("nblocks").and_then(|a| a.read_scalar::<i64>()),
            path,
            "attribute nblocks",
        )?;
        let mut rows: Option<usize> = None;
        let mut blocks = Vec::new();
        let mut covered = vec![false; names.len()];
        for b in 0..nblocks.max(0) {
            let items = read_names(group, path, &format!("block{b}_items"))?;
            let name = format!("block{b}_values");
            let ds = ctx(group.dataset(&name), path, &name)?;
            let shape = ds.shape();
            // pandas stores blocks transposed ([rows, columns]) with a boolean `transposed`
            // flag; the shape against the number of items tells which way round, the flag
            // breaks a tie.
            let k_items = items.len();
            let transposed = match shape.as_slice() {
                [_, k] if *k == k_items && shape[0] != k_items => true,
                [k, _] if *k == k_items && shape[1] != k_items => false,
                _ => ds
                    .attr("transposed")
                    .and_then(|a| {
                        a.read_scalar::<u8>()
                            .or_else(|_| a.read_scalar::<bool>().map(u8::from))
                    })
                    .map_or(true, |t| t != 0),
            };
            let (n, k) = match (shape.as_slice(), transposed) {
                ([n, k], true) => (*n, *k),
                ([k, n], false) => (*n, *k),
                _ => {
                    return Err(layout(
                        path,
                        format!("{name} has shape {shape:?}, expected 2-D"),
                    ))
                }
            };
            if k != items.len() {
                return Err(layout(
                    path,
                    format!(
                        "{name} has {k} columns but block{b}_items names {}",
                        items.len()
                    ),
                ));
            }
            if *rows.get_or_insert(n) != n {
                return Err(layout(
                    path,
                    format!("{name} has {n} rows, other blocks {}", rows.unwrap_or(0)),
                ));
            }
            let pos = items
                .iter()
                .map(|item| {
                    names.iter().position(|x| x == item).ok_or_else(|| {
                        layout(path, format!("block{b}_items names `{item}`, not in axis0"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            pos.iter().for_each(|&p| covered[p] = true);
            blocks.push(FixedBlock {
                name,
                ds,
                items,
                pos,
                transposed,
            });
        }
        if let Some(i) = covered.iter().position(|c| !c) {
            return Err(layout(
                path,
                format!("column `{}` is in no block", names[i]),
            ));
        }
        Ok(Fixed {
            names,
            rows: rows.unwrap_or(0),
            blocks,
        })
    }

    /// Rows `r0..r1` of every column.
    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Table, H5Error> {
        let mut columns: Vec<Vec<f64>> = vec![Vec::new(); self.names.len()];
        for b in self.blocks.iter().filter(|_| r1 > r0) {
            let read = if b.transposed {
                b.ds.read_slice_2d::<f64, _>(s![r0..r1, ..])
            } else {
                b.ds.read_slice_2d::<f64, _>(s![.., r0..r1])
                    .map(|a| a.reversed_axes())
            };
            // Now [rows, items] either way.
            let block = match read {
                Ok(a) => a,
                Err(e) => self.bool_rows(b, r0, r1).ok_or_else(|| H5Error::Hdf5 {
                    path: path.display().to_string(),
                    what: format!("read {} (columns {})", b.name, b.items.join(", ")),
                    source: e,
                })?,
            };
            for (j, &p) in b.pos.iter().enumerate() {
                columns[p] = block.column(j).to_vec();
            }
        }
        Ok(Table {
            names: self.names.clone(),
            columns,
        })
    }

    /// Rows of a bool block ([`read_bool_block`] reads it whole), as `[rows, items]`.
    fn bool_rows(&self, b: &FixedBlock, r0: usize, r1: usize) -> Option<ndarray::Array2<f64>> {
        let all = read_bool_block(&b.ds)?;
        let k = b.items.len();
        let a = if b.transposed {
            ndarray::Array2::from_shape_vec((self.rows, k), all).ok()?
        } else {
            ndarray::Array2::from_shape_vec((k, self.rows), all)
                .ok()?
                .reversed_axes()
        };
        Some(a.slice(s![r0..r1, ..]).to_owned())
    }
}

/// The whole dataset or attribute read in its own (file) type: the raw bytes.
fn raw_bytes(
    id: hdf5_sys::h5i::hid_t,
    type_id: hdf5_sys::h5i::hid_t,
    len: usize,
    attr: bool,
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` holds `len` bytes: every element of the object in its own type.
    let r = hdf5::sync::sync(|| unsafe {
        if attr {
            hdf5_sys::h5a::H5Aread(id, type_id, buf.as_mut_ptr().cast())
        } else {
            hdf5_sys::h5d::H5Dread(
                id,
                type_id,
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5p::H5P_DEFAULT,
                buf.as_mut_ptr().cast(),
            )
        }
    });
    (r >= 0).then_some(buf)
}

/// The strings of a PyTables attribute holding a protocol-0 pickle of a list of str
/// (`(lp0\nVa\np1\na.`): each `V<text>\n` opcode is one string.
fn pickled_strings(loc: &hdf5::Location, name: &str) -> Option<Vec<String>> {
    let a = loc.attr(name).ok()?;
    let dt = a.dtype().ok()?;
    let bytes = raw_bytes(a.id(), dt.id(), dt.size() * a.size().max(1), true)?;
    let text = String::from_utf8_lossy(&bytes);
    Some(
        text.split('\n')
            .filter_map(|line| line.strip_prefix('V').or_else(|| line.strip_prefix("aV")))
            .map(str::to_owned)
            .collect(),
    )
}

/// One little-endian number of `ty` at the start of `b`, as f64.
fn number(ty: &TypeDescriptor, b: &[u8]) -> Option<f64> {
    use hdf5::types::{FloatSize, IntSize};
    let arr = |n: usize| -> Option<[u8; 8]> {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(b.get(..n)?);
        Some(a)
    };
    Some(match ty {
        TypeDescriptor::Float(FloatSize::U8) => f64::from_le_bytes(arr(8)?),
        TypeDescriptor::Float(FloatSize::U4) => {
            f32::from_le_bytes(arr(4)?[..4].try_into().ok()?) as f64
        }
        TypeDescriptor::Integer(IntSize::U8) => i64::from_le_bytes(arr(8)?) as f64,
        TypeDescriptor::Integer(IntSize::U4) => {
            i32::from_le_bytes(arr(4)?[..4].try_into().ok()?) as f64
        }
        TypeDescriptor::Integer(IntSize::U2) => {
            i16::from_le_bytes(arr(2)?[..2].try_into().ok()?) as f64
        }
        TypeDescriptor::Integer(IntSize::U1) => *b.first()? as i8 as f64,
        TypeDescriptor::Unsigned(IntSize::U8) => u64::from_le_bytes(arr(8)?) as f64,
        TypeDescriptor::Unsigned(IntSize::U4) => {
            u32::from_le_bytes(arr(4)?[..4].try_into().ok()?) as f64
        }
        TypeDescriptor::Unsigned(IntSize::U2) => {
            u16::from_le_bytes(arr(2)?[..2].try_into().ok()?) as f64
        }
        TypeDescriptor::Unsigned(IntSize::U1) | TypeDescriptor::Boolean => *b.first()? as f64,
        _ => return None,
    })
}

/// pandas' `table` layout: a compound dataset `/<key>/table` with an `index` field, one
/// `values_block_<i>` array field per dtype (column names pickled in the table's
/// `values_block_<i>_kind` attribute) and one field per data column; the column order is the
/// group's pickled `non_index_axes`.
fn read_pandas_table(group: &hdf5::Group, path: &Path) -> Result<Table, H5Error> {
    let ds = ctx(group.dataset("table"), path, "table")?;
    let dt = ctx(ds.dtype(), path, "table type")?;
    let desc = ctx(
        dt.to_descriptor(),
        path,
        "pandas table: a column type hepml does not read (bool columns are only read from the fixed layout)",
    )?;
    let TypeDescriptor::Compound(ct) = desc else {
        return Err(layout(
            path,
            "pandas table: `table` is not a compound dataset",
        ));
    };
    let n = ds.size();
    let bytes = raw_bytes(ds.id(), dt.id(), n * ct.size, false)
        .ok_or_else(|| layout(path, "pandas table: cannot read `table`"))?;
    let mut cols: Vec<(String, Vec<f64>)> = Vec::new();
    for f in &ct.fields {
        if f.name == "index" {
            continue;
        }
        let (inner, k) = match &f.ty {
            TypeDescriptor::FixedArray(t, k) => (t.as_ref(), *k),
            t => (t, 1),
        };
        let names = if f.name.starts_with("values_block_") {
            pickled_strings(&ds, &format!("{}_kind", f.name)).unwrap_or_default()
        } else {
            vec![f.name.clone()]
        };
        if names.len() != k {
            return Err(layout(
                path,
                format!(
                    "pandas table: field {} has {k} columns but names {}",
                    f.name,
                    names.len()
                ),
            ));
        }
        let w = inner.size();
        for (j, name) in names.into_iter().enumerate() {
            let col = (0..n)
                .map(|r| number(inner, &bytes[r * ct.size + f.offset + j * w..]))
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| {
                    layout(
                        path,
                        format!("pandas table: column `{name}` is {inner}, not a number"),
                    )
                })?;
            cols.push((name, col));
        }
    }
    if let Some(order) = pickled_strings(group, "non_index_axes").filter(|o| o.len() == cols.len())
    {
        cols.sort_by_key(|(name, _)| order.iter().position(|o| o == name).unwrap_or(usize::MAX));
    }
    let (names, columns) = cols.into_iter().unzip();
    Ok(Table { names, columns })
}

/// pandas stores bool columns as 1-byte HDF5 bitfields, which have no conversion to numbers:
/// read the bytes with the dataset's own type and map them to 0/1.
fn read_bool_block(ds: &hdf5::Dataset) -> Option<Vec<f64>> {
    let dt = ds.dtype().ok()?;
    if dt.size() != 1 {
        return None;
    }
    let buf = raw_bytes(ds.id(), dt.id(), ds.size(), false)?;
    Some(buf.iter().map(|&b| f64::from(b != 0)).collect())
}

fn read_columnar(group: &hdf5::Group, path: &Path) -> Result<Table, H5Error> {
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn w_err(path: &Path) -> Result<Table, H5Error> {
        read_table(path, "nope")
    }
}
