//! Reading tables: pandas `fixed` and `table` layouts and hepml's earlier columnar one, whole
//! or a few MB of rows at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hdf5_pure::{AttrValue, Dataset, Datatype, DatatypeByteOrder, File, Group};

use super::{ctx, layout, pickle, H5Error, Table, SOURCES_ATTR};

/// Values per chunk of [`read_table_chunks`]: 8 MB as f64.
const CHUNK_VALUES: usize = 1 << 20;

type Attrs = HashMap<String, AttrValue>;

fn open_group(path: &Path, key: &str) -> Result<Group, H5Error> {
    // Streaming: metadata and chunks are read as they are needed, never the whole file.
    let file = ctx(File::open_streaming(path), path, "open")?;
    ctx(file.group(key), path, format!("no group `{key}`"))
}

fn attrs_of(r: Result<Attrs, hdf5_pure::Error>, path: &Path, what: &str) -> Result<Attrs, H5Error> {
    ctx(r, path, format!("attributes of {what}"))
}

fn attr_str(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.get(name)?.as_str().map(str::to_owned)
}

/// The column sources `hepml convert` recorded in `path` (see
/// [`TableWriter::set_sources`](super::TableWriter::set_sources)); empty for files written by
/// anything else, whose column names are taken as the branches.
pub fn read_sources(path: &Path, key: &str) -> Result<BTreeMap<String, String>, H5Error> {
    let group = open_group(path, key)?;
    let attrs = attrs_of(group.attrs(), path, key)?;
    let Some(v) = attrs.get(SOURCES_ATTR) else {
        return Ok(Default::default());
    };
    let text = v
        .as_str()
        .ok_or_else(|| layout(path, format!("attribute {SOURCES_ATTR} is not a string")))?;
    serde_json::from_str(text).map_err(|e| layout(path, format!("attribute {SOURCES_ATTR}: {e}")))
}

/// Reads a table whole: pandas `fixed` or `table` layout (what
/// [`TableWriter`](super::TableWriter) writes, or pandas itself), or the older
/// one-dataset-per-column layout.
pub fn read_table(path: &Path, key: &str) -> Result<Table, H5Error> {
    let src = Source::open(path, key)?;
    src.read(path, 0, src.rows())
}

/// Reads a table in chunks of rows, calling `f(first_row, chunk)` for each (at least once, so
/// an empty table still shows its columns). pandas tables (`fixed` or `table`) are read a few
/// MB at a time, so a reader that keeps only what it needs stays small; hepml's earlier
/// columnar layout comes as one chunk.
pub fn read_table_chunks<E: From<H5Error>>(
    path: &Path,
    key: &str,
    f: impl FnMut(usize, &Table) -> Result<(), E>,
) -> Result<(), E> {
    read_chunks_of(path, key, CHUNK_VALUES, f)
}

pub(crate) fn read_chunks_of<E: From<H5Error>>(
    path: &Path,
    key: &str,
    values: usize,
    mut f: impl FnMut(usize, &Table) -> Result<(), E>,
) -> Result<(), E> {
    let src = Source::open(path, key)?;
    let rows = src.rows();
    let step = (values / src.names().len().max(1)).max(1);
    let mut r0 = 0;
    loop {
        let r1 = (r0 + step).min(rows);
        f(r0, &src.read(path, r0, r1)?)?;
        r0 = r1;
        if r0 >= rows {
            return Ok(());
        }
    }
}

/// A number type as stored: how to turn one element's bytes into f64.
#[derive(Debug, Clone, Copy)]
struct Num {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Float,
    Signed,
    Unsigned,
    /// pandas stores bool columns as 1-byte bitfields: 0 or 1.
    Bool,
}

impl Num {
    /// The numeric types a table column can have; None for anything else (strings, ...).
    fn of(dt: &Datatype) -> Option<Num> {
        let be = |o: &DatatypeByteOrder| matches!(o, DatatypeByteOrder::BigEndian);
        let (kind, size, big_endian) = match dt {
            Datatype::FloatingPoint {
                size, byte_order, ..
            } if matches!(size, 4 | 8) => (Kind::Float, *size, be(byte_order)),
            Datatype::FixedPoint {
                size,
                byte_order,
                layout,
            } if matches!(size, 1 | 2 | 4 | 8) => (
                if layout.signed {
                    Kind::Signed
                } else {
                    Kind::Unsigned
                },
                *size,
                be(byte_order),
            ),
            Datatype::BitField { size: 1, .. } => (Kind::Bool, 1, false),
            // h5py's bool: an enum over a 1-byte integer.
            Datatype::Enumeration { base_type, .. } => return Num::of(base_type),
            _ => return None,
        };
        Some(Num {
            kind,
            size: size as usize,
            big_endian,
        })
    }

    /// The element at the start of `b` (at least `size` bytes long).
    fn get(&self, b: &[u8]) -> f64 {
        let mut a = [0u8; 8];
        let n = self.size;
        a[..n].copy_from_slice(&b[..n]);
        if self.big_endian {
            a[..n].reverse();
        }
        // Sign-extend narrow integers.
        let signed =
            |bits: u32| ((u64::from_le_bytes(a) << (64 - bits)) as i64 >> (64 - bits)) as f64;
        match (self.kind, n) {
            (Kind::Float, 4) => f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
            (Kind::Float, _) => f64::from_le_bytes(a),
            (Kind::Signed, _) => signed(8 * n as u32),
            (Kind::Unsigned, _) => u64::from_le_bytes(a) as f64,
            (Kind::Bool, _) => f64::from(a[0] != 0),
        }
    }
}

/// Decodes `count` elements of `num` that start `stride` bytes apart at `offset` in `bytes`.
fn column(bytes: &[u8], num: Num, offset: usize, stride: usize, count: usize) -> Option<Vec<f64>> {
    (0..count)
        .map(|r| {
            let at = r * stride + offset;
            bytes.get(at..at + num.size).map(|b| num.get(b))
        })
        .collect()
}

/// An open table of any layout hepml reads.
enum Source {
    Fixed(Fixed),
    Pandas(PandasTable),
    /// Read whole when opened (hepml's earlier columnar layout).
    Whole(Table),
}

impl Source {
    fn open(path: &Path, key: &str) -> Result<Source, H5Error> {
        let group = open_group(path, key)?;
        let attrs = attrs_of(group.attrs(), path, key)?;
        match attr_str(&attrs, "pandas_type").as_deref() {
            Some("frame") => Ok(Source::Fixed(Fixed::open(&group, &attrs, path)?)),
            Some("frame_table") => Ok(Source::Pandas(PandasTable::open(&group, &attrs, path)?)),
            Some(other) => Err(layout(
                path,
                format!("`{key}` is a pandas `{other}`, not a DataFrame"),
            )),
            None if attrs.contains_key("columns") => {
                Ok(Source::Whole(read_columnar(&group, &attrs, path)?))
            }
            None => Err(layout(
                path,
                format!("`{key}` is neither a pandas DataFrame nor a hepml table"),
            )),
        }
    }

    fn names(&self) -> &[String] {
        match self {
            Source::Fixed(f) => &f.names,
            Source::Pandas(t) => &t.names,
            Source::Whole(t) => &t.names,
        }
    }

    fn rows(&self) -> usize {
        match self {
            Source::Fixed(f) => f.rows,
            Source::Pandas(t) => t.rows,
            Source::Whole(t) => t.rows(),
        }
    }

    /// Rows `r0..r1` of every column.
    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Table, H5Error> {
        match self {
            Source::Fixed(f) => f.read(path, r0, r1),
            Source::Pandas(t) => t.read(path, r0, r1),
            Source::Whole(t) => Ok(Table {
                names: t.names.clone(),
                columns: t.columns.iter().map(|c| c[r0..r1].to_vec()).collect(),
            }),
        }
    }
}

fn read_names(group: &Group, path: &Path, name: &str) -> Result<Vec<String>, H5Error> {
    let ds = ctx(group.dataset(name), path, name)?;
    let v = ctx(
        ds.read_string(),
        path,
        format!("{name}: column names must be strings"),
    )?;
    Ok(v.into_iter()
        .map(|s| s.trim_end_matches('\0').to_owned())
        .collect())
}

/// A pandas `fixed` DataFrame: the column names and, per block, its dataset and where its
/// columns go.
struct Fixed {
    names: Vec<String>,
    rows: usize,
    blocks: Vec<FixedBlock>,
}

struct FixedBlock {
    name: String,
    ds: Dataset,
    num: Num,
    items: Vec<String>,
    /// Column index in `names` of each item.
    pos: Vec<usize>,
    /// Stored `[rows, items]` (pandas' usual) or `[rows]` for one item, else `[items, rows]`.
    row_major: bool,
}

impl Fixed {
    fn open(group: &Group, attrs: &Attrs, path: &Path) -> Result<Fixed, H5Error> {
        let names = read_names(group, path, "axis0")?;
        let nblocks = attrs
            .get("nblocks")
            .and_then(AttrValue::as_i64)
            .ok_or_else(|| layout(path, "attribute nblocks missing or not an integer"))?;
        let mut rows: Option<usize> = None;
        let mut blocks = Vec::new();
        let mut covered = vec![false; names.len()];
        for b in 0..nblocks.max(0) {
            let items = read_names(group, path, &format!("block{b}_items"))?;
            let name = format!("block{b}_values");
            let ds = ctx(group.dataset(&name), path, &name)?;
            let shape: Vec<usize> = ctx(ds.shape(), path, &name)?
                .into_iter()
                .map(|d| d as usize)
                .collect();
            let dt = ctx(ds.datatype(), path, &name)?;
            let num = Num::of(&dt).ok_or_else(|| {
                layout(
                    path,
                    format!(
                        "{name} (columns {}) is not numeric or bool: {dt:?}",
                        items.join(", ")
                    ),
                )
            })?;
            let k_items = items.len();
            // pandas stores blocks transposed ([rows, columns]) with a boolean `transposed`
            // flag; the shape against the number of items tells which way round, the flag
            // breaks a tie.
            let flag = || {
                ds.attrs()
                    .ok()
                    .and_then(|a| a.get("transposed").and_then(AttrValue::as_i64))
                    .is_none_or(|t| t != 0)
            };
            let (n, k, row_major) = match shape.as_slice() {
                [n] => (*n, 1, true),
                [n, k] if *k == k_items && *n != k_items => (*n, *k, true),
                [k, n] if *k == k_items && *n != k_items => (*n, *k, false),
                [a, c] if flag() => (*a, *c, true),
                [a, c] => (*c, *a, false),
                _ => {
                    return Err(layout(
                        path,
                        format!("{name} has shape {shape:?}, expected 1-D or 2-D"),
                    ))
                }
            };
            if k != k_items {
                return Err(layout(
                    path,
                    format!("{name} has {k} columns but block{b}_items names {k_items}"),
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
                num,
                items,
                pos,
                row_major,
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

    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Table, H5Error> {
        let mut columns: Vec<Vec<f64>> = vec![Vec::new(); self.names.len()];
        let n = r1.saturating_sub(r0);
        for b in self.blocks.iter().filter(|_| n > 0) {
            let what = || format!("read {} (columns {})", b.name, b.items.join(", "));
            let k = b.items.len();
            let w = b.num.size;
            let (bytes, offset, stride, item_step) = if b.row_major {
                let bytes = ctx(b.ds.read_raw_rows(r0 as u64, n as u64), path, what())?;
                (bytes, 0, k * w, w)
            } else {
                // [items, rows]: rare (pandas writes [rows, items]); read whole.
                let bytes = ctx(b.ds.read_raw(), path, what())?;
                (bytes, r0 * w, w, self.rows * w)
            };
            for (j, &p) in b.pos.iter().enumerate() {
                columns[p] = column(&bytes, b.num, offset + j * item_step, stride, n)
                    .ok_or_else(|| layout(path, format!("{}: short read", what())))?;
            }
        }
        Ok(Table {
            names: self.names.clone(),
            columns,
        })
    }
}

/// pandas' `table` layout: a compound dataset `/<key>/table` with an `index` field, one
/// `values_block_<i>` array field per dtype (column names pickled in the table's
/// `values_block_<i>_kind` attribute) and one field per data column; the column order is the
/// group's pickled `non_index_axes`.
struct PandasTable {
    ds: Dataset,
    rows: usize,
    record: usize,
    names: Vec<String>,
    /// Per column (in `names` order): its type and byte offset in a record.
    fields: Vec<(Num, usize)>,
}

impl PandasTable {
    fn open(group: &Group, attrs: &Attrs, path: &Path) -> Result<PandasTable, H5Error> {
        let ds = ctx(group.dataset("table"), path, "table")?;
        let dt = ctx(ds.datatype(), path, "table type")?;
        let Datatype::Compound { size, members } = &dt else {
            return Err(layout(
                path,
                "pandas table: `table` is not a compound dataset",
            ));
        };
        let table_attrs = attrs_of(ds.attrs(), path, "table")?;
        let rows = ctx(ds.shape(), path, "table")?
            .first()
            .copied()
            .unwrap_or(0) as usize;
        let mut cols: Vec<(String, Num, usize)> = Vec::new();
        for m in members {
            if m.name == "index" {
                continue;
            }
            let (inner, k) = match &m.datatype {
                Datatype::Array {
                    base_type,
                    dimensions,
                } => (
                    base_type.as_ref(),
                    dimensions.iter().map(|&d| d as usize).product(),
                ),
                t => (t, 1),
            };
            let num = Num::of(inner).ok_or_else(|| {
                layout(
                    path,
                    format!(
                        "pandas table: field {} is {inner:?}, not a number or bool",
                        m.name
                    ),
                )
            })?;
            let names = if m.name.starts_with("values_block_") {
                attr_str(&table_attrs, &format!("{}_kind", m.name))
                    .map(|p| pickle::strings(&p))
                    .unwrap_or_default()
            } else {
                vec![m.name.clone()]
            };
            if names.len() != k {
                return Err(layout(
                    path,
                    format!(
                        "pandas table: field {} has {k} columns but names {}",
                        m.name,
                        names.len()
                    ),
                ));
            }
            for (j, name) in names.into_iter().enumerate() {
                cols.push((name, num, m.byte_offset as usize + j * num.size));
            }
        }
        if let Some(order) = attr_str(attrs, "non_index_axes")
            .map(|p| pickle::strings(&p))
            .filter(|o| o.len() == cols.len())
        {
            cols.sort_by_key(|(name, _, _)| {
                order.iter().position(|o| o == name).unwrap_or(usize::MAX)
            });
        }
        Ok(PandasTable {
            ds,
            rows,
            record: *size as usize,
            names: cols.iter().map(|c| c.0.clone()).collect(),
            fields: cols.iter().map(|c| (c.1, c.2)).collect(),
        })
    }

    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Table, H5Error> {
        let n = r1.saturating_sub(r0);
        let bytes = if n > 0 {
            ctx(
                self.ds.read_raw_rows(r0 as u64, n as u64),
                path,
                "read table",
            )?
        } else {
            Vec::new()
        };
        let columns = self
            .fields
            .iter()
            .map(|&(num, off)| column(&bytes, num, off, self.record, n))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| layout(path, "pandas table: short read"))?;
        Ok(Table {
            names: self.names.clone(),
            columns,
        })
    }
}

fn read_columnar(group: &Group, attrs: &Attrs, path: &Path) -> Result<Table, H5Error> {
    let names: Vec<String> = attrs
        .get("columns")
        .and_then(AttrValue::as_strings)
        .ok_or_else(|| layout(path, "attribute `columns` is not a list of strings"))?
        .to_vec();
    let mut columns = Vec::with_capacity(names.len());
    for n in &names {
        let ds = ctx(group.dataset(n), path, format!("dataset {n}"))?;
        let dt = ctx(ds.datatype(), path, format!("dataset {n}"))?;
        let num =
            Num::of(&dt).ok_or_else(|| layout(path, format!("dataset {n} is not numeric")))?;
        let bytes = ctx(ds.read_raw(), path, format!("read {n}"))?;
        let count = bytes.len() / num.size;
        columns.push(
            column(&bytes, num, 0, num.size, count)
                .ok_or_else(|| layout(path, format!("read {n}: short read")))?,
        );
    }
    Ok(Table { names, columns })
}
