//! Denormal floats (magnitude below 1.18e-38) flushed to zero while the native evaluators run.
//!
//! On Intel cores a multiply-add that reads or produces a denormal takes a microcode assist of
//! about a hundred cycles; AMD's take none. Recurrent networks make them: a saturated gate
//! (a sigmoid of a large negative pre-activation) is a denormal, and so is every state it
//! multiplies. DeepJet Run 3 ran 2.6x slower on an Intel Xeon for that alone. onnxruntime's
//! activations clamp their arguments and so never produce them; TensorFlow sets the same two
//! flags for its threads. A value flushed is one that contributes less than 1e-38 of its
//! product's scale: no output changes at any precision that matters.
//!
//! The flags are per thread: [`flushed`] sets them around one piece of work and restores the
//! caller's (also when that work unwinds), so no other code on the thread sees them.

#[cfg(target_arch = "x86_64")]
mod mxcsr {
    use std::arch::asm;

    /// Flush-to-zero (results, bit 15) and denormals-are-zero (inputs, bit 6).
    pub(super) const FTZ_DAZ: u32 = 0x8040;

    pub(super) fn get() -> u32 {
        let mut v = 0u32;
        // SAFETY: `stmxcsr` stores the 32-bit control/status register into `v`, a live,
        // aligned u32 we own; it touches nothing else.
        unsafe {
            asm!("stmxcsr dword ptr [{}]", in(reg) &mut v, options(nostack, preserves_flags));
        }
        v
    }

    pub(super) fn set(v: u32) {
        // SAFETY: `ldmxcsr` loads `v`, read from a live u32. Callers pass a value read by
        // `get` with at most FTZ/DAZ added: the same rounding mode and exception masks, so no
        // float operation traps and only denormal handling changes, which no memory-safety
        // property depends on.
        unsafe {
            asm!("ldmxcsr dword ptr [{}]", in(reg) &v, options(nostack, preserves_flags, readonly));
        }
    }
}

/// Restores the saved control register when dropped.
struct Restore(#[cfg(target_arch = "x86_64")] u32);

impl Drop for Restore {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        mxcsr::set(self.0);
    }
}

/// Runs `f` on this thread with denormals flushed to zero (x86-64; elsewhere `f` as it is).
pub(super) fn flushed<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    let _restore = {
        let saved = mxcsr::get();
        mxcsr::set(saved | mxcsr::FTZ_DAZ);
        Restore(saved)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _restore = Restore();
    f()
}

#[cfg(test)]
mod tests {
    use super::flushed;
    use std::hint::black_box;

    /// 1e-30 x 1e-10 is a denormal: zero inside `flushed`, itself before and after (the
    /// caller's flags come back, also when the work panics); a denormal input counts as zero
    /// inside.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn flushes_inside_and_restores() {
        let product = || black_box(1e-30f32) * black_box(1e-10f32);
        let tiny = black_box(f32::MIN_POSITIVE / 4.0);
        assert!(product() > 0.0 && product() < f32::MIN_POSITIVE);
        assert_eq!(flushed(product), 0.0);
        assert_eq!(flushed(|| black_box(tiny) * black_box(4.0f32)), 0.0);
        assert!(product() > 0.0);
        let unwound = std::panic::catch_unwind(|| flushed(|| panic!("inside")));
        assert!(unwound.is_err());
        assert!(product() > 0.0, "flags restored after a panic");
        assert_eq!(tiny * 4.0, f32::MIN_POSITIVE);
    }
}
