//! Reading an ONNX graph backwards from a value: the producer of each value checked by op type
//! and attributes, constants read from initialisers or `Constant` nodes, and every node visited
//! marked, so a recogniser can insist at the end that it accounted for the whole graph (a node
//! it never looked at could change the numbers; such a graph is refused).

use std::collections::HashMap;
use tract_onnx::pb;

pub(super) type Node = pb::NodeProto;

/// An expected attribute value.
#[derive(Clone, Copy)]
pub(super) enum A<'v> {
    Int(i64),
    Ints(&'v [i64]),
    /// Any value (read by the caller).
    Any,
}

pub(super) struct Graph<'a> {
    nodes: &'a [Node],
    producer: HashMap<&'a str, usize>,
    inits: HashMap<&'a str, &'a pb::TensorProto>,
    used: Vec<bool>,
}

impl<'a> Graph<'a> {
    pub(super) fn new(g: &'a pb::GraphProto) -> Result<Self, String> {
        let mut producer = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            if !n.domain.is_empty() && n.domain != "ai.onnx" {
                return Err(format!("node {} of domain {}", label(n), n.domain));
            }
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if producer.insert(o.as_str(), i).is_some() {
                    return Err(format!("value '{o}' is produced twice"));
                }
            }
        }
        // No cycle (ONNX graphs are acyclic; not every exporter lists the nodes in order, so
        // the order is not required): Kahn's sort must take every node. Checked, so no reading
        // by recursion loops.
        // Per node, its inputs made by nodes not yet taken; per value, the nodes reading it.
        let mut waiting = vec![0usize; g.node.len()];
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for x in n.input.iter().filter(|x| producer.contains_key(x.as_str())) {
                waiting[i] += 1;
                readers.entry(x.as_str()).or_default().push(i);
            }
        }
        let mut ready: Vec<usize> = (0..g.node.len()).filter(|&i| waiting[i] == 0).collect();
        let mut done = 0;
        while let Some(i) = ready.pop() {
            done += 1;
            for o in &g.node[i].output {
                for &r in readers.get(o.as_str()).map_or(&[][..], Vec::as_slice) {
                    waiting[r] -= 1;
                    if waiting[r] == 0 {
                        ready.push(r);
                    }
                }
            }
        }
        if done < g.node.len() {
            let i = waiting.iter().position(|&w| w > 0).unwrap_or(0);
            return Err(format!(
                "node {} is on a cycle or reads one",
                label(&g.node[i])
            ));
        }
        Ok(Graph {
            nodes: &g.node,
            producer,
            inits: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            used: vec![false; g.node.len()],
        })
    }

    /// The node producing `value`, which must be an `op`; marked as accounted for.
    pub(super) fn node(&mut self, value: &str, op: &str) -> Result<&'a Node, String> {
        let n = self.peek(value)?;
        if n.op_type != op {
            return Err(format!(
                "value '{value}': expected {op}, found node {}",
                label(n)
            ));
        }
        self.mark(value);
        Ok(n)
    }

    /// The node producing `value` (not marked), or an error for graph inputs and constants.
    pub(super) fn peek(&self, value: &str) -> Result<&'a Node, String> {
        let nodes = self.nodes;
        self.producer
            .get(value)
            .map(|&i| &nodes[i])
            .ok_or_else(|| format!("value '{value}' is not computed by a node"))
    }

    fn mark(&mut self, value: &str) {
        if let Some(&i) = self.producer.get(value) {
            self.used[i] = true;
        }
    }

    /// Input `i` of `n` (present and named).
    pub(super) fn input(n: &'a Node, i: usize) -> Result<&'a str, String> {
        n.input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("node {} lacks input {i}", label(n)))
    }

    /// The inputs of `n`, exactly `count` of them.
    pub(super) fn inputs<const C: usize>(n: &'a Node) -> Result<[&'a str; C], String> {
        if n.input.len() != C {
            return Err(format!(
                "node {} has {} inputs ({C} expected)",
                label(n),
                n.input.len()
            ));
        }
        let mut out = [""; C];
        for (i, o) in out.iter_mut().enumerate() {
            *o = Self::input(n, i)?;
        }
        Ok(out)
    }

    /// `Transpose(v, perm)` (the attribute present and equal to `perm`): its input.
    pub(super) fn transpose(&mut self, v: &str, perm: &[i64]) -> Result<&'a str, String> {
        let n = self.node(v, "Transpose")?;
        attrs(n, &[("perm", A::Ints(perm))])?;
        if n.attribute.is_empty() {
            return Err(format!("node {}: no perm", label(n)));
        }
        Self::inputs::<1>(n).map(|[x]| x)
    }

    /// A constant tensor (initialiser, `Constant` node, or an `Identity`, `Reshape` or numeric
    /// `Cast` of constants, which older exporters leave unfolded) as dims and f64 values.
    pub(super) fn konst(&mut self, value: &str) -> Result<(Vec<i64>, Vec<f64>), String> {
        let t = match self.inits.get(value) {
            Some(t) => *t,
            None if self.peek(value).is_ok_and(|n| n.op_type == "Identity") => {
                let n = self.node(value, "Identity")?;
                attrs(n, &[])?;
                return self.konst(Self::inputs::<1>(n)?[0]);
            }
            None if self.peek(value).is_ok_and(|n| n.op_type == "Reshape") => {
                let n = self.node(value, "Reshape")?;
                attrs(n, &[("allowzero", A::Int(0))])?;
                let [x, shape] = Self::inputs::<2>(n)?;
                let (dims, v) = self.konst(x)?;
                let shape = self.values(shape)?;
                return Ok((reshaped(&dims, &shape, v.len(), n)?, v));
            }
            None if self.peek(value).is_ok_and(|n| n.op_type == "Cast") => {
                let n = self.node(value, "Cast")?;
                attrs(n, &[("to", A::Any)])?;
                let (dims, v) = self.konst(Self::inputs::<1>(n)?[0])?;
                // ONNX TensorProto types: float, int32, int64, double.
                let v = match n.attribute.first().map(|a| a.i) {
                    Some(1) => v.into_iter().map(|x| x as f32 as f64).collect(),
                    Some(6 | 7) => v.into_iter().map(f64::trunc).collect(),
                    Some(11) => v,
                    to => return Err(format!("node {}: cast to type {to:?}", label(n))),
                };
                return Ok((dims, v));
            }
            None => {
                let n = self.node(value, "Constant")?;
                attrs(n, &[("value", A::Any)])?;
                n.attribute
                    .first()
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| format!("node {}: only tensor constants", label(n)))?
            }
        };
        tensor_f64(t)
    }

    /// A constant's values, of any shape.
    pub(super) fn values(&mut self, value: &str) -> Result<Vec<f64>, String> {
        self.konst(value).map(|(_, v)| v)
    }

    /// The `axes` of a reduction or an (un)squeeze: its attribute (up to opset 12, 17 for
    /// most reductions) or its constant second input (later opsets); `None` when neither is
    /// given.
    pub(super) fn axes(&mut self, n: &Node) -> Result<Option<Vec<i64>>, String> {
        let attr = n.attribute.iter().find(|a| a.name == "axes");
        match (attr, n.input.get(1).filter(|s| !s.is_empty())) {
            (Some(a), None) => Ok(Some(a.ints.clone())),
            (None, Some(v)) => Ok(Some(self.values(v)?.iter().map(|&a| a as i64).collect())),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(format!("node {}: axes given twice", label(n))),
        }
    }

    /// Whether `value` is a constant: an initialiser, a `Constant` node's output, or an
    /// `Identity` of one.
    pub(super) fn is_const(&self, value: &str) -> bool {
        self.inits.contains_key(value)
            || self.peek(value).is_ok_and(|n| match n.op_type.as_str() {
                "Constant" => true,
                "Identity" => n.input.first().is_some_and(|x| self.is_const(x)),
                _ => false,
            })
    }

    /// A constant that must hold exactly `want`.
    pub(super) fn expect(&mut self, value: &str, want: &[f64]) -> Result<(), String> {
        let v = self.values(value)?;
        if v != want {
            return Err(format!("constant '{value}' is {v:?}, expected {want:?}"));
        }
        Ok(())
    }

    /// A float weight tensor (initialiser or constant) as dims and f32 values.
    pub(super) fn weights(&mut self, value: &str) -> Result<(Vec<i64>, Vec<f32>), String> {
        let (dims, v) = self.konst(value)?;
        Ok((dims, v.into_iter().map(|x| x as f32).collect()))
    }

    /// Marks as accounted for the nodes computing `value` from shapes only: `Shape` (whose
    /// input, data, is left to the caller), then `Gather`, `Unsqueeze`, `Squeeze`, `Concat`,
    /// `Slice`, `Cast` and `Reshape` of those and of constants. Such a value fixes a shape,
    /// never a number; anything else is refused.
    pub(super) fn shape_only(&mut self, value: &str) -> Result<(), String> {
        const OPS: [&str; 7] = [
            "Gather",
            "Unsqueeze",
            "Squeeze",
            "Concat",
            "Slice",
            "Cast",
            "Reshape",
        ];
        let mut todo = vec![value];
        let mut seen = std::collections::HashSet::new();
        while let Some(v) = todo.pop() {
            if !seen.insert(v) {
                continue;
            }
            if self.inits.contains_key(v) {
                continue;
            }
            let n = self.peek(v)?;
            match n.op_type.as_str() {
                "Constant" => self.konst(v).map(|_| ())?,
                "Shape" => {
                    self.node(v, "Shape")?;
                }
                op if OPS.contains(&op) => {
                    self.node(v, op)?;
                    todo.extend(n.input.iter().filter(|i| !i.is_empty()).map(String::as_str));
                }
                _ => {
                    return Err(format!(
                        "value '{v}': node {} where a shape computation was expected",
                        label(n)
                    ))
                }
            }
        }
        Ok(())
    }

    /// Marks as accounted for the nodes none of `outputs` depends on: they cannot change a
    /// number (Keras exports leave such `Shape`/`Slice` chains behind).
    pub(super) fn mark_dead(&mut self, outputs: &[&str]) {
        let mut live = vec![false; self.nodes.len()];
        let mut todo: Vec<&str> = outputs.to_vec();
        while let Some(v) = todo.pop() {
            if let Some(&i) = self.producer.get(v) {
                if !live[i] {
                    live[i] = true;
                    todo.extend(self.nodes[i].input.iter().map(String::as_str));
                }
            }
        }
        for (used, live) in self.used.iter_mut().zip(live) {
            *used |= !live;
        }
    }

    /// Every node accounted for, or the first one that was not.
    pub(super) fn finish(&self) -> Result<(), String> {
        match self.used.iter().position(|u| !u) {
            None => Ok(()),
            Some(i) => Err(format!(
                "node {} is not part of the recognised structure",
                label(&self.nodes[i])
            )),
        }
    }
}

pub(super) fn label(n: &Node) -> String {
    if n.name.is_empty() {
        n.op_type.clone()
    } else {
        format!("{} ({})", n.name, n.op_type)
    }
}

/// Checks `n`'s attributes: each one present must be listed and hold the expected value;
/// listed ones that are absent take their ONNX default, which the caller's expectation must
/// cover (`required` lists those that must be present).
pub(super) fn attrs(n: &Node, want: &[(&str, A)]) -> Result<(), String> {
    for a in &n.attribute {
        let Some((_, w)) = want.iter().find(|(name, _)| *name == a.name) else {
            return Err(format!(
                "node {}: attribute '{}' not supported",
                label(n),
                a.name
            ));
        };
        let ok = match w {
            A::Int(v) => a.i == *v && a.ints.is_empty(),
            A::Ints(v) => a.ints == *v,
            A::Any => true,
        };
        if !ok {
            return Err(format!(
                "node {}: attribute '{}' = {:?}{:?} not supported",
                label(n),
                a.name,
                a.i,
                a.ints
            ));
        }
    }
    Ok(())
}

pub(super) fn attr_f(n: &Node, name: &str) -> Option<f32> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

pub(super) fn tensor_f64(t: &pb::TensorProto) -> Result<(Vec<i64>, Vec<f64>), String> {
    use pb::tensor_proto::DataType as D;
    let raw = &t.raw_data;
    let le = |c: &[u8]| -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        b
    };
    let data: Vec<f64> = match D::try_from(t.data_type) {
        Ok(D::Float) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        Ok(D::Float) => t.float_data.iter().map(|&v| v as f64).collect(),
        Ok(D::Double) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(le(c)))
            .collect(),
        Ok(D::Double) => t.double_data.clone(),
        Ok(D::Int64) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(le(c)) as f64)
            .collect(),
        Ok(D::Int64) => t.int64_data.iter().map(|&v| v as f64).collect(),
        Ok(D::Int32) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        Ok(D::Int32) => t.int32_data.iter().map(|&v| v as f64).collect(),
        Ok(D::Bool) if !raw.is_empty() => raw.iter().map(|&v| f64::from(v != 0)).collect(),
        Ok(D::Bool) => t.int32_data.iter().map(|&v| f64::from(v != 0)).collect(),
        _ => return Err(format!("constant '{}' of type {}", t.name, t.data_type)),
    };
    let n: i64 = t.dims.iter().product();
    if data.len() as i64 != n {
        return Err(format!(
            "constant '{}': {} values for dims {:?}",
            t.name,
            data.len(),
            t.dims
        ));
    }
    Ok((t.dims.clone(), data))
}

/// The dims of a `Reshape` of `dims` (`len` values) to `shape` (0: the input's dim, one -1:
/// what remains).
fn reshaped(dims: &[i64], shape: &[f64], len: usize, n: &Node) -> Result<Vec<i64>, String> {
    let mut out: Vec<i64> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| match d as i64 {
            0 => dims.get(i).copied().unwrap_or(0),
            d => d,
        })
        .collect();
    let known: i64 = out.iter().filter(|&&d| d != -1).product();
    match out.iter().filter(|&&d| d == -1).count() {
        0 => {}
        1 if known > 0 => {
            let rest = len as i64 / known;
            out.iter_mut().filter(|d| **d == -1).for_each(|d| *d = rest);
        }
        _ => return Err(format!("node {}: shape {shape:?}", label(n))),
    }
    if out.iter().any(|&d| d < 0) || out.iter().product::<i64>() != len as i64 {
        return Err(format!("node {}: {len} values into {shape:?}", label(n)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> Node {
        Node {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    /// A cycle (two Identity nodes reading each other) is refused with a line naming a node;
    /// a chain is taken whichever order its nodes are listed in (keras2onnx 1.6 lists some
    /// nodes after their readers).
    #[test]
    fn cycles_are_refused() {
        let cycle = pb::GraphProto {
            node: vec![
                node("Identity", &["x"], "c"),
                node("Identity", &["b"], "a"),
                node("Identity", &["a"], "b"),
            ],
            ..Default::default()
        };
        let e = Graph::new(&cycle).err().expect("a cycle is refused");
        assert!(e.contains("on a cycle") && e.contains("Identity"), "{e}");
        let sorted = pb::GraphProto {
            node: vec![node("Identity", &["x"], "a"), node("Relu", &["a"], "b")],
            ..Default::default()
        };
        assert!(Graph::new(&sorted).is_ok());
        let mut reversed = sorted.clone();
        reversed.node.reverse();
        assert!(Graph::new(&reversed).is_ok());
    }
}
