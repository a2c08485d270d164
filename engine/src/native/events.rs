//! What the graph evaluators (EdgeConv, recurrent) share around their kernels: splitting a
//! batch's events across threads, and the softmax that closes an event's output.

/// Runs `f(e0, out)` for contiguous runs of events, `width` outputs each, on up to `threads`
/// threads (the calling one when it is one); `out` holds the batch's outputs.
pub(super) fn split<F>(threads: usize, width: usize, out: &mut [f32], f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let batch = out.len() / width.max(1);
    let parts = threads.clamp(1, batch.max(1));
    let per = batch.div_ceil(parts).max(1);
    if parts == 1 {
        return f(0, out);
    }
    std::thread::scope(|sc| {
        for (i, chunk) in out.chunks_mut(per * width).enumerate() {
            let f = &f;
            sc.spawn(move || f(i * per, chunk));
        }
    });
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
