//! [`TableWriter`]: a streaming writer of pandas `fixed` and `table` layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdf5_pure::{
    AttrValue, CompoundTypeBuilder, Dataset, DatasetBuilder, File, FileAccessProperties,
    FileBuilder, MaxExtent, MemoryStrategy, SyncPolicy,
};

use super::{ctx, layout, pickle, ColType, Format, H5Error, SOURCES_ATTR};

/// Longest column name stored (bytes).
const NAME_LEN: usize = 255;
/// Rows per HDF5 chunk of a `fixed` column (128 kB of float64).
const FIXED_CHUNK_ROWS: usize = 16_384;
/// Bytes per HDF5 chunk of a `table` (whole rows).
const TABLE_CHUNK_BYTES: usize = 1 << 20;

fn utf8(v: &str) -> AttrValue {
    AttrValue::String(v.to_owned())
}

/// A pickled value as PyTables stores it: an ASCII string (PyTables unpickles ASCII string
/// attributes that end in `.`). `N.` is a pickled `None`.
fn pickled(v: String) -> AttrValue {
    AttrValue::AsciiString(v)
}

/// PyTables' bookkeeping attributes of an array node, and pandas' `transposed` flag; `kind`
/// and a `None` name for the index datasets.
fn array_attrs(d: &mut DatasetBuilder, kind: Option<&str>) {
    d.set_attr("CLASS", utf8("ARRAY"));
    d.set_attr("VERSION", utf8("2.4"));
    d.set_attr("FLAVOR", utf8("numpy"));
    d.set_attr("transposed", AttrValue::U8(1));
    if let Some(k) = kind {
        d.set_attr("kind", utf8(k));
        d.set_attr("name", pickled("N.".into()));
    }
}

/// An empty, extendable, chunked 1-D dataset of `ty`.
fn extendable(d: &mut DatasetBuilder, ty: ColType, chunk: usize) {
    match ty {
        ColType::F64 => d.with_f64_data(&[]),
        ColType::F32 => d.with_f32_data(&[]),
        ColType::I64 => d.with_i64_data(&[]),
    }
    .with_shape(&[0])
    .with_maxshape(&[MaxExtent::Unlimited])
    .with_chunks(&[chunk as u64]);
}

fn dtype_name(ty: ColType) -> &'static str {
    match ty {
        ColType::F64 => "float64",
        ColType::F32 => "float32",
        ColType::I64 => "int64",
    }
}

fn width(ty: ColType) -> usize {
    match ty {
        ColType::F32 => 4,
        ColType::F64 | ColType::I64 => 8,
    }
}

/// Where appended rows go.
enum Sink {
    /// One 1-D dataset per column (`block<i>_values`) and the row index (`axis1`).
    Fixed {
        columns: Vec<Dataset>,
        index: Dataset,
    },
    /// The compound `table`: the row index and every column, one record per row.
    Table { table: Dataset },
}

/// Streaming writer of a table in pandas' `fixed` or `table` layout. Rows are buffered until
/// they fill whole HDF5 chunks, so memory stays bounded by the chunk of rows handed to
/// [`append`](Self::append) plus one HDF5 chunk. Call [`finish`](Self::finish) to complete the
/// file and see any error; dropping an unfinished writer completes it as well as it can.
pub struct TableWriter {
    path: PathBuf,
    key: String,
    types: Vec<ColType>,
    file: Option<File>,
    sink: Option<Sink>,
    /// Rows not yet written, per column: fewer than `chunk_rows` after each append.
    pending: Vec<Vec<f64>>,
    chunk_rows: usize,
    written: usize,
}

impl TableWriter {
    /// A table of float64 columns in the `fixed` layout.
    pub fn create(path: &Path, key: &str, columns: &[String]) -> Result<Self, H5Error> {
        let typed: Vec<(String, ColType)> =
            columns.iter().map(|c| (c.clone(), ColType::F64)).collect();
        Self::create_typed(path, key, &typed)
    }

    /// A table in the `fixed` layout whose columns are stored with the given types.
    pub fn create_typed(
        path: &Path,
        key: &str,
        columns: &[(String, ColType)],
    ) -> Result<Self, H5Error> {
        Self::create_with(path, key, columns, Format::Fixed)
    }

    /// A table in the given layout whose columns are stored with the given types, in the
    /// given order.
    pub fn create_with(
        path: &Path,
        key: &str,
        columns: &[(String, ColType)],
        format: Format,
    ) -> Result<Self, H5Error> {
        for (n, _) in columns {
            if !n.is_ascii() || n.is_empty() || n.len() > NAME_LEN || n.contains('/') {
                return Err(layout(
                    path,
                    format!("column name `{n}` must be ASCII, without `/`, 1 to {NAME_LEN} bytes"),
                ));
            }
        }
        if key.is_empty() || key.contains('/') {
            return Err(layout(
                path,
                format!("table key `{key}`: one name without `/`"),
            ));
        }
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let types: Vec<ColType> = columns.iter().map(|&(_, t)| t).collect();
        let mut b = FileBuilder::new();
        b.set_attr("CLASS", utf8("GROUP"));
        b.set_attr("PYTABLES_FORMAT_VERSION", utf8("2.1"));
        b.set_attr("VERSION", utf8("1.0"));
        let mut g = b.create_group(key);
        g.set_attr("CLASS", utf8("GROUP"));
        g.set_attr("VERSION", utf8("1.0"));
        g.set_attr("encoding", utf8("UTF-8"));
        g.set_attr("errors", utf8("strict"));
        let chunk_rows = match format {
            Format::Fixed => {
                g.set_attr("pandas_type", utf8("frame"));
                g.set_attr("ndim", AttrValue::I64(2));
                g.set_attr("axis0_variety", utf8("regular"));
                g.set_attr("axis1_variety", utf8("regular"));
                g.set_attr("nblocks", AttrValue::I64(columns.len() as i64));
                let d = g.create_dataset("axis0");
                ctx(
                    d.with_ascii_strings(&names).map_err(Into::into),
                    path,
                    "axis0",
                )?;
                array_attrs(d, Some("string"));
                let d = g.create_dataset("axis1");
                extendable(d, ColType::I64, FIXED_CHUNK_ROWS);
                array_attrs(d, Some("integer"));
                // One block per column: each column is a plain 1-D dataset, appendable on
                // its own; pandas joins the blocks by `block<i>_items`.
                for (i, (name, &ty)) in names.iter().zip(&types).enumerate() {
                    g.set_attr(&format!("block{i}_items_variety"), utf8("regular"));
                    let d = g.create_dataset(&format!("block{i}_items"));
                    ctx(
                        d.with_ascii_strings(&[name]).map_err(Into::into),
                        path,
                        "block items",
                    )?;
                    array_attrs(d, Some("string"));
                    let d = g.create_dataset(&format!("block{i}_values"));
                    extendable(d, ty, FIXED_CHUNK_ROWS);
                    array_attrs(d, None);
                }
                FIXED_CHUNK_ROWS
            }
            Format::Table => {
                g.set_attr("pandas_type", utf8("frame_table"));
                g.set_attr("table_type", utf8("appendable_frame"));
                g.set_attr("levels", AttrValue::I64(1));
                g.set_attr("nan_rep", pickled("N.".into()));
                g.set_attr("index_cols", pickled(pickle::index_cols(0, "index")));
                g.set_attr("non_index_axes", pickled(pickle::axis_list(1, &names)));
                g.set_attr("values_cols", pickled(pickle::str_list(&names)));
                g.set_attr("data_columns", pickled(pickle::str_list(&names)));
                g.set_attr("info", pickled(pickle::table_info(&names)));
                let mut ct = CompoundTypeBuilder::new().i64_field("index");
                for (name, &ty) in names.iter().zip(&types) {
                    ct = match ty {
                        ColType::F64 => ct.f64_field(name),
                        ColType::F32 => ct.f32_field(name),
                        ColType::I64 => ct.i64_field(name),
                    };
                }
                let dt = ctx(ct.build().map_err(Into::into), path, "table type")?;
                let row = 8 + types.iter().map(|&t| width(t)).sum::<usize>();
                let chunk = (TABLE_CHUNK_BYTES / row).max(1);
                let d = g.create_dataset("table");
                d.with_raw_data(dt, Vec::new(), 0)
                    .with_shape(&[0])
                    .with_maxshape(&[MaxExtent::Unlimited])
                    .with_chunks(&[chunk as u64]);
                d.set_attr("CLASS", utf8("TABLE"));
                d.set_attr("VERSION", utf8("2.7"));
                d.set_attr("NROWS", AttrValue::I64(0));
                d.set_attr("index_kind", utf8("integer"));
                d.set_attr("FIELD_0_NAME", utf8("index"));
                d.set_attr("FIELD_0_FILL", AttrValue::I64(0));
                for (i, (name, &ty)) in names.iter().zip(&types).enumerate() {
                    d.set_attr(&format!("FIELD_{}_NAME", i + 1), utf8(name));
                    d.set_attr(
                        &format!("FIELD_{}_FILL", i + 1),
                        match ty {
                            ColType::F64 => AttrValue::F64(0.0),
                            ColType::F32 => AttrValue::F32(0.0),
                            ColType::I64 => AttrValue::I64(0),
                        },
                    );
                    d.set_attr(&format!("{name}_kind"), pickled(pickle::str_list(&[name])));
                    d.set_attr(&format!("{name}_dtype"), utf8(dtype_name(ty)));
                    d.set_attr(&format!("{name}_meta"), pickled("N.".into()));
                }
                chunk
            }
        };
        b.add_group(g.finish());
        ctx(b.write(path), path, "create")?;
        // Reopened for bounded appends. Written under a temporary name by its callers, the
        // file needs no crash-atomic step per chunk: one sync at close.
        let file = ctx(
            File::open_rw_with_options(
                path,
                FileAccessProperties::new()
                    .with_memory_strategy(MemoryStrategy::Bounded)
                    .with_sync_policy(SyncPolicy::OnClose),
            ),
            path,
            "open for appending",
        )?;
        let ds = |name: String| ctx(file.dataset(&format!("{key}/{name}")), path, name);
        let sink = match format {
            Format::Fixed => Sink::Fixed {
                columns: (0..columns.len())
                    .map(|i| ds(format!("block{i}_values")))
                    .collect::<Result<_, _>>()?,
                index: ds("axis1".into())?,
            },
            Format::Table => Sink::Table {
                table: ds("table".into())?,
            },
        };
        Ok(Self {
            path: path.to_owned(),
            key: key.to_owned(),
            types,
            file: Some(file),
            sink: Some(sink),
            pending: vec![Vec::new(); columns.len()],
            chunk_rows,
            written: 0,
        })
    }

    /// Records where columns came from (column name -> the branch or expression that made it)
    /// in the attribute [`SOURCES_ATTR`] of the table's group, a JSON object that `hepml train`
    /// carries into the model and `hepml export` into its `hepml.inputs`, so a renamed column
    /// (`{name: lead_jet_pt, expr: "Jet_pt[0]"}`) is computed from the ntuple again by `inject`.
    /// pandas and h5py ignore the attribute.
    pub fn set_sources(&self, sources: &BTreeMap<String, String>) -> Result<(), H5Error> {
        let text = serde_json::to_string(sources)
            .map_err(|e| layout(&self.path, format!("column sources: {e}")))?;
        let file = self.file.as_ref().ok_or_else(|| self.finished())?;
        let group = ctx(file.group(&self.key), &self.path, "table group")?;
        ctx(
            group.set_attr(SOURCES_ATTR, utf8(&text)),
            &self.path,
            format!("attribute {SOURCES_ATTR}"),
        )
    }

    fn finished(&self) -> H5Error {
        layout(&self.path, "the table is already finished")
    }

    /// Appends one chunk: `columns[i]` holds the new rows of column i (all the same length).
    pub fn append(&mut self, columns: &[Vec<f64>]) -> Result<(), H5Error> {
        let n = columns.first().map_or(0, Vec::len);
        if columns.len() != self.types.len() || columns.iter().any(|c| c.len() != n) {
            return Err(layout(&self.path, "append: ragged chunk"));
        }
        if self.file.is_none() {
            return Err(self.finished());
        }
        for (p, c) in self.pending.iter_mut().zip(columns) {
            p.extend_from_slice(c);
        }
        let have = self.pending.first().map_or(0, Vec::len);
        self.flush(have / self.chunk_rows * self.chunk_rows)
    }

    /// Writes the first `rows` pending rows.
    fn flush(&mut self, rows: usize) -> Result<(), H5Error> {
        if rows == 0 {
            return Ok(());
        }
        let p = &self.path;
        let start = self.written as i64;
        match self.sink.as_mut().ok_or_else(|| layout(p, "finished"))? {
            Sink::Fixed { columns, index } => {
                for ((ds, &ty), col) in columns.iter_mut().zip(&self.types).zip(&self.pending) {
                    let v = &col[..rows];
                    let r = match ty {
                        ColType::F64 => ds.append(v),
                        ColType::F32 => ds.append(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()),
                        ColType::I64 => ds.append(&v.iter().map(|&x| x as i64).collect::<Vec<_>>()),
                    };
                    ctx(r, p, "write")?;
                }
                let idx: Vec<i64> = (start..start + rows as i64).collect();
                ctx(index.append(&idx), p, "write index")?;
            }
            Sink::Table { table } => {
                let row = 8 + self.types.iter().map(|&t| width(t)).sum::<usize>();
                let mut bytes = Vec::with_capacity(rows * row);
                for r in 0..rows {
                    bytes.extend_from_slice(&(start + r as i64).to_le_bytes());
                    for (&ty, col) in self.types.iter().zip(&self.pending) {
                        match ty {
                            ColType::F64 => bytes.extend_from_slice(&col[r].to_le_bytes()),
                            ColType::F32 => bytes.extend_from_slice(&(col[r] as f32).to_le_bytes()),
                            ColType::I64 => bytes.extend_from_slice(&(col[r] as i64).to_le_bytes()),
                        }
                    }
                }
                ctx(table.append_raw(&bytes), p, "write table")?;
            }
        }
        for col in &mut self.pending {
            col.drain(..rows);
        }
        self.written += rows;
        Ok(())
    }

    /// Writes the rows still buffered and completes the file.
    pub fn finish(mut self) -> Result<(), H5Error> {
        self.complete()
    }

    fn complete(&mut self) -> Result<(), H5Error> {
        if self.file.is_none() {
            return Ok(());
        }
        let rest = self.pending.first().map_or(0, Vec::len);
        let flushed = self.flush(rest);
        let rows = self.written as i64;
        let nrows = match self.sink.take() {
            // PyTables keeps a table's row count in NROWS too.
            Some(Sink::Table { mut table }) if flushed.is_ok() => ctx(
                table.set_attr("NROWS", AttrValue::I64(rows)),
                &self.path,
                "NROWS",
            ),
            _ => Ok(()),
        };
        let closed = match self.file.take() {
            Some(f) => ctx(f.close(), &self.path, "close"),
            None => Ok(()),
        };
        flushed.and(nrows).and(closed)
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.written + self.pending.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        // An unfinished writer completes its file as well as it can; `finish` reports errors.
        let _ = self.complete();
    }
}
