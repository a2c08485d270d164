//! Models whose graph fixes the batch at one: `torch.onnx.export` without `dynamic_axes` writes
//! every dimension as the example input had it, and an example of one event is the usual
//! choice. The native dense and tree evaluators compute each row on its own whatever the graph
//! declares, so they take such a model's batches whole; every other engine gets them one event
//! at a time.

use crate::{parts, Choice, Engine, EngineError, ModelInfo, Opened, Tensor};

/// Whether `info` declares a first dimension of 1 for every input, and no other fixed first
/// dimension for an output (converters often leave the outputs' batch symbolic).
pub(crate) fn is_fixed_one(info: &ModelInfo) -> bool {
    !info.inputs.is_empty()
        && info
            .inputs
            .iter()
            .all(|p| p.shape.first() == Some(&Some(1)))
        && info
            .outputs
            .iter()
            .all(|p| matches!(p.shape.first(), None | Some(None) | Some(Some(1))))
}

/// What a choice's reason adds for the native dense and tree evaluators.
const ROWS_ON_THEIR_OWN: &str =
    "; the graph fixes the batch at 1, which rows computed each on its own ignore";

/// `info` with the first dimension of every port free: the batch.
fn free_batch(info: &mut ModelInfo) {
    for p in info.inputs.iter_mut().chain(info.outputs.iter_mut()) {
        if let Some(d) = p.shape.first_mut() {
            *d = None;
        }
    }
}

/// An engine `open` loaded for a model with a batch fixed at one, made to take any batch (and
/// the reason its choice records says how); other models' engines unchanged.
pub(crate) fn fit(opened: Opened, mut choice: Choice, threads: usize) -> (Opened, Choice) {
    if !is_fixed_one(opened.engine().info()) {
        return (opened, choice);
    }
    let opened = match opened {
        Opened::Native(mut e) => {
            free_batch(&mut e.info);
            choice.reason.push_str(ROWS_ON_THEIR_OWN);
            Opened::Native(e)
        }
        Opened::Trees(mut e) => {
            free_batch(&mut e.info);
            choice.reason.push_str(ROWS_ON_THEIR_OWN);
            Opened::Trees(e)
        }
        Opened::Other(e) => {
            choice
                .reason
                .push_str("; the graph fixes the batch at 1: events one at a time");
            Opened::Other(Box::new(EventByEvent::new(e, threads)))
        }
    };
    (opened, choice)
}

/// An engine for a graph with a batch of one, given larger batches: each event is one call,
/// the calls spread over `threads` threads, the outputs put back together in event order.
struct EventByEvent {
    inner: Box<dyn Engine>,
    /// The inner engine's ports with the batch free.
    info: ModelInfo,
    threads: usize,
}

impl EventByEvent {
    fn new(inner: Box<dyn Engine>, threads: usize) -> Self {
        let mut info = inner.info().clone();
        free_batch(&mut info);
        let threads = match threads {
            0 => parts::cores(),
            n => n,
        };
        EventByEvent {
            inner,
            info,
            threads,
        }
    }

    /// Events `rows` of `inputs` (checked, `batch` events), one call each: per output, one
    /// event's (name, shape) and the values of all.
    fn part(
        &self,
        inputs: &[&Tensor],
        batch: usize,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<Tensor>, EngineError> {
        let mut outs: Vec<Tensor> = Vec::new();
        for i in rows {
            let one: Vec<Tensor> = inputs
                .iter()
                .map(|t| {
                    let w = t.data.len() / batch;
                    let mut shape = t.shape.clone();
                    shape[0] = 1;
                    Tensor::new(t.name.clone(), shape, t.data[i * w..(i + 1) * w].to_vec())
                })
                .collect();
            let got = self.inner.run(&one)?;
            if outs.is_empty() {
                outs = got
                    .iter()
                    .map(|t| Tensor::new(t.name.clone(), t.shape.clone(), Vec::new()))
                    .collect();
            }
            for (o, t) in outs.iter_mut().zip(got) {
                if t.shape != o.shape || t.shape.first() != Some(&1) {
                    return Err(EngineError::Run {
                        path: self.info.path.clone(),
                        msg: format!(
                            "output '{}' of one event has shape {:?} (expected [1, ...], as the graph declares)",
                            t.name, t.shape
                        ),
                    });
                }
                o.data.extend_from_slice(&t.data);
            }
        }
        Ok(outs)
    }
}

impl Engine for EventByEvent {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let batch = ordered.first().map_or(0, |t| t.shape[0]);
        let names = self.info.outputs.iter().map(|p| p.name.clone());
        if batch == 0 {
            // No event to call the graph with: empty outputs of the declared shapes.
            return Ok(names
                .zip(&self.info.outputs)
                .map(|(n, p)| {
                    let mut shape: Vec<usize> = p.shape.iter().map(|d| d.unwrap_or(0)).collect();
                    if let Some(b) = shape.first_mut() {
                        *b = 0;
                    }
                    Tensor::new(n, shape, Vec::new())
                })
                .collect());
        }
        let runs = parts::ranges(batch, self.threads, 64);
        let pieces =
            parts::map(runs, |r| self.part(&ordered, batch, r)).map_err(|_| EngineError::Run {
                path: self.info.path.clone(),
                msg: "an inference thread failed".into(),
            })?;
        let mut all: Vec<Tensor> = Vec::new();
        for p in pieces {
            let p = p?;
            if all.is_empty() {
                all = p;
            } else {
                for (a, t) in all.iter_mut().zip(p) {
                    a.data.extend(t.data);
                }
            }
        }
        for t in &mut all {
            t.shape[0] = batch;
        }
        Ok(all)
    }

    fn describe(&self) -> String {
        format!(
            "{}, one event per call (the graph fixes the batch at 1)",
            self.inner.describe()
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{onnx_build, open_with_choice, EngineKind, EngineOptions, Model};
    use prost::Message;
    use tract_onnx::pb;

    /// `bytes` with the first dimension of every graph input and output fixed at 1.
    fn fix_batch(bytes: &[u8]) -> Vec<u8> {
        use pb::tensor_shape_proto::dimension::Value as DV;
        let mut m = pb::ModelProto::decode(bytes).unwrap();
        let g = m.graph.as_mut().unwrap();
        for v in g.input.iter_mut().chain(g.output.iter_mut()) {
            let Some(pb::type_proto::Value::TensorType(t)) =
                v.r#type.as_mut().and_then(|t| t.value.as_mut())
            else {
                panic!("not a tensor");
            };
            t.shape.as_mut().unwrap().dim[0].value = Some(DV::DimValue(1));
        }
        m.encode_to_vec()
    }

    /// A dense network exported with a batch of one scores any batch as the same network with a
    /// free batch does: whole batches on the native evaluator (the same values to the bit), one
    /// event per call on tract; the choice's reason and the description say so.
    #[test]
    fn a_batch_fixed_at_one_takes_any_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut next = testutil::uniform_f32(3);
        let layers = [(6, 16), (16, 2)]
            .map(|(k, m)| (k, m, (0..k * m).map(|_| next()).collect(), vec![0.05; m]))
            .to_vec();
        let dense = onnx_build::Dense {
            input: "x".into(),
            output: "y".into(),
            layers,
            hidden: "Tanh".into(),
            final_act: "Sigmoid".into(),
            metadata: Vec::new(),
            standardise: Some((vec![0.1; 6], vec![0.7; 6])),
        };
        let (free, fixed) = (dir.path().join("free.onnx"), dir.path().join("fixed.onnx"));
        std::fs::write(&free, dense.to_bytes()).unwrap();
        std::fs::write(&fixed, fix_batch(&dense.to_bytes())).unwrap();
        let (free, fixed) = (Model::read(&free).unwrap(), Model::read(&fixed).unwrap());
        assert!(is_fixed_one(fixed.info()) && !is_fixed_one(free.info()));
        for (kind, tol) in [(EngineKind::Native, 0.0), (EngineKind::Tract, 1e-6)] {
            let opts = EngineOptions {
                kind,
                threads: 2,
                ..Default::default()
            };
            let (reference, plain) = open_with_choice(&free, &opts).unwrap();
            assert!(!plain.reason.contains("batch"), "{}", plain.reason);
            let (e, choice) = open_with_choice(&fixed, &opts).unwrap();
            assert!(
                choice.reason.contains("fixes the batch at 1"),
                "{}",
                choice.reason
            );
            let e = e.into_engine();
            assert_eq!(
                e.describe().contains("one event per call"),
                kind == EngineKind::Tract
            );
            for batch in [1, 37, 300] {
                let x: Vec<f32> = (0..batch * 6).map(|_| 3.0 * next()).collect();
                let input = [Tensor::new("x", vec![batch, 6], x)];
                let want = reference.engine().run(&input).unwrap();
                let got = e.run(&input).unwrap();
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!((&g.name, &g.shape), (&w.name, &w.shape));
                    let d = testutil::max_diff(&g.data, &w.data);
                    assert!(d <= tol, "{kind:?} batch {batch}: {d}");
                }
            }
            let none = e.run(&[Tensor::new("x", vec![0, 6], Vec::new())]).unwrap();
            assert_eq!(
                (none[0].shape.as_slice(), none[0].data.len()),
                (&[0, 2][..], 0)
            );
        }
    }
}
