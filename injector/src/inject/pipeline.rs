//! The scoring loop: chunks of events in, score columns out. Engine- and writer-agnostic:
//! a model is anything implementing [`Engine`]; the caller receives each chunk's output
//! columns and writes them (decorated copy or friend tree).

use super::inputs::{
    branch_index, build, fold_of, plain_columns, ChunkView, InputKind, InputSpec, NonFinite,
};
use rootio::{Chain, Chunk};

pub use super::error::InjectError;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use engine::{Engine, Tensor};

/// Which output tensor column goes to which new branch.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub tensor: String,
    /// Column of a `[N, K]` output (None: the output must have one column).
    pub column: Option<usize>,
    pub branch: String,
    pub double: bool,
}

/// What scores a job's events: one model, or a k-fold ensemble.
pub enum Models {
    Single(Box<dyn Engine>),
    Folds(Folds),
}

impl Models {
    /// Each model's description (engine, file, hash), in fold order.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Models::Single(s) => vec![s.describe()],
            Models::Folds(f) => f.members.iter().map(|m| m.describe()).collect(),
        }
    }
}

/// k-fold ensemble: member `i` scores events whose `branch` value has `value % k == i`.
pub struct Folds {
    pub branch: String,
    pub members: Vec<Box<dyn Engine>>,
}

pub struct ModelJob {
    pub name: String,
    pub models: Models,
    /// The engine chosen for each model (fold order) and why.
    pub choices: Vec<engine::Choice>,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    /// True when inputs are per-object rows: outputs become jagged branches.
    pub per_object: bool,
    /// NaN/inf in this model's inputs: `--nan`, else what the model's spec or metadata says.
    pub nan: NonFinite,
}

/// Where the time of a run went, stage by stage (wall time of each stage's own work).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stages {
    /// Reading: decompression and decoding of the branches the models read (its own thread).
    pub read: Duration,
    /// The scoring thread waiting for the reader (reading is the bottleneck when large).
    pub wait: Duration,
    /// Building the models' input tensors from the branches.
    pub inputs: Duration,
    /// The engines' inference.
    pub inference: Duration,
    /// Writing: the output's start (a decorated copy's original baskets), compression of the
    /// new branches and output I/O (its own thread).
    pub write: Duration,
    /// The writer waiting for scores (scoring is the bottleneck when large).
    pub write_wait: Duration,
}

impl Stages {
    /// Adds another run's (or chunk's) time, stage by stage.
    pub fn add(&mut self, o: &Stages) {
        self.read += o.read;
        self.wait += o.wait;
        self.inputs += o.inputs;
        self.inference += o.inference;
        self.write += o.write;
        self.write_wait += o.write_wait;
    }

    /// One line: each stage's events per second (of its own time) and seconds, for `events`.
    pub fn report(&self, events: u64) -> String {
        let rate = |d: Duration| {
            let s = d.as_secs_f64();
            if s > 0.0 {
                format!("{:.0} events/s ({s:.3} s)", events as f64 / s)
            } else {
                "- (0 s)".into()
            }
        };
        format!(
            "read {}, input building {}, inference {}, writing {}; the scorer waited {:.3} s for \
             reads, the writer {:.3} s for scores",
            rate(self.read),
            rate(self.inputs),
            rate(self.inference),
            rate(self.write),
            self.wait.as_secs_f64(),
            self.write_wait.as_secs_f64()
        )
    }
}

/// One output branch's values for a chunk: per event, or per object with per-event counts.
#[derive(Debug, Clone, PartialEq)]
pub struct OutColumn {
    pub branch: String,
    pub double: bool,
    pub values: Vec<f32>,
    pub counts: Option<Vec<usize>>,
}

impl ModelJob {
    pub fn branches(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for i in &self.inputs {
            for b in i.branches() {
                if !v.contains(&b) {
                    v.push(b);
                }
            }
        }
        if let Models::Folds(f) = &self.models {
            if !v.contains(&f.branch) {
                v.push(f.branch.clone());
            }
        }
        v
    }

    fn check(&self) -> Result<(), InjectError> {
        let rows = self
            .inputs
            .iter()
            .filter(|i| matches!(i.kind, InputKind::ObjectRows { .. }))
            .count();
        if rows > 0 && rows != self.inputs.len() {
            return Err(InjectError::Config(format!(
                "model '{}': per-object row inputs cannot be mixed with per-event inputs",
                self.name
            )));
        }
        if self.outputs.is_empty() {
            return Err(InjectError::Config(format!(
                "model '{}': no output branch",
                self.name
            )));
        }
        Ok(())
    }

    /// Scores one chunk; appends one column per output spec to `cols`, their values in buffers
    /// taken from `pool` when it has some. The time spent building inputs and in inference is
    /// added to `stages`.
    pub fn score_chunk(
        &self,
        view: &ChunkView,
        scratch: &mut Vec<Vec<f32>>,
        pool: &mut Vec<Vec<f32>>,
        cols: &mut Vec<OutColumn>,
        stages: &mut Stages,
    ) -> Result<(), InjectError> {
        let t = Instant::now();
        let n = view.chunk.len();
        scratch.resize_with(self.inputs.len(), Vec::new);
        let mut counts = None;
        let mut rows = n;
        if self.per_object {
            let names: Vec<String> = self.inputs.iter().flat_map(|i| i.branches()).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let c = view.object_counts(&refs)?;
            rows = c.iter().sum();
            counts = Some(c);
        }
        // Plain float branches go to an engine that reads them where they lie; otherwise the
        // input tensors are built.
        let in_place = self.in_place(view)?;
        let mut tensors = Vec::with_capacity(self.inputs.len());
        if in_place.is_none() {
            for (spec, buf) in self.inputs.iter().zip(scratch.iter_mut()) {
                build(spec, view, self.nan, buf)?;
                tensors.push(Tensor {
                    name: spec.name.clone(),
                    shape: spec.shape(n, rows),
                    data: std::mem::take(buf),
                });
            }
        }
        let t = {
            let now = Instant::now();
            stages.inputs += now - t;
            now
        };
        let outs = match (in_place, &self.models) {
            (Some((s, cols)), _) => s
                .run_columns(&cols, n)
                .map_err(|e| self.err(e.to_string()))?,
            (None, Models::Single(s)) => self.run(&**s, &tensors)?,
            (None, Models::Folds(f)) => self.run_folds(f, view, &tensors, counts.as_deref())?,
        };
        stages.inference += t.elapsed();
        // Give the buffers back for the next chunk.
        for (t, buf) in tensors.into_iter().zip(scratch.iter_mut()) {
            *buf = t.data;
        }
        for o in &self.outputs {
            let t = outs
                .iter()
                .find(|t| t.name == o.tensor)
                .ok_or_else(|| self.err(format!("no output tensor '{}'", o.tensor)))?;
            let k = if t.shape.len() <= 1 {
                1
            } else {
                t.shape[1..].iter().product()
            };
            if t.shape.first().copied() != Some(rows) {
                return Err(self.err(format!(
                    "output '{}' has shape {:?}, expected {rows} rows",
                    t.name, t.shape
                )));
            }
            let j = match o.column {
                Some(j) if j < k => j,
                Some(j) => {
                    return Err(self.err(format!(
                        "output '{}' has {k} columns; column {j} requested",
                        t.name
                    )))
                }
                None if k == 1 => 0,
                None => {
                    return Err(self.err(format!(
                        "output '{}' has {k} columns; choose one per branch",
                        t.name
                    )))
                }
            };
            let mut values = pool.pop().unwrap_or_default();
            values.clear();
            values.extend((0..rows).map(|r| t.data[r * k + j]));
            cols.push(OutColumn {
                branch: o.branch.clone(),
                double: o.double,
                values,
                counts: counts.clone(),
            });
        }
        Ok(())
    }

    /// A single model on an engine that reads columns, with every input a set of plain float
    /// branches: the engine and, per input, the chunk's columns (in the model's input order).
    #[allow(clippy::type_complexity)]
    fn in_place<'a>(
        &'a self,
        view: &ChunkView<'a>,
    ) -> Result<Option<(&'a dyn Engine, Vec<Vec<&'a [f32]>>)>, InjectError> {
        let Models::Single(s) = &self.models else {
            return Ok(None);
        };
        if self.per_object || !s.reads_columns() {
            return Ok(None);
        }
        let ports = &s.info().inputs;
        if ports.len() != self.inputs.len() {
            return Ok(None);
        }
        let n = view.chunk.len();
        let mut cols = Vec::with_capacity(ports.len());
        for p in ports {
            // Inputs that do not fit the model take the rows' path, which says why.
            let Some(spec) = self.inputs.iter().find(|i| i.name == p.name) else {
                return Ok(None);
            };
            if !p.fits(&spec.shape(n, n)) {
                return Ok(None);
            }
            match plain_columns(spec, view, self.nan)? {
                Some(c) => cols.push(c),
                None => return Ok(None),
            }
        }
        Ok(Some((&**s, cols)))
    }

    fn err(&self, msg: String) -> InjectError {
        InjectError::Model {
            model: self.name.clone(),
            msg,
        }
    }

    fn run(&self, s: &dyn Engine, tensors: &[Tensor]) -> Result<Vec<Tensor>, InjectError> {
        s.run(tensors).map_err(|e| self.err(e.to_string()))
    }

    /// Splits the chunk's rows by fold, scores each part with its member, and puts the rows back
    /// in event order.
    fn run_folds(
        &self,
        f: &Folds,
        view: &ChunkView,
        tensors: &[Tensor],
        counts: Option<&[usize]>,
    ) -> Result<Vec<Tensor>, InjectError> {
        let n = view.chunk.len();
        let mut ev = vec![0.0; n];
        view.event_values(&f.branch, None, &mut ev)?;
        let k = f.members.len();
        let fold_ev = fold_of(&ev, k);
        // Row -> fold (rows are events, or objects of events).
        let fold_row: Vec<usize> = match counts {
            None => fold_ev,
            Some(c) => c
                .iter()
                .zip(&fold_ev)
                .flat_map(|(&m, &fo)| std::iter::repeat_n(fo, m))
                .collect(),
        };
        let rows = fold_row.len();
        let mut merged: Vec<Tensor> = Vec::new();
        for (i, member) in f.members.iter().enumerate() {
            let sel: Vec<usize> = (0..rows).filter(|&r| fold_row[r] == i).collect();
            if sel.is_empty() {
                continue;
            }
            let part: Vec<Tensor> = tensors
                .iter()
                .map(|t| {
                    let w: usize = t.shape[1..].iter().product();
                    let mut d = Vec::with_capacity(sel.len() * w);
                    for &r in &sel {
                        d.extend_from_slice(&t.data[r * w..(r + 1) * w]);
                    }
                    let mut shape = t.shape.clone();
                    shape[0] = sel.len();
                    Tensor {
                        name: t.name.clone(),
                        shape,
                        data: d,
                    }
                })
                .collect();
            let outs = self.run(&**member, &part).map_err(|e| match e {
                InjectError::Model { model, msg } => InjectError::Model {
                    model: format!("{model} (fold {i})"),
                    msg,
                },
                e => e,
            })?;
            for o in outs {
                let w: usize = o.shape[1..].iter().product();
                if o.shape.first().copied() != Some(sel.len()) {
                    return Err(self.err(format!(
                        "fold {i} output '{}' has shape {:?}",
                        o.name, o.shape
                    )));
                }
                let m = match merged.iter_mut().find(|m| m.name == o.name) {
                    Some(m) => m,
                    None => {
                        let mut shape = o.shape.clone();
                        shape[0] = rows;
                        merged.push(Tensor {
                            name: o.name.clone(),
                            shape,
                            data: vec![f32::NAN; rows * w],
                        });
                        merged.last_mut().expect("pushed")
                    }
                };
                for (j, &r) in sel.iter().enumerate() {
                    m.data[r * w..(r + 1) * w].copy_from_slice(&o.data[j * w..(j + 1) * w]);
                }
            }
        }
        Ok(merged)
    }
}

/// Chunk buffers in flight: at least one being read, one queued, one being scored; more, up to
/// [`IN_FLIGHT_MAX`], while all of them hold at most [`IN_FLIGHT_BYTES`]. The reader's chunks
/// are uneven (one that starts baskets decompresses them, the next ones copy), and a deeper
/// queue lets it run ahead on the light ones: 100 files of 20k events took 0.485 s with up to
/// 6 against 0.509 s with 3 (medians of 10 runs, alternated), one file the same (0.428 /
/// 0.427 s); 12 gained nothing more.
const IN_FLIGHT: usize = 3;
const IN_FLIGHT_MAX: usize = 6;
const IN_FLIGHT_BYTES: usize = 48 << 20;

/// Scored chunks the writer may lag behind the scorer, so that scoring goes on while the writer
/// starts the output. Each holds its columns and the engines' output tensors until written:
/// two keep the pipeline going (the writer is rarely the slowest stage) at bounded memory.
const SCORED_AHEAD: usize = 2;

/// An input of a run as the pipeline sees it: opened, with the tree to read.
pub trait Input: Send + Sync {
    fn chain(&self) -> &Chain;
}

impl Input for Chain {
    fn chain(&self) -> &Chain {
        self
    }
}

/// One chunk's scores, as the writer receives them.
#[derive(Debug)]
pub struct Scored {
    /// The chunk's file in the input's chain.
    pub member: usize,
    /// Its first entry in that file's tree.
    pub start: u64,
    /// Its events.
    pub len: usize,
    /// Every job's output columns, jobs in order.
    pub cols: Vec<OutColumn>,
    /// The time this chunk took to read and score (and the scorer's wait for it).
    pub stages: Stages,
}

/// What goes from the reader to the scorer, and on to the writer: an input (or why it could
/// not be opened, which ends the run after the inputs before it are written), then its chunks.
enum Fed<I, C> {
    Input(Result<std::sync::Arc<I>, InjectError>),
    Chunk(C),
}

/// The writer's end of [`run`]: each input, then its scored chunks, inputs in order.
pub struct ScoredChunks<I> {
    rx: mpsc::Receiver<Result<Fed<I, Scored>, InjectError>>,
    back: mpsc::Sender<Vec<OutColumn>>,
    /// The next input, received while asking for a chunk of the previous one.
    pending: Option<Result<std::sync::Arc<I>, InjectError>>,
    wait: Duration,
}

impl<I> ScoredChunks<I> {
    fn next(&mut self) -> Result<Option<Fed<I, Scored>>, InjectError> {
        let t = Instant::now();
        let r = self.rx.recv();
        self.wait += t.elapsed();
        match r {
            Ok(s) => s.map(Some),
            Err(mpsc::RecvError) => Ok(None),
        }
    }

    /// The next input; None after the last one.
    pub fn next_input(&mut self) -> Result<Option<std::sync::Arc<I>>, InjectError> {
        if let Some(i) = self.pending.take() {
            return i.map(Some);
        }
        match self.next()? {
            Some(Fed::Input(i)) => i.map(Some),
            Some(Fed::Chunk(_)) => Err(InjectError::Config(
                "scores arrived before their input (a pipeline defect)".into(),
            )),
            None => Ok(None),
        }
    }

    /// The current input's next chunk of scores; None after its last one.
    pub fn recv(&mut self) -> Result<Option<Scored>, InjectError> {
        if self.pending.is_some() {
            return Ok(None);
        }
        match self.next()? {
            Some(Fed::Chunk(s)) => Ok(Some(s)),
            Some(Fed::Input(i)) => {
                self.pending = Some(i);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The time spent so far waiting for scores.
    pub fn waited(&self) -> Duration {
        self.wait
    }

    /// Hands a chunk's columns back: the scorer refills their buffers.
    pub fn recycle(&self, cols: Vec<OutColumn>) {
        // The scorer may have finished; then the buffers are simply dropped.
        let _ = self.back.send(cols);
    }
}

/// Runs every model over a sequence of inputs as a pipeline of three threads joined by bounded
/// queues: reading (opening each input in turn, then decompression and decoding of the
/// branches the models read, on up to `threads` threads), scoring (input building and
/// inference, which uses the engines' own `threads`), and writing, which is `write`, run on the
/// calling thread with each input and then its scored chunks. The stages run on from one input
/// to the next without draining, so many small files go as fast as one large one. Chunk and
/// column buffers go round and are reused, so memory depends on the chunk size, not on the
/// number of events or of inputs. Returns what `write` returns.
pub fn run<I: Input, R>(
    inputs: impl Iterator<Item = Result<I, InjectError>> + Send,
    jobs: &[ModelJob],
    chunk_size: u64,
    threads: usize,
    write: impl FnOnce(&mut ScoredChunks<I>) -> Result<R, InjectError>,
) -> Result<R, InjectError> {
    let mut names: Vec<String> = Vec::new();
    for j in jobs {
        j.check()?;
        for b in j.branches() {
            if !names.contains(&b) {
                names.push(b);
            }
        }
    }
    let index = branch_index(&names);
    let (full_tx, full_rx) =
        mpsc::sync_channel::<Result<Fed<I, (Chunk, Duration)>, InjectError>>(IN_FLIGHT_MAX);
    let (empty_tx, empty_rx) = mpsc::channel::<Chunk>();
    for _ in 0..IN_FLIGHT {
        // Cannot fail: the receiver is alive.
        let _ = empty_tx.send(Chunk::new());
    }
    let (scored_tx, scored_rx) = mpsc::sync_channel(SCORED_AHEAD);
    let (back_tx, back_rx) = mpsc::channel::<Vec<OutColumn>>();
    std::thread::scope(|s| {
        let names = &names;
        let reader = s.spawn(move || {
            // A buffer taken but not filled at the end of an input serves the next one, and so
            // do the branch readers' basket buffers.
            let mut spare: Option<Chunk> = None;
            let mut buffers = Vec::new();
            // Chunk buffers made so far, and the size of the last chunk read.
            let (mut made, mut last) = (IN_FLIGHT, 0);
            for input in inputs {
                let failed = |e: InjectError| {
                    let _ = full_tx.send(Ok(Fed::Input(Err(e))));
                };
                let input = match input {
                    Ok(i) => std::sync::Arc::new(i),
                    Err(e) => return failed(e),
                };
                let mut it = match input.chain().chunks(names, chunk_size) {
                    Ok(it) => it
                        .threads(threads)
                        .with_buffers(std::mem::take(&mut buffers)),
                    Err(e) => return failed(e.into()),
                };
                if full_tx.send(Ok(Fed::Input(Ok(input.clone())))).is_err() {
                    return;
                }
                loop {
                    let mut chunk = match spare.take().ok_or(()).or_else(|()| empty_rx.try_recv()) {
                        Ok(c) => c,
                        Err(_) if made < IN_FLIGHT_MAX && (made + 1) * last <= IN_FLIGHT_BYTES => {
                            made += 1;
                            Chunk::new()
                        }
                        Err(_) => match empty_rx.recv() {
                            Ok(c) => c,
                            Err(_) => return,
                        },
                    };
                    let t = Instant::now();
                    let msg = match it.next_into(&mut chunk) {
                        Ok(true) => {
                            last = chunk.bytes();
                            Ok(Fed::Chunk((chunk, t.elapsed())))
                        }
                        Ok(false) => {
                            spare = Some(chunk);
                            buffers = it.into_buffers();
                            break;
                        }
                        Err(e) => Err(e.into()),
                    };
                    let stop = msg.is_err();
                    if full_tx.send(msg).is_err() || stop {
                        return;
                    }
                }
            }
        });
        let index = &index;
        let scorer = s.spawn(move || {
            let mut scratch: Vec<Vec<Vec<f32>>> = jobs.iter().map(|_| Vec::new()).collect();
            let mut pool: Vec<Vec<f32>> = Vec::new();
            // Waiting for an input counts with its first chunk.
            let mut waited = Duration::ZERO;
            loop {
                let t = Instant::now();
                let Ok(msg) = full_rx.recv() else {
                    return;
                };
                waited += t.elapsed();
                pool.extend(back_rx.try_iter().flatten().map(|c| c.values));
                let out = msg.and_then(|fed| match fed {
                    Fed::Input(i) => Ok(Fed::Input(i)),
                    Fed::Chunk((chunk, read)) => {
                        let mut stages = Stages {
                            read,
                            wait: std::mem::take(&mut waited),
                            ..Stages::default()
                        };
                        let view = ChunkView::new(&chunk, index);
                        let mut cols = Vec::new();
                        for (j, s) in jobs.iter().zip(scratch.iter_mut()) {
                            j.score_chunk(&view, s, &mut pool, &mut cols, &mut stages)?;
                        }
                        let scored = Scored {
                            member: chunk.member,
                            start: chunk.start,
                            len: chunk.len(),
                            cols,
                            stages,
                        };
                        // The reader may have stopped already; then the buffer is dropped.
                        let _ = empty_tx.send(chunk);
                        Ok(Fed::Chunk(scored))
                    }
                });
                let stop = out.is_err();
                if scored_tx.send(out).is_err() || stop {
                    return;
                }
            }
        });
        let mut chunks = ScoredChunks {
            rx: scored_rx,
            back: back_tx,
            pending: None,
            wait: Duration::ZERO,
        };
        let result = write(&mut chunks);
        // Unblock the scorer (and through it the reader) if the writer stopped early.
        drop(chunks);
        scorer
            .join()
            .map_err(|_| InjectError::Config("the scoring thread panicked".into()))?;
        reader
            .join()
            .map_err(|_| InjectError::Config("the reading thread panicked".into()))?;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;
    use std::collections::HashMap;

    /// A real (if tiny) model: y = w . x + b per row, written out in Rust so the pipeline's
    /// routing and reshaping can be checked against an independent computation.
    struct Linear {
        w: Vec<f32>,
        b: f32,
    }
    static LINEAR_INFO: std::sync::LazyLock<engine::ModelInfo> =
        std::sync::LazyLock::new(|| engine::ModelInfo {
            path: "linear".into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            metadata: Default::default(),
            producer: String::new(),
            hash: String::new(),
        });
    impl Engine for Linear {
        fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, engine::EngineError> {
            let x = &inputs[0];
            let c = x.shape[1];
            if c != self.w.len() {
                return Err(engine::EngineError::Config(format!(
                    "expected {} columns, got {c}",
                    self.w.len()
                )));
            }
            let data: Vec<f32> = x
                .data
                .chunks(c)
                .map(|r| r.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f32>() + self.b)
                .collect();
            Ok(vec![Tensor {
                name: "y".into(),
                shape: vec![x.shape[0], 1],
                data,
            }])
        }
        fn describe(&self) -> String {
            "linear".into()
        }
        fn info(&self) -> &engine::ModelInfo {
            &LINEAR_INFO
        }
    }

    fn hzz() -> Chain {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/root/uproot-HZZ.root");
        Chain::open(&[p], "events").unwrap()
    }

    #[test]
    fn folds_route_events_and_objects_to_their_member() {
        let chain = hzz();
        let cols = vec![
            Expr::parse("MET_px").unwrap(),
            Expr::parse("MET_py").unwrap(),
        ];
        let job = ModelJob {
            name: "m".into(),
            choices: Vec::new(),
            models: Models::Folds(Folds {
                branch: "NPrimaryVertices".into(),
                members: vec![
                    Box::new(Linear {
                        w: vec![1.0, 0.0],
                        b: 0.0,
                    }),
                    Box::new(Linear {
                        w: vec![0.0, 1.0],
                        b: 100.0,
                    }),
                ],
            }),
            inputs: vec![InputSpec {
                name: "x".into(),
                unit_dims: 0,
                kind: InputKind::Event { columns: cols },
            }],
            outputs: vec![OutputSpec {
                tensor: "y".into(),
                column: None,
                branch: "s".into(),
                double: false,
            }],
            per_object: false,
            nan: NonFinite::Error,
        };
        let jet = ModelJob {
            name: "jets".into(),
            choices: Vec::new(),
            models: Models::Single(Box::new(Linear {
                w: vec![2.0],
                b: 0.0,
            })),
            inputs: vec![InputSpec {
                name: "x".into(),
                unit_dims: 0,
                kind: InputKind::ObjectRows {
                    columns: vec!["Jet_Px".into()],
                },
            }],
            outputs: vec![OutputSpec {
                tensor: "y".into(),
                column: None,
                branch: "jet_s".into(),
                double: false,
            }],
            per_object: true,
            nan: NonFinite::Error,
        };
        let mut seen = 0;
        let names: Vec<String> = ["MET_px", "MET_py", "NPrimaryVertices", "Jet_Px"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let index: HashMap<String, usize> = branch_index(&names);
        // The writer reads the same chunks itself, to check each one's scores.
        let mut own = chain.chunks(&names, 700).unwrap();
        let mut chunk = Chunk::new();
        run(std::iter::once(Ok(hzz())), &[job, jet], 700, 2, |scored| {
            assert!(scored.next_input()?.is_some());
            while let Some(s) = scored.recv()? {
                assert!(own.next_into(&mut chunk)?);
                assert_eq!((s.member, s.start, s.len), (0, chunk.start, chunk.len()));
                let cols = &s.cols;
                let view = ChunkView::new(&chunk, &index);
                let (px, py, npv) = (
                    view.array("MET_px")?,
                    view.array("MET_py")?,
                    view.array("NPrimaryVertices")?,
                );
                for i in 0..chunk.len() {
                    let want = if npv.data.get_f64(i) as i64 % 2 == 0 {
                        px.data.get_f64(i) as f32
                    } else {
                        py.data.get_f64(i) as f32 + 100.0
                    };
                    assert_eq!(cols[0].values[i], want, "event {}", chunk.start + i as u64);
                }
                let jpx = view.array("Jet_Px")?;
                assert_eq!(cols[1].values.len(), jpx.data.len());
                assert_eq!(
                    cols[1].counts.as_ref().unwrap().iter().sum::<usize>(),
                    jpx.data.len()
                );
                for (v, k) in cols[1].values.iter().zip(0..) {
                    assert_eq!(*v, 2.0 * jpx.data.get_f64(k) as f32);
                }
                seen += chunk.len();
                // The next chunks' scores land in these buffers.
                scored.recycle(s.cols);
            }
            Ok(())
        })
        .unwrap();
        assert!(!own.next_into(&mut chunk).unwrap());
        assert_eq!(seen, 2421);
    }

    /// A job named `name` scoring MET_px with a linear model that expects `width` columns.
    fn met_job(name: &str, width: usize) -> ModelJob {
        ModelJob {
            name: name.into(),
            choices: Vec::new(),
            models: Models::Single(Box::new(Linear {
                w: vec![1.0; width],
                b: 0.0,
            })),
            inputs: vec![InputSpec {
                name: "x".into(),
                unit_dims: 0,
                kind: InputKind::Event {
                    columns: vec![Expr::parse("MET_px").unwrap()],
                },
            }],
            outputs: vec![OutputSpec {
                tensor: "y".into(),
                column: None,
                branch: "s".into(),
                double: false,
            }],
            per_object: false,
            nan: NonFinite::Error,
        }
    }

    /// Plain float branches go to the native engine as columns, read where the chunk holds
    /// them; tract takes rows built from the same branches. Both paths give the same scores
    /// (a NaN row stays NaN), and the NaN policy's error names the same column and entry: the
    /// first column with a value that is not finite (here the infinity in `a` at entry 1500,
    /// though `b` has a NaN at entry 1234).
    #[test]
    fn columns_read_in_place_score_as_rows_do() {
        use engine::{EngineKind, EngineOptions, Model};
        use rootio::write::{BranchSpec, FileWriter, TreeWriter};
        use rootio::{Array, Compression, Data, Prim, Shape};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in.root");
        let n = 3000;
        let mut next = testutil::uniform_f32(7);
        let (mut a, mut b): (Vec<f32>, Vec<f32>) = (0..n).map(|_| (next(), next())).unzip();
        let c: Vec<f64> = (0..n).map(|i| i as f64 / 100.0).collect();
        a[1500] = f32::INFINITY;
        b[1234] = f32::NAN;
        let (a0, b0) = (a.clone(), b.clone());
        let mut fw = FileWriter::create(&root, Compression::DEFAULT).unwrap();
        let specs = [
            BranchSpec::scalar("a", Prim::F32),
            BranchSpec::scalar("b", Prim::F32),
            BranchSpec::scalar("c", Prim::F64),
        ];
        let mut tw = TreeWriter::new(&mut fw, "events", "", &specs).unwrap();
        for (k, (p, d)) in [
            (Prim::F32, Data::F32(a)),
            (Prim::F32, Data::F32(b)),
            (Prim::F64, Data::F64(c)),
        ]
        .into_iter()
        .enumerate()
        {
            tw.append(&mut fw, k, &Array::of(p, Shape::Scalar, n, d, None))
                .unwrap();
        }
        tw.finish(&mut fw).unwrap();
        fw.finish().unwrap();
        let mut w = testutil::uniform_f32(11);
        let onnx = dir.path().join("mlp.onnx");
        let layers = [(2, 16), (16, 1)]
            .map(|(k, m)| (k, m, (0..k * m).map(|_| w()).collect(), vec![0.1; m]));
        let dense = engine::onnx_build::Dense {
            input: "x".into(),
            output: "y".into(),
            layers: layers.to_vec(),
            hidden: "Relu".into(),
            final_act: "Sigmoid".into(),
            metadata: Vec::new(),
            standardise: Some((vec![0.5, 0.4], vec![0.3, 0.2])),
        };
        std::fs::write(&onnx, dense.to_bytes()).unwrap();
        let model = Model::read(&onnx).unwrap();
        let job = |kind, columns: &[&str], nan| {
            let opts = EngineOptions {
                kind,
                threads: 2,
                ..Default::default()
            };
            let e = engine::open(&model, &opts).unwrap().into_engine();
            assert_eq!(e.reads_columns(), kind == EngineKind::Native);
            let mut j = met_job("m", 2);
            j.models = Models::Single(e);
            j.inputs[0].kind = InputKind::Event {
                columns: columns.iter().map(|c| Expr::parse(c).unwrap()).collect(),
            };
            j.nan = nan;
            j
        };
        let scores = |j: ModelJob| {
            let chain = Chain::open(std::slice::from_ref(&root), "events").unwrap();
            run(std::iter::once(Ok(chain)), &[j], 1000, 2, |scored| {
                let mut v = Vec::new();
                scored.next_input()?;
                while let Some(s) = scored.recv()? {
                    v.extend_from_slice(&s.cols[0].values);
                }
                Ok(v)
            })
        };
        let pass = NonFinite::PassThrough;
        let native = scores(job(EngineKind::Native, &["a", "b"], pass)).unwrap();
        let tract = scores(job(EngineKind::Tract, &["a", "b"], pass)).unwrap();
        assert_eq!(native.len(), n);
        // Engines differ on values that are not finite (tract turns a NaN through a ReLU into
        // a number; the native evaluator keeps it, as onnxruntime does), so the rows with one
        // are checked against the native engine given them as rows.
        let odd = [1234, 1500];
        let finite = |v: &[f32]| -> Vec<f32> {
            let mut v = v.to_vec();
            odd.iter().for_each(|&i| v[i] = 0.0);
            v
        };
        assert!(testutil::max_diff(&finite(&native), &finite(&tract)) <= 1e-6);
        let rows: Vec<f32> = odd.iter().flat_map(|&i| [a0[i], b0[i]]).collect();
        let e = engine::open(&model, &Default::default())
            .unwrap()
            .into_engine();
        let want = e.run(&[Tensor::new("x", vec![2, 2], rows)]).unwrap();
        let got: Vec<f32> = odd.iter().map(|&i| native[i]).collect();
        assert_eq!(testutil::max_diff(&got, &want[0].data), 0.0, "{got:?}");
        assert!(got[0].is_nan(), "a NaN input scores NaN: {got:?}");
        // A double branch is converted: the rows' path on both engines, the same values.
        let mixed = scores(job(EngineKind::Native, &["a", "c"], pass)).unwrap();
        let mixed_t = scores(job(EngineKind::Tract, &["a", "c"], pass)).unwrap();
        assert!(testutil::max_diff(&finite(&mixed), &finite(&mixed_t)) <= 1e-6);
        for (columns, want) in [
            (["b", "a"], "NaN in column 0 ('b') at entry 1234"),
            (["a", "b"], "infinity in column 0 ('a') at entry 1500"),
        ] {
            let err = |kind| {
                scores(job(kind, &columns, NonFinite::Error))
                    .unwrap_err()
                    .to_string()
            };
            let e = err(EngineKind::Native);
            assert_eq!(e, err(EngineKind::Tract));
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_writer_that_fails_stops_reading_and_scoring() {
        let chain = hzz();
        let job = met_job("m", 1);
        // Chunks of 10 events: the reader and scorer would fill every queue if they did not
        // stop; the run must return the writer's error (and not hang).
        let mut got = 0;
        let e = run(std::iter::once(Ok(chain)), &[job], 10, 2, |scored| {
            scored.next_input()?;
            got += scored.recv()?.map_or(0, |s| s.len);
            Err::<(), _>(InjectError::Config("disk full".into()))
        })
        .unwrap_err();
        assert_eq!((e.to_string(), got), ("disk full".to_string(), 10));
    }

    #[test]
    fn model_errors_name_the_model() {
        let chain = hzz();
        let job = met_job("bad.onnx", 3);
        let e = run(std::iter::once(Ok(chain)), &[job], 1000, 1, |scored| {
            scored.next_input()?;
            while scored.recv()?.is_some() {}
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("bad.onnx") && e.contains("expected 3 columns"),
            "{e}"
        );
    }
}
