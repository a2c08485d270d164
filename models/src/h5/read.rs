//! Reading tables: pandas `fixed` and `table` layouts and hepml's earlier columnar one, whole
//! or a few MB of rows at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hdf5_pure::{AttrValue, CompoundMember, Dataset, Datatype, DatatypeByteOrder, File, Group};

use super::{chunks, ctx, layout, pickle, H5Error, Table, SOURCES_ATTR};

/// Values per chunk of [`read_table_chunks`]: 8 MB as f64.
const CHUNK_VALUES: usize = 1 << 20;

type Attrs = HashMap<String, AttrValue>;

fn attrs_of(r: Result<Attrs, hdf5_pure::Error>, path: &Path, what: &str) -> Result<Attrs, H5Error> {
    ctx(r, path, format!("attributes of {what}"))
}

fn attr_str(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.get(name)?.as_str().map(str::to_owned)
}

/// What a table's key names: a group (pandas, h5py columns) or a dataset (a compound one).
enum Node {
    Group(Group),
    Dataset(Dataset),
}

/// The object `key` names in `path`, opened streaming: metadata and chunks are read as they are
/// needed, never the whole file.
fn node(path: &Path, key: &str) -> Result<Node, H5Error> {
    let file = ctx(File::open_streaming(path), path, "open")?;
    match file.group(key) {
        Ok(g) => Ok(Node::Group(g)),
        Err(hdf5_pure::Error::NotAGroup(_)) => {
            Ok(Node::Dataset(ctx(file.dataset(key), path, key)?))
        }
        Err(e) => ctx(Err(e), path, format!("no group `{key}`")),
    }
}

/// The column sources `hepml convert` recorded in `path` (see
/// [`TableWriter::set_sources`](super::TableWriter::set_sources)); empty for files written by
/// anything else, whose column names are taken as the branches.
pub fn read_sources(path: &Path, key: &str) -> Result<BTreeMap<String, String>, H5Error> {
    // A compound dataset has no place for them.
    let Node::Group(group) = node(path, key)? else {
        return Ok(Default::default());
    };
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

/// What a column hepml does not read holds, in a few words (for the error that names it).
fn describe(dt: &Datatype) -> String {
    match dt {
        Datatype::String { .. }
        | Datatype::VariableLength {
            is_string: true, ..
        } => "strings".into(),
        // pandas' `fixed` layout keeps an object column as pickled Python objects.
        Datatype::VariableLength { .. } => "Python objects (a pandas object column)".into(),
        Datatype::Array { dimensions, .. } => format!(
            "{} values per row (an array field of shape {dimensions:?})",
            dimensions.iter().map(|&d| d as u64).product::<u64>()
        ),
        Datatype::Compound { .. } => "records".into(),
        Datatype::Reference { .. } => "HDF5 references".into(),
        Datatype::Time { .. } => "HDF5 time values".into(),
        _ => format!("values of type {dt:?}"),
    }
}

/// An open table of any layout hepml reads: its numeric and bool columns, and the columns it
/// holds but does not read (strings, objects, arrays), named so that asking for one says why.
enum Source {
    Fixed(Fixed),
    Records(Records),
    Columns(Columns),
}

impl Source {
    fn open(path: &Path, key: &str) -> Result<Source, H5Error> {
        let group = match node(path, key)? {
            Node::Group(g) => g,
            // A compound dataset (a NumPy structured array written by h5py): its fields.
            Node::Dataset(ds) => return Ok(Source::Records(Records::plain(ds, path, key)?)),
        };
        let attrs = attrs_of(group.attrs(), path, key)?;
        match attr_str(&attrs, "pandas_type").as_deref() {
            Some("frame") => Ok(Source::Fixed(Fixed::open(&group, &attrs, path)?)),
            Some("frame_table") => Ok(Source::Records(Records::pandas(&group, &attrs, path)?)),
            Some(other) => Err(layout(
                path,
                format!("`{key}` is a pandas `{other}`, not a DataFrame"),
            )),
            None => Ok(Source::Columns(Columns::open(&group, &attrs, path, key)?)),
        }
    }

    fn names(&self) -> &[String] {
        match self {
            Source::Fixed(f) => &f.names,
            Source::Records(t) => &t.names,
            Source::Columns(c) => &c.names,
        }
    }

    fn skipped(&self) -> &[(String, String)] {
        match self {
            Source::Fixed(f) => &f.skipped,
            Source::Records(t) => &t.skipped,
            Source::Columns(c) => &c.skipped,
        }
    }

    fn rows(&self) -> usize {
        match self {
            Source::Fixed(f) => f.rows,
            Source::Records(t) => t.rows,
            Source::Columns(c) => c.rows,
        }
    }

    /// Rows `r0..r1` of every column.
    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Table, H5Error> {
        let columns = match self {
            Source::Fixed(f) => f.read(path, r0, r1)?,
            Source::Records(t) => t.read(path, r0, r1)?,
            Source::Columns(c) => c.read(path, r0, r1)?,
        };
        Ok(Table {
            names: self.names().to_vec(),
            columns,
            skipped: self.skipped().to_vec(),
        })
    }
}

/// Refuses a dataset whose shape claims more data than the file could hold even compressed
/// (a corrupt header: hdf5-pure sizes a whole read by the shape, and reading window by window
/// a shape of 2^40 rows would run for ages on fill values), or, when it is read whole, more
/// than `whole` bytes. Deflate stops near 1032:1; Blosc and zstd go much further on constant
/// columns, hence the margin.
fn plausible(ds: &Dataset, path: &Path, what: &str, whole: Option<u64>) -> Result<(), H5Error> {
    const MAX_RATIO: u64 = 1 << 16;
    let shape = ctx(ds.shape(), path, what)?;
    let elem = ctx(ds.element_size(), path, what)?;
    let bytes = shape.iter().try_fold(elem, |a, &d| a.checked_mul(d));
    let file = std::fs::metadata(path).map_or(u64::MAX, |m| m.len());
    let most = file
        .saturating_mul(MAX_RATIO)
        .saturating_add(64 << 20)
        .min(whole.unwrap_or(u64::MAX));
    match bytes {
        Some(b) if b <= most => Ok(()),
        _ => Err(layout(
            path,
            format!(
                "{what}: shape {shape:?} of {elem}-byte values is more than this {file}-byte \
                 file can hold (corrupt?)"
            ),
        )),
    }
}

fn read_names(group: &Group, path: &Path, name: &str) -> Result<Vec<String>, H5Error> {
    let ds = ctx(group.dataset(name), path, name)?;
    let what = format!("{name} (the column names)");
    plausible(&ds, path, &what, Some(64 << 20))?;
    let v = match ds.datatype() {
        // Compressed with a filter decoded here: fixed-length strings, as pandas writes them.
        Ok(Datatype::String { size, .. }) if chunks::decoded_here(&ds) => {
            chunks::read_all(&ds, path, &what)?
                .chunks(size.max(1) as usize)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }
        _ => ctx(ds.read_string(), path, what)?,
    };
    Ok(v.into_iter()
        .map(|s| s.trim_end_matches('\0').to_owned())
        .collect())
}

/// A pandas `fixed` DataFrame: the column names and, per block, its dataset and where its
/// columns go.
struct Fixed {
    names: Vec<String>,
    skipped: Vec<(String, String)>,
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
        let axis0 = read_names(group, path, "axis0")?;
        let nblocks = attrs
            .get("nblocks")
            .and_then(AttrValue::as_i64)
            .ok_or_else(|| layout(path, "attribute nblocks missing or not an integer"))?;
        let mut rows: Option<usize> = None;
        let mut blocks = Vec::new();
        let mut skipped = Vec::new();
        for b in 0..nblocks.max(0) {
            let items = read_names(group, path, &format!("block{b}_items"))?;
            let name = format!("block{b}_values");
            let ds = ctx(group.dataset(&name), path, &name)?;
            plausible(&ds, path, &name, None)?;
            let dt = ctx(ds.datatype(), path, &name)?;
            let Some(num) = Num::of(&dt) else {
                // Strings or objects (a sample name, say): not read; named if asked for.
                skipped.extend(items.into_iter().map(|i| (i, describe(&dt))));
                continue;
            };
            let shape: Vec<usize> = ctx(ds.shape(), path, &name)?
                .into_iter()
                .map(|d| d as usize)
                .collect();
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
            blocks.push(FixedBlock {
                name,
                ds,
                num,
                items,
                pos: Vec::new(),
                row_major,
            });
        }
        // The columns read, in axis0's order.
        let names: Vec<String> = axis0
            .into_iter()
            .filter(|n| !skipped.iter().any(|(s, _)| s == n))
            .collect();
        let mut covered = vec![false; names.len()];
        for (b, block) in blocks.iter_mut().enumerate() {
            block.pos = block
                .items
                .iter()
                .map(|item| {
                    names.iter().position(|x| x == item).ok_or_else(|| {
                        layout(path, format!("block{b}_items names `{item}`, not in axis0"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            block.pos.iter().for_each(|&p| covered[p] = true);
        }
        if let Some(i) = covered.iter().position(|c| !c) {
            return Err(layout(
                path,
                format!("column `{}` is in no block", names[i]),
            ));
        }
        Ok(Fixed {
            names,
            skipped,
            rows: rows.unwrap_or(0),
            blocks,
        })
    }

    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Vec<Vec<f64>>, H5Error> {
        let mut columns: Vec<Vec<f64>> = vec![Vec::new(); self.names.len()];
        let n = r1.saturating_sub(r0);
        for b in self.blocks.iter().filter(|_| n > 0) {
            let what = || format!("read {} (columns {})", b.name, b.items.join(", "));
            let k = b.items.len();
            let w = b.num.size;
            let (bytes, offset, stride, item_step) = if b.row_major {
                let bytes = chunks::read_rows(&b.ds, path, r0, n, &what())?;
                (bytes, 0, k * w, w)
            } else {
                // [items, rows]: rare (pandas writes [rows, items]); read whole, up to 2 GB.
                plausible(&b.ds, path, &what(), Some(2 << 30))?;
                let bytes = chunks::read_all(&b.ds, path, &what())?;
                (bytes, r0 * w, w, self.rows * w)
            };
            for (j, &p) in b.pos.iter().enumerate() {
                columns[p] = column(&bytes, b.num, offset + j * item_step, stride, n)
                    .ok_or_else(|| layout(path, format!("{}: short read", what())))?;
            }
        }
        Ok(columns)
    }
}

/// A table of records, one per row: pandas' `table` layout (`frame_table`: a compound dataset
/// `/<key>/table` with an `index` field, one `values_block_<i>` array field per dtype whose
/// column names PyTables stores pickled in the table's `values_block_<i>_kind` attribute, one
/// field per data column; the column order is the group's pickled `non_index_axes`), or a
/// compound dataset of another writer (a NumPy structured array written by h5py: one column per
/// scalar field).
struct Records {
    ds: Dataset,
    rows: usize,
    record: usize,
    names: Vec<String>,
    skipped: Vec<(String, String)>,
    /// Per column (in `names` order): its type and byte offset in a record.
    fields: Vec<(Num, usize)>,
}

impl Records {
    fn pandas(group: &Group, attrs: &Attrs, path: &Path) -> Result<Records, H5Error> {
        let ds = ctx(group.dataset("table"), path, "table")?;
        let table_attrs = attrs_of(ds.attrs(), path, "table")?;
        let mut r = Records::of(ds, path, "pandas table", |m| {
            if m.name == "index" {
                return Ok(Vec::new());
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
            let num = Num::of(inner).ok_or_else(|| describe(inner));
            Ok(names
                .into_iter()
                .enumerate()
                .map(|(j, n)| (n, num.clone().map(|num| (num, j * num.size))))
                .collect())
        })?;
        if let Some(order) = attr_str(attrs, "non_index_axes")
            .map(|p| pickle::strings(&p))
            .filter(|o| o.len() == r.names.len() + r.skipped.len())
        {
            let at = |name: &String| order.iter().position(|o| o == name).unwrap_or(usize::MAX);
            let mut cols: Vec<(String, (Num, usize))> =
                r.names.drain(..).zip(r.fields.drain(..)).collect();
            cols.sort_by_key(|(name, _)| at(name));
            (r.names, r.fields) = cols.into_iter().unzip();
        }
        Ok(r)
    }

    /// A compound dataset's scalar numeric and bool fields.
    fn plain(ds: Dataset, path: &Path, key: &str) -> Result<Records, H5Error> {
        Records::of(ds, path, key, |m| {
            let num = Num::of(&m.datatype).ok_or_else(|| describe(&m.datatype));
            Ok(vec![(m.name.clone(), num.map(|num| (num, 0)))])
        })
    }

    /// The records of `ds`, whose fields `columns` turns into columns: each a name and either
    /// its type and offset within the field, or what it holds when it is not read.
    #[allow(clippy::type_complexity)]
    fn of(
        ds: Dataset,
        path: &Path,
        what: &str,
        mut columns: impl FnMut(
            &CompoundMember,
        ) -> Result<Vec<(String, Result<(Num, usize), String>)>, H5Error>,
    ) -> Result<Records, H5Error> {
        let dt = ctx(ds.datatype(), path, what)?;
        let Datatype::Compound { size, members } = &dt else {
            let holds = Num::of(&dt).map_or_else(|| describe(&dt), |_| "numbers".into());
            return Err(layout(
                path,
                format!(
                    "`{what}` is a dataset of {holds}, not a table: hepml reads a pandas \
                     DataFrame, a group of 1-D datasets (a column each) or a compound dataset"
                ),
            ));
        };
        plausible(&ds, path, what, None)?;
        let shape = ctx(ds.shape(), path, what)?;
        let &[rows] = shape.as_slice() else {
            return Err(layout(
                path,
                format!("`{what}` has shape {shape:?}: a table of records is 1-D"),
            ));
        };
        let (mut names, mut fields, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for m in members {
            for (name, col) in columns(m)? {
                match col {
                    Ok((num, off)) => {
                        names.push(name);
                        fields.push((num, m.byte_offset as usize + off));
                    }
                    Err(holds) => skipped.push((name, holds)),
                }
            }
        }
        Ok(Records {
            ds,
            rows: rows as usize,
            record: *size as usize,
            names,
            skipped,
            fields,
        })
    }

    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Vec<Vec<f64>>, H5Error> {
        let n = r1.saturating_sub(r0);
        let bytes = if n > 0 {
            chunks::read_rows(&self.ds, path, r0, n, "read table")?
        } else {
            Vec::new()
        };
        self.fields
            .iter()
            .map(|&(num, off)| column(&bytes, num, off, self.record, n))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| layout(path, "table of records: short read"))
    }
}

/// A group of 1-D datasets, a column each, all of one length: what h5py users write (`f[name] =
/// array`), and hepml's earlier layout (which lists the columns in a `columns` attribute).
/// Datasets that are not 1-D numbers (strings, 2-D arrays) are not read.
struct Columns {
    names: Vec<String>,
    skipped: Vec<(String, String)>,
    rows: usize,
    /// Per column (in `names` order): its dataset and type.
    sets: Vec<(Dataset, Num)>,
}

impl Columns {
    fn open(group: &Group, attrs: &Attrs, path: &Path, key: &str) -> Result<Columns, H5Error> {
        let listed = attrs.get("columns").map(|v| {
            v.as_strings()
                .map(<[String]>::to_vec)
                .ok_or_else(|| layout(path, "attribute `columns` is not a list of strings"))
        });
        let members: Vec<(String, Dataset)> = match listed.transpose()? {
            Some(names) => names
                .into_iter()
                .map(|n| {
                    Ok((
                        n.clone(),
                        ctx(group.dataset(&n), path, format!("dataset {n}"))?,
                    ))
                })
                .collect::<Result<_, H5Error>>()?,
            None => ctx(group.iter_datasets(), path, key)?.collect(),
        };
        let (mut names, mut sets, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows: Option<(usize, String)> = None;
        for (name, ds) in members {
            let dt = ctx(ds.datatype(), path, format!("dataset {name}"))?;
            plausible(&ds, path, &format!("dataset {name}"), None)?;
            let shape = ctx(ds.shape(), path, format!("dataset {name}"))?;
            let holds = match (Num::of(&dt), shape.as_slice()) {
                (Some(num), &[n]) => Ok((num, n)),
                (Some(_), [_, per @ ..]) => Err(format!(
                    "{} numbers per row (shape {shape:?})",
                    per.iter().product::<u64>()
                )),
                (Some(_), []) => Err("a single number".into()),
                (None, _) => Err(describe(&dt)),
            };
            let (num, n) = match holds {
                Ok(column) => column,
                Err(holds) => {
                    skipped.push((name, holds));
                    continue;
                }
            };
            let n = n as usize;
            match &rows {
                Some((m, first)) if *m != n => {
                    return Err(layout(
                        path,
                        format!(
                            "`{key}`: dataset {name} has {n} rows but {first} has {m}: \
                             the columns of a table have one length"
                        ),
                    ))
                }
                Some(_) => {}
                None => rows = Some((n, name.clone())),
            }
            names.push(name);
            sets.push((ds, num));
        }
        if names.is_empty() {
            return Err(layout(
                path,
                format!(
                    "`{key}` is neither a pandas DataFrame nor a group of 1-D numeric datasets \
                     (a column each)"
                ),
            ));
        }
        Ok(Columns {
            names,
            skipped,
            rows: rows.map_or(0, |r| r.0),
            sets,
        })
    }

    fn read(&self, path: &Path, r0: usize, r1: usize) -> Result<Vec<Vec<f64>>, H5Error> {
        let n = r1.saturating_sub(r0);
        self.sets
            .iter()
            .zip(&self.names)
            .map(|((ds, num), name)| {
                if n == 0 {
                    return Ok(Vec::new());
                }
                let bytes = chunks::read_rows(ds, path, r0, n, &format!("read {name}"))?;
                column(&bytes, *num, 0, num.size, n)
                    .ok_or_else(|| layout(path, format!("read {name}: short read")))
            })
            .collect()
    }
}
