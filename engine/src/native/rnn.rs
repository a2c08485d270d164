//! What the recurrent layers (`gru`, `lstm`) share: reading the attributes ONNX gives every
//! RNN node (direction, clip, activations with their alpha/beta, layout), the gate activation,
//! and branch-free `exp`, `sigmoid` and `tanh` that vectorise.

use super::graph::{attrs, label, tensor_f64, Graph, Node, A};
use super::kernels::madd;

/// The gate activation `f`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Gate {
    Sigmoid,
    HardSigmoid { alpha: f32, beta: f32 },
}

/// The attributes common to `GRU` and `LSTM`, read and checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Common {
    /// `hidden_size`, when given.
    pub hidden: Option<i64>,
    pub reverse: bool,
    /// Bound of the pre-activations (infinite: none).
    pub clip: f32,
    pub f: Gate,
}

fn string_attr(n: &Node, name: &str) -> Option<String> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn floats_attr(n: &Node, name: &str) -> Vec<f32> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or_else(Vec::new, |a| a.floats.clone())
}

/// Reads the common attributes of the RNN node `n`, which takes `acts` activations for one
/// direction (GRU 2, LSTM 3): the first is the gate activation (`Sigmoid` or `HardSigmoid`,
/// whose `activation_alpha`/`activation_beta` are the first of each list, as ONNX Runtime
/// consumes them in the order of the activations that take them), the others must be `Tanh`.
/// `extra` lists the node's own attributes. Refused: `bidirectional`, layout 1, any other
/// activation.
pub(super) fn read_common(n: &Node, acts: usize, extra: &[(&str, A)]) -> Result<Common, String> {
    let at = label(n);
    let mut want = vec![
        ("activation_alpha", A::Any),
        ("activation_beta", A::Any),
        ("activations", A::Any),
        ("clip", A::Any),
        ("direction", A::Any),
        ("hidden_size", A::Any),
        ("layout", A::Int(0)),
    ];
    want.extend_from_slice(extra);
    attrs(n, &want)?;
    let reverse = match string_attr(n, "direction").as_deref() {
        None | Some("forward") => false,
        Some("reverse") => true,
        Some(d) => return Err(format!("node {at}: direction '{d}' not supported")),
    };
    let clip = match n.attribute.iter().find(|a| a.name == "clip") {
        None => f32::INFINITY,
        Some(a) if a.f > 0.0 => a.f,
        Some(a) => return Err(format!("node {at}: clip {} not supported", a.f)),
    };
    let names: Vec<String> = match n.attribute.iter().find(|a| a.name == "activations") {
        None => {
            let mut d = vec!["Sigmoid".to_string()];
            d.resize(acts, "Tanh".to_string());
            d
        }
        Some(a) => a
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    };
    if names.len() != acts {
        return Err(format!(
            "node {at}: {} activations ({acts} expected for one direction)",
            names.len()
        ));
    }
    let (alphas, betas) = (
        floats_attr(n, "activation_alpha"),
        floats_attr(n, "activation_beta"),
    );
    let f = match names[0].as_str() {
        "Sigmoid" => Gate::Sigmoid,
        "HardSigmoid" => Gate::HardSigmoid {
            alpha: alphas.first().copied().unwrap_or(0.2),
            beta: betas.first().copied().unwrap_or(0.5),
        },
        other => {
            return Err(format!(
                "node {at}: activation '{other}' for the gates not supported (Sigmoid, HardSigmoid)"
            ))
        }
    };
    if let Some(other) = names[1..].iter().find(|a| *a != "Tanh") {
        return Err(format!(
            "node {at}: activation '{other}' for the cell not supported (Tanh)"
        ));
    }
    let used = usize::from(matches!(f, Gate::HardSigmoid { .. }));
    if alphas.len() > used || betas.len() > used {
        return Err(format!(
            "node {at}: activation_alpha/beta {alphas:?}/{betas:?} for activations {names:?}"
        ));
    }
    Ok(Common {
        hidden: n
            .attribute
            .iter()
            .find(|a| a.name == "hidden_size")
            .map(|a| a.i),
        reverse,
        clip,
        f,
    })
}

/// The inputs every RNN node has, read: `X`'s name and the weights.
pub(super) struct Io {
    pub x: String,
    pub hidden: usize,
    pub input: usize,
    /// `W`: `gates * H x I`; `R`: `gates * H x H`; `B`: `Wb` then `Rb` (zeros when absent).
    pub w: Vec<f32>,
    pub r: Vec<f32>,
    pub b: Vec<f32>,
}

/// Reads the inputs of the RNN node `n` with `gates` gates that both GRU and LSTM take: `X`,
/// `W` (`[1, gates * H, I]`), `R` (`[1, gates * H, H]`, `H` matching `hidden_size` when
/// given), `B`, and `initial_h`, which must be absent or zeros (see [`zero_state`]);
/// `sequence_lens` and inputs past `inputs` are refused.
pub(super) fn read_io(
    g: &mut Graph,
    n: &Node,
    gates: usize,
    hidden: Option<i64>,
    inputs: usize,
) -> Result<Io, String> {
    let at = label(n);
    if n.input.get(4).is_some_and(|s| !s.is_empty()) {
        return Err(format!("node {at}: input sequence_lens not supported"));
    }
    zero_state(g, n, 5, "initial_h")?;
    if n.input.len() > inputs {
        return Err(format!("node {at}: extra inputs"));
    }
    let x = Graph::input(n, 0)?.to_string();
    let (wd, w) = g.weights(Graph::input(n, 1)?)?;
    let (rd, r) = g.weights(Graph::input(n, 2)?)?;
    let [1, gh, i] = wd[..] else {
        return Err(format!("node {at}: W of dims {wd:?}"));
    };
    let k = gates as i64;
    let h = gh / k;
    if gh <= 0 || gh % k != 0 || i <= 0 || rd != [1, gh, h] {
        return Err(format!("node {at}: W of dims {wd:?}, R of dims {rd:?}"));
    }
    if hidden.is_some_and(|hs| hs != h) {
        return Err(format!(
            "node {at}: hidden_size {hidden:?} but W of dims {wd:?}"
        ));
    }
    let (h, i) = (h as usize, i as usize);
    let b = match n.input.get(3).filter(|s| !s.is_empty()) {
        Some(b) => {
            let (bd, b) = g.weights(b)?;
            if bd != [1, (2 * gates * h) as i64] {
                return Err(format!("node {at}: B of dims {bd:?}"));
            }
            b
        }
        None => vec![0.0; 2 * gates * h],
    };
    Ok(Io {
        x,
        hidden: h,
        input: i,
        w,
        r,
        b,
    })
}

/// Input `i` of the RNN node `n` (an initial state, `what`): absent, or a `ConstantOfShape`
/// of zero whose shape is computed from shapes (as PyTorch exports an unset initial state).
/// Anything else (a constant fixes the batch size) is refused.
pub(super) fn zero_state(g: &mut Graph, n: &Node, i: usize, what: &str) -> Result<(), String> {
    let Some(v) = n.input.get(i).filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let refused = || {
        format!(
            "node {}: input {what} not supported (only zeros of a computed shape)",
            label(n)
        )
    };
    if !g.peek(v).is_ok_and(|p| p.op_type == "ConstantOfShape") {
        return Err(refused());
    }
    let c = g.node(v, "ConstantOfShape")?;
    attrs(c, &[("value", A::Any)])?;
    g.shape_only(Graph::input(c, 0)?)?;
    let values = match c.attribute.first().and_then(|a| a.t.as_ref()) {
        Some(t) => tensor_f64(t)?.1,
        None => vec![0.0],
    };
    if values.iter().all(|&x| x == 0.0) {
        Ok(())
    } else {
        Err(refused())
    }
}

#[cfg(test)]
impl Gate {
    /// The activation in double precision (the tests' references).
    pub(super) fn exact(self, v: f64) -> f64 {
        match self {
            Gate::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Gate::HardSigmoid { alpha, beta } => (alpha as f64 * v + beta as f64).clamp(0.0, 1.0),
        }
    }
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `k * LN2_HI` is exact for the `k` that occur.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `e^x` without branches (vectorises): `2^k e^r`, `|r| <= ln2 / 2`, degree-7 Taylor
/// polynomial for `e^r` (truncation under 5e-9 relative); `x` clamped to [-87, 88] so `2^k`
/// stays a normal float.
#[inline(always)]
pub(super) fn exp<const FMA: bool>(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to an integer, kept in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let kf = madd::<FMA>(x, LOG2E, MAGIC);
    let ki = kf.to_bits() as i32 - MAGIC.to_bits() as i32;
    let k = kf - MAGIC;
    let r = madd::<FMA>(-k, LN2_HI, x);
    let r = madd::<FMA>(-k, LN2_LO, r);
    let mut p = 1.0 / 5040.0;
    for c in [720.0, 120.0, 24.0, 6.0, 2.0, 1.0] {
        p = madd::<FMA>(p, r, 1.0 / c);
    }
    p = madd::<FMA>(p, r, 1.0);
    p * f32::from_bits(((ki + 127) << 23) as u32)
}

#[inline(always)]
pub(super) fn sigmoid<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp::<FMA>(-x))
}

/// `tanh x = sign(x) (1 - e) / (1 + e)`, `e = e^{-2|x|}`: within about 1e-7 absolute.
#[inline(always)]
pub(super) fn tanh<const FMA: bool>(x: f32) -> f32 {
    let e = exp::<FMA>(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_tanh_are_accurate() {
        for level in [false, true] {
            let mut worst = (0f64, 0f64);
            for k in -40_000..=40_000 {
                let x = k as f32 * 5e-4;
                let e = if level {
                    exp::<true>(x)
                } else {
                    exp::<false>(x)
                };
                let t = if level {
                    tanh::<true>(x)
                } else {
                    tanh::<false>(x)
                };
                let ew = (x as f64).exp();
                worst.0 = worst.0.max((e as f64 - ew).abs() / ew);
                worst.1 = worst.1.max((t as f64 - (x as f64).tanh()).abs());
            }
            assert!(worst.0 < 4e-7 && worst.1 < 2e-7, "fma {level}: {worst:?}");
        }
        assert_eq!(exp::<true>(-1000.0), exp::<true>(-87.0));
        assert!(exp::<true>(1000.0).is_finite());
    }
}
