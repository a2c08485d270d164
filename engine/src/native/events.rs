//! What the graph evaluators (EdgeConv, recurrent, 1-D CNN) share around their kernels: the
//! batch of their inputs, splitting it across threads and into groups, and the softmax that
//! closes an event's output.

use super::denormals::flushed;
use crate::parts;
use crate::{EngineError, ModelInfo, Tensor};

/// The error an evaluator gives a graph it does not recognise (`why`).
pub(super) fn refusal<'a>(
    info: &'a ModelInfo,
    evaluator: &'a str,
) -> impl Fn(String) -> EngineError + 'a {
    move |why| EngineError::Unsupported {
        path: info.path.clone(),
        msg: format!("not a network for the native {evaluator} evaluator: {why}"),
    }
}

/// The batch of `xs`, which every input must share.
pub(super) fn batch(info: &ModelInfo, xs: &[&Tensor]) -> Result<usize, EngineError> {
    let n = xs.first().map_or(0, |t| t.shape[0]);
    match xs.iter().find(|t| t.shape[0] != n) {
        Some(t) => Err(EngineError::Input {
            path: info.path.clone(),
            input: t.name.clone(),
            msg: format!("{} events, the other inputs have {n}", t.shape[0]),
        }),
        None => Ok(n),
    }
}

/// Runs `f(e0, out)` over groups of up to `group` events (`width` outputs each) of the events
/// `out` holds, `e0` their first.
pub(super) fn in_groups(
    e0: usize,
    width: usize,
    group: usize,
    out: &mut [f32],
    mut f: impl FnMut(usize, &mut [f32]),
) {
    for (i, o) in out.chunks_mut(group * width).enumerate() {
        f(e0 + i * group, o);
    }
}

/// Runs `f(e0, out)` for contiguous runs of events, `width` outputs each, on up to `threads`
/// threads (the calling one when it is one), denormals flushed to zero on each
/// ([`flushed`]); `out` holds the batch's outputs.
pub(super) fn split<F>(threads: usize, width: usize, out: &mut [f32], f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let runs = parts::ranges(out.len() / width.max(1), threads, 1);
    let starts = runs.iter().map(|r| r.start);
    let items: Vec<_> = starts.zip(parts::cut(out, width, &runs)).collect();
    parts::map_all(items, |(e0, o)| flushed(|| f(e0, o)));
}

/// The index of the largest value (the first of equal ones; a NaN never wins).
pub(super) fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (j, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = j;
        }
    }
    best
}

/// `o = softmax(o)`, the largest value subtracted first.
pub(super) fn softmax(o: &mut [f32]) {
    let m = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in o.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    o.iter_mut().for_each(|v| *v /= sum);
}

/// `o = log(softmax(o))` as `(o - m) - log(sum e^(o - m))`, `m` the largest value (no
/// logarithm of an underflowed probability).
pub(super) fn log_softmax(o: &mut [f32]) {
    let m = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = o.iter().map(|v| (v - m).exp()).sum();
    let ln = sum.ln();
    o.iter_mut().for_each(|v| *v = (*v - m) - ln);
}

#[cfg(test)]
mod tests {
    use super::split;
    use std::hint::black_box;

    /// Every part of a split runs with denormals flushed, on the calling thread and on the
    /// spawned ones (1e-30 x 1e-10 is a denormal, zero when flushed).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn parts_run_with_denormals_flushed() {
        for threads in [1, 2, 3] {
            let mut out = vec![1f32; 6];
            split(threads, 1, &mut out, |_, o| {
                o.iter_mut()
                    .for_each(|v| *v = black_box(1e-30f32) * black_box(1e-10f32));
            });
            assert_eq!(out, vec![0f32; 6], "{threads} threads");
        }
    }
}
