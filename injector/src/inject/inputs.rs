//! Building model input tensors from a chunk of events.
//!
//! Three kinds of input, as HEP models take them:
//! - **event**: `[N, C]`, one row per event, each column an expression over per-event branches
//!   (`log(MET_pt)`, `Jet_pt[0]`: an index past the end gives NaN, handled by the NaN policy);
//! - **objects**: `[N, C, L]` (or `[N, L, C]`), per-object variables of each event (jagged
//!   branches with one counter) padded or truncated to `L`, with an optional mask input — the
//!   ParticleNet / DeepSets layout;
//! - **per-object rows**: `[M, C]` where the M rows are the objects of all events in the chunk
//!   (a jet tagger scoring every jet); its outputs are written back as jagged branches.

use crate::expr::Expr;
use rootio::{Array, Chunk, Data, Shape};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("branch '{0}' was not read for this chunk")]
    NotRead(String),
    #[error("branch '{branch}' is {ty}; {want}")]
    WrongShape {
        branch: String,
        ty: String,
        want: String,
    },
    #[error(
        "per-object branches '{a}' and '{b}' differ in length in entry {entry} ({na} vs {nb})"
    )]
    Ragged {
        a: String,
        b: String,
        entry: u64,
        na: usize,
        nb: usize,
    },
    #[error("input '{input}': {what} in column {column} ('{expr}') at entry {entry}")]
    NonFinite {
        input: String,
        what: &'static str,
        column: usize,
        expr: String,
        entry: u64,
    },
}

/// Per-variable preprocessing of object inputs (ParticleNet `preprocess.json` semantics):
/// `clip((x - center) * scale, lo, hi)`, infinities replaced first, padding value for
/// missing objects.
#[derive(Debug, Clone, PartialEq)]
pub struct VarTransform {
    pub center: f32,
    pub scale: f32,
    pub lo: f32,
    pub hi: f32,
    pub pad: f32,
    pub replace_inf: Option<f32>,
}

impl Default for VarTransform {
    fn default() -> Self {
        VarTransform {
            center: 0.0,
            scale: 1.0,
            lo: f32::NEG_INFINITY,
            hi: f32::INFINITY,
            pad: 0.0,
            replace_inf: None,
        }
    }
}

impl VarTransform {
    #[inline]
    pub fn apply(&self, x: f32) -> f32 {
        let x = match self.replace_inf {
            Some(r) if x.is_infinite() => r,
            _ => x,
        };
        ((x - self.center) * self.scale).clamp(self.lo, self.hi)
    }
}

/// One variable of an object input: a jagged branch, or the mask (1 for a real object).
#[derive(Debug, Clone)]
pub enum ObjectVar {
    Branch {
        name: String,
        transform: VarTransform,
    },
    Mask,
}

#[derive(Debug, Clone)]
pub enum InputKind {
    Event {
        columns: Vec<Expr>,
    },
    /// `count_branch`: where object counts come from when no variable is a branch (a
    /// mask-only input).
    Objects {
        vars: Vec<ObjectVar>,
        length: usize,
        vars_first: bool,
        count_branch: Option<String>,
    },
    ObjectRows {
        columns: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    pub kind: InputKind,
    /// Trailing dimensions of size 1 the model's input has beyond the tensor built here
    /// (MXNet's `[N, C, L, 1]` for objects `[N, C, L]`): the same values, that shape.
    pub unit_dims: usize,
}

impl InputSpec {
    /// The branches (with their array indexing, for event expressions) this input reads.
    pub fn branches(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        };
        match &self.kind {
            InputKind::Event { columns } => columns
                .iter()
                .flat_map(|e| e.vars())
                .for_each(|(n, _)| add(&n)),
            InputKind::Objects {
                vars, count_branch, ..
            } => {
                vars.iter().for_each(|v| {
                    if let ObjectVar::Branch { name, .. } = v {
                        add(name)
                    }
                });
                if let Some(c) = count_branch.as_deref() {
                    add(c);
                }
            }
            InputKind::ObjectRows { columns } => columns.iter().for_each(|c| add(c)),
        }
        out
    }

    /// The tensor shape for a chunk of `events` events (and `objects` objects in total).
    pub fn shape(&self, events: usize, objects: usize) -> Vec<usize> {
        let mut shape = match &self.kind {
            InputKind::Event { columns } => vec![events, columns.len()],
            InputKind::Objects {
                vars,
                length,
                vars_first: true,
                ..
            } => vec![events, vars.len(), *length],
            InputKind::Objects {
                vars,
                length,
                vars_first: false,
                ..
            } => vec![events, *length, vars.len()],
            InputKind::ObjectRows { columns } => vec![objects, columns.len()],
        };
        shape.resize(shape.len() + self.unit_dims, 1);
        shape
    }
}

/// Where each of `names` (the branches a chunk is read with) sits in the chunk.
pub fn branch_index(names: &[String]) -> HashMap<String, usize> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect()
}

/// Finds a chunk's arrays by branch name.
pub struct ChunkView<'a> {
    pub chunk: &'a Chunk,
    index: &'a HashMap<String, usize>,
}

impl<'a> ChunkView<'a> {
    pub fn new(chunk: &'a Chunk, index: &'a HashMap<String, usize>) -> Self {
        ChunkView { chunk, index }
    }
    pub fn array(&self, name: &str) -> Result<&'a Array, InputError> {
        self.index
            .get(name)
            .and_then(|&i| self.chunk.arrays.get(i))
            .ok_or_else(|| InputError::NotRead(name.to_string()))
    }
    fn jagged(&self, name: &str) -> Result<&'a Array, InputError> {
        let a = self.array(name)?;
        match &a.interp.shape {
            Shape::Var { inner, .. } if inner.is_empty() => Ok(a),
            Shape::Vector => Ok(a),
            _ => Err(InputError::WrongShape {
                branch: name.into(),
                ty: a.interp.type_name(),
                want: "per-object inputs need a variable-length array or std::vector".into(),
            }),
        }
    }
    /// Per-event values of `name` (or of element `index` of an array branch; NaN where absent).
    pub fn event_values(
        &self,
        name: &str,
        index: Option<usize>,
        out: &mut [f64],
    ) -> Result<(), InputError> {
        let a = self.array(name)?;
        match (index, &a.interp.shape) {
            (None, Shape::Scalar) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = a.data.get_f64(i);
                }
            }
            (Some(k), Shape::Var { .. } | Shape::Vector | Shape::Fixed(_)) => {
                let row = match &a.interp.shape {
                    Shape::Var { inner, .. } => inner.iter().product::<usize>(),
                    _ => 1,
                };
                for (i, o) in out.iter_mut().enumerate() {
                    let r = a.entry_range(i);
                    let pos = r.start + k * row;
                    *o = if pos < r.end {
                        a.data.get_f64(pos)
                    } else {
                        f64::NAN
                    };
                }
            }
            (None, _) => {
                return Err(InputError::WrongShape {
                    branch: name.into(),
                    ty: a.interp.type_name(),
                    want: format!("use {name}[i] to pick an element as an event feature"),
                })
            }
            (Some(_), _) => {
                return Err(InputError::WrongShape {
                    branch: name.into(),
                    ty: a.interp.type_name(),
                    want: "it cannot be indexed".into(),
                })
            }
        }
        Ok(())
    }

    /// Per-event object counts, checked to agree across the given jagged branches.
    pub fn object_counts(&self, names: &[&str]) -> Result<Vec<usize>, InputError> {
        let Some(first) = names.first() else {
            return Ok(vec![0; self.chunk.len()]);
        };
        let a0 = self.jagged(first)?;
        let counts: Vec<usize> = (0..self.chunk.len())
            .map(|i| a0.entry_range(i).len())
            .collect();
        for n in &names[1..] {
            let a = self.jagged(n)?;
            for (i, &c) in counts.iter().enumerate() {
                let l = a.entry_range(i).len();
                if l != c {
                    return Err(InputError::Ragged {
                        a: first.to_string(),
                        b: n.to_string(),
                        entry: self.chunk.start + i as u64,
                        na: c,
                        nb: l,
                    });
                }
            }
        }
        Ok(counts)
    }
}

/// What to do with NaN/inf in event and per-object inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFinite {
    Error,
    PassThrough,
}

/// Rows filled together by [`fill_columns`]: a block of the `[n, c]` buffer (c floats a row)
/// stays in the cache while every plain column writes into it.
const ROW_BLOCK: usize = 256;

/// Copies rows `rows` of each `(j, data)` into column `j` of the row-major `[n, c]` buffer
/// `out`, a block of rows at a time (a column at a time would stream the whole buffer through
/// the cache once per column). Returns, per column, whether a copied value is not finite.
fn fill_columns(cols: &[(usize, &Data)], n: usize, out: &mut [f32], c: usize) -> Vec<bool> {
    let mut bad = vec![false; cols.len()];
    for r0 in (0..n).step_by(ROW_BLOCK) {
        let r1 = (r0 + ROW_BLOCK).min(n);
        let rows = &mut out[r0 * c..r1 * c];
        for (&(j, data), bad) in cols.iter().zip(bad.iter_mut()) {
            *bad |= fill_column(data, r0..r1, rows, j, c);
        }
    }
    bad
}

/// Copies values `r` of `data` into column `j` of `rows` (row-major, `c` floats a row, one row
/// per value); returns whether a copied value is not finite.
fn fill_column(
    data: &Data,
    r: std::ops::Range<usize>,
    rows: &mut [f32],
    j: usize,
    c: usize,
) -> bool {
    let mut finite = true;
    macro_rules! copy {
        ($v:expr, $conv:expr) => {
            for (row, x) in rows.chunks_exact_mut(c).zip(&$v[r]) {
                let y = $conv(*x);
                finite &= y.is_finite();
                row[j] = y;
            }
        };
    }
    match data {
        Data::F32(v) => copy!(v, |x: f32| x),
        Data::F64(v) => copy!(v, |x: f64| x as f32),
        Data::I32(v) => copy!(v, |x: i32| x as f32),
        Data::I64(v) => copy!(v, |x: i64| x as f32),
        Data::U32(v) => copy!(v, |x: u32| x as f32),
        Data::U64(v) => copy!(v, |x: u64| x as f32),
        Data::I16(v) => copy!(v, |x: i16| x as f32),
        Data::U16(v) => copy!(v, |x: u16| x as f32),
        Data::I8(v) => copy!(v, |x: i8| x as f32),
        Data::U8(v) => copy!(v, |x: u8| x as f32),
        Data::Bool(v) => copy!(v, |x: bool| x as u8 as f32),
    }
    !finite
}

/// With [`NonFinite::Error`], fails on the first NaN/inf in column `j` of the `[n, c]` buffer.
fn check_column(
    spec: &InputSpec,
    policy: NonFinite,
    view: &ChunkView,
    out: &[f32],
    j: usize,
    c: usize,
    e: &Expr,
) -> Result<(), InputError> {
    if policy != NonFinite::Error {
        return Ok(());
    }
    match out
        .iter()
        .skip(j)
        .step_by(c)
        .enumerate()
        .find(|(_, x)| !x.is_finite())
    {
        Some((i, &x)) => Err(non_finite(spec, view, j, e, i, x)),
        None => Ok(()),
    }
}

/// The error for value `x` of row `i` in column `j` (expression `e`), not finite.
fn non_finite(
    spec: &InputSpec,
    view: &ChunkView,
    j: usize,
    e: &Expr,
    i: usize,
    x: f32,
) -> InputError {
    InputError::NonFinite {
        input: spec.name.clone(),
        what: if x.is_nan() { "NaN" } else { "infinity" },
        column: j,
        expr: e.to_string(),
        entry: view.chunk.start + i as u64,
    }
}

/// Whether every value of `v` is finite (a pass that vectorises: no early exit within a block).
fn all_finite(v: &[f32]) -> bool {
    v.chunks(256)
        .all(|b| b.iter().fold(true, |ok, x| ok & x.is_finite()))
}

/// An event input's columns where the chunk holds them, for an engine that reads columns in
/// place: `Some` when every column is a plain float32 branch (no expression, no conversion),
/// `None` when the input has to be built ([`build`]). With [`NonFinite::Error`], fails as
/// `build` would, on the first column with a value that is not finite.
pub fn plain_columns<'a>(
    spec: &InputSpec,
    view: &ChunkView<'a>,
    policy: NonFinite,
) -> Result<Option<Vec<&'a [f32]>>, InputError> {
    let InputKind::Event { columns } = &spec.kind else {
        return Ok(None);
    };
    let n = view.chunk.len();
    let mut out = Vec::with_capacity(columns.len());
    for e in columns {
        let Expr::Var { name, index: None } = e else {
            return Ok(None);
        };
        let a = view.array(name)?;
        match (&a.interp.shape, &a.data) {
            (Shape::Scalar, Data::F32(v)) if v.len() >= n => out.push(&v[..n]),
            _ => return Ok(None),
        }
    }
    if policy == NonFinite::Error {
        for (j, (c, e)) in out.iter().zip(columns).enumerate() {
            // The exact place only when there is one to name.
            if !all_finite(c) {
                check_column(spec, policy, view, c, j, 1, e)?;
            }
        }
    }
    Ok(Some(out))
}

pub fn build(
    spec: &InputSpec,
    view: &ChunkView,
    policy: NonFinite,
    out: &mut Vec<f32>,
) -> Result<(), InputError> {
    let n = view.chunk.len();
    if !matches!(spec.kind, InputKind::Event { .. }) {
        out.clear();
    }
    match &spec.kind {
        InputKind::Event { columns } => {
            let c = columns.len();
            // Every value is written below: no need to zero a buffer of the right size.
            out.resize(n * c, 0.0);
            // A plain scalar branch goes straight into its column (no f64 round trip, no
            // expression evaluation): the common case of a model fed by branches.
            let mut plain = Vec::new();
            for (j, e) in columns.iter().enumerate() {
                if let Expr::Var { name, index: None } = e {
                    let a = view.array(name)?;
                    if a.interp.shape == Shape::Scalar && a.data.len() >= n {
                        plain.push((j, &a.data));
                    }
                }
            }
            let bad = fill_columns(&plain, n, out, c);
            // Column by column, as each would fail on its own: the first column with a
            // non-finite value or an expression that fails gives the error.
            let mut next = plain.iter().zip(&bad).peekable();
            for (j, e) in columns.iter().enumerate() {
                if let Some((_, &bad)) = next.next_if(|((k, _), _)| *k == j) {
                    if bad {
                        check_column(spec, policy, view, out, j, c, e)?;
                    }
                    continue;
                }
                let vals = e.eval(n, &mut |name, idx, o| view.event_values(name, idx, o))?;
                for (i, v) in vals.iter().enumerate() {
                    out[i * c + j] = *v as f32;
                }
                check_column(spec, policy, view, out, j, c, e)?;
            }
        }
        InputKind::Objects {
            vars,
            length,
            vars_first,
            count_branch,
        } => {
            let (c, l) = (vars.len(), *length);
            let mut names: Vec<&str> = vars
                .iter()
                .filter_map(|v| match v {
                    ObjectVar::Branch { name, .. } => Some(name.as_str()),
                    ObjectVar::Mask => None,
                })
                .collect();
            if names.is_empty() {
                names.extend(count_branch.as_deref());
            }
            let counts = view.object_counts(&names)?;
            out.resize(n * c * l, 0.0);
            let at = |i: usize, v: usize, k: usize| {
                if *vars_first {
                    (i * c + v) * l + k
                } else {
                    (i * l + k) * c + v
                }
            };
            for (v, var) in vars.iter().enumerate() {
                match var {
                    ObjectVar::Mask => {
                        for (i, &cnt) in counts.iter().enumerate() {
                            for k in 0..l {
                                out[at(i, v, k)] = (k < cnt) as u8 as f32;
                            }
                        }
                    }
                    ObjectVar::Branch { name, transform } => {
                        let a = view.jagged(name)?;
                        for i in 0..n {
                            let r = a.entry_range(i);
                            for k in 0..l {
                                let x = if r.start + k < r.end {
                                    let x = a.data.get_f64(r.start + k) as f32;
                                    if policy == NonFinite::Error && x.is_nan() {
                                        return Err(InputError::NonFinite {
                                            input: spec.name.clone(),
                                            what: "NaN",
                                            column: v,
                                            expr: name.clone(),
                                            entry: view.chunk.start + i as u64,
                                        });
                                    }
                                    transform.apply(x)
                                } else {
                                    transform.pad
                                };
                                out[at(i, v, k)] = x;
                            }
                        }
                    }
                }
            }
        }
        InputKind::ObjectRows { columns } => {
            let names: Vec<&str> = columns.iter().map(String::as_str).collect();
            let counts = view.object_counts(&names)?;
            let m: usize = counts.iter().sum();
            let c = columns.len();
            out.resize(m * c, 0.0);
            for (j, name) in columns.iter().enumerate() {
                let a = view.jagged(name)?;
                let mut row = 0;
                for i in 0..n {
                    for p in a.entry_range(i) {
                        let x = a.data.get_f64(p) as f32;
                        if policy == NonFinite::Error && !x.is_finite() {
                            return Err(InputError::NonFinite {
                                input: spec.name.clone(),
                                what: if x.is_nan() { "NaN" } else { "infinity" },
                                column: j,
                                expr: name.clone(),
                                entry: view.chunk.start + i as u64,
                            });
                        }
                        out[row * c + j] = x;
                        row += 1;
                    }
                }
            }
        }
    }
    Ok(())
}

/// k-fold routing: which model scores each event (`event % k`), as in even/odd ensembles where
/// model `i` was trained on events with `event % k != i`.
pub fn fold_of(event_numbers: &[f64], k: usize) -> Vec<usize> {
    event_numbers
        .iter()
        .map(|&e| {
            let e = e as i128;
            (e.rem_euclid(k as i128)) as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rootio::Chain;

    fn hzz_chunk(names: &[&str], n: u64) -> (Chunk, HashMap<String, usize>) {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/root/uproot-HZZ.root");
        let chain = Chain::open(&[p], "events").unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut it = chain.chunks(&names, n).unwrap();
        let mut c = Chunk::new();
        assert!(it.next_into(&mut c).unwrap());
        let idx = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        (c, idx)
    }

    #[test]
    fn event_columns_objects_and_rows_from_real_data() {
        let (c, idx) = hzz_chunk(&["MET_px", "MET_py", "NJet", "Jet_Px", "Jet_Py"], 50);
        let view = ChunkView::new(&c, &idx);
        let met = view.array("MET_px").unwrap();
        let jpx = view.array("Jet_Px").unwrap();
        // Event columns with an expression and an index past the end for jet-less events.
        let spec = InputSpec {
            name: "x".into(),
            unit_dims: 0,
            kind: InputKind::Event {
                columns: vec![
                    Expr::parse("sqrt(MET_px**2 + MET_py**2)").unwrap(),
                    Expr::parse("Jet_Px[0]").unwrap(),
                ],
            },
        };
        let mut out = Vec::new();
        build(&spec, &view, NonFinite::PassThrough, &mut out).unwrap();
        assert_eq!(out.len(), 100);
        let mpy = view.array("MET_py").unwrap();
        for i in 0..50 {
            let want = (met.data.get_f64(i).powi(2) + mpy.data.get_f64(i).powi(2)).sqrt() as f32;
            assert_eq!(out[2 * i], want);
            let r = jpx.entry_range(i);
            if r.is_empty() {
                assert!(out[2 * i + 1].is_nan());
            } else {
                assert_eq!(out[2 * i + 1], jpx.data.get_f64(r.start) as f32);
            }
        }
        // The NaN policy names the input, column and entry.
        let e = build(&spec, &view, NonFinite::Error, &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("column 1") && e.contains("Jet_Px[0]") && e.contains("entry 0"),
            "{e}"
        );

        // Objects padded to 3 with a mask, both layouts.
        for vars_first in [true, false] {
            let spec = InputSpec {
                name: "jets".into(),
                unit_dims: 0,
                kind: InputKind::Objects {
                    vars: vec![
                        ObjectVar::Branch {
                            name: "Jet_Px".into(),
                            transform: VarTransform {
                                scale: 0.5,
                                pad: -9.0,
                                ..Default::default()
                            },
                        },
                        ObjectVar::Mask,
                    ],
                    length: 3,
                    vars_first,
                    count_branch: None,
                },
            };
            build(&spec, &view, NonFinite::Error, &mut out).unwrap();
            assert_eq!(
                spec.shape(50, 0),
                if vars_first {
                    vec![50, 2, 3]
                } else {
                    vec![50, 3, 2]
                }
            );
            for i in 0..50 {
                let r = jpx.entry_range(i);
                for k in 0..3 {
                    let (v0, v1) = if vars_first {
                        (out[(i * 2) * 3 + k], out[(i * 2 + 1) * 3 + k])
                    } else {
                        (out[(i * 3 + k) * 2], out[(i * 3 + k) * 2 + 1])
                    };
                    if k < r.len() {
                        assert_eq!(v0, jpx.data.get_f64(r.start + k) as f32 * 0.5);
                        assert_eq!(v1, 1.0);
                    } else {
                        assert_eq!((v0, v1), (-9.0, 0.0));
                    }
                }
            }
        }
        // One row per jet.
        let spec = InputSpec {
            name: "j".into(),
            unit_dims: 0,
            kind: InputKind::ObjectRows {
                columns: vec!["Jet_Px".into(), "Jet_Py".into()],
            },
        };
        build(&spec, &view, NonFinite::Error, &mut out).unwrap();
        assert_eq!(out.len(), 2 * jpx.data.len());
        // Shapes must agree: a per-event branch as an object variable is an error.
        let bad = InputSpec {
            name: "b".into(),
            unit_dims: 0,
            kind: InputKind::ObjectRows {
                columns: vec!["MET_px".into()],
            },
        };
        assert!(build(&bad, &view, NonFinite::Error, &mut out)
            .unwrap_err()
            .to_string()
            .contains("MET_px"));
    }

    #[test]
    fn folds() {
        assert_eq!(fold_of(&[0.0, 1.0, 2.0, 3.0, 7.0], 2), vec![0, 1, 0, 1, 1]);
        assert_eq!(fold_of(&[10.0, 11.0, 12.0], 3), vec![1, 2, 0]);
    }
}
