//! Graphs with ops whose output sizes depend on the data (`nonzero`;
//! [`Op::is_data_dependent`]) on the compiled backends. Such an op's count is a
//! symbol no input binds, so no plan can be made for the whole graph before it
//! runs. The graph is cut into stages instead: stage `k` holds the ops that
//! need the results of `k` data-dependent ops in a row; each stage is an
//! ordinary graph compiled by the backend (its symbolic dims bound from the
//! tensors it gets, plans cached per binding, as for any graph), and the
//! data-dependent ops run on the host between them (the interpreter's code).
//! The interpreter runs such graphs directly, binding each count as it goes.
//!
//! What crosses a cut is copied once into the next stage's inputs. AOT
//! libraries have fixed shapes and refuse these ops.

use crate::backend::{Executable, Tensors};
use crate::error::{self, Error, ErrorKind, Result};
use smelt_ir::{Bindings, Graph, NodeId, Op, Tensor, Value, Weights};
use smelt_runtime::exec::Profile;
use std::collections::{BTreeSet, HashMap};

/// Whether `g` needs stages (it has a data-dependent op).
pub(crate) fn needed(g: &Graph) -> bool {
    g.node_ids().any(|id| g.node(id).op.is_data_dependent())
}

/// One compiled stage: its executable, the original values it reads (by its
/// input names) and the ones it gives back (by its output names).
#[derive(Debug)]
struct Stage {
    exe: Box<dyn Executable>,
    inputs: Vec<(String, Value)>,
    outputs: Vec<(String, Value)>,
}

/// A data-dependent op run on the host after a stage.
#[derive(Debug)]
struct HostOp {
    id: NodeId,
    inputs: Vec<Value>,
}

/// A graph run as compiled stages with host ops between them.
#[derive(Debug)]
struct Staged {
    graph: Graph,
    /// `stages[k]` (none when stage `k` has no op), then `hosts[k]`.
    stages: Vec<Option<Stage>>,
    hosts: Vec<Vec<HostOp>>,
}

/// Cuts `g` into stages and compiles each with `compile_stage`.
pub(crate) fn compile(g: &Graph, compile_stage: &dyn Fn(&Graph) -> Result<Box<dyn Executable>>) -> Result<Box<dyn Executable>> {
    let order = g.topo_order().ok_or_else(|| Error::text(ErrorKind::Model, format!("graph {} has a cycle", g.name)))?;
    // When each value is ready: the stage that makes it (a data-dependent op's
    // outputs are ready for the stage after the one it follows); sources are
    // ready everywhere.
    let mut ready: HashMap<NodeId, usize> = HashMap::new();
    let mut stage_of: HashMap<NodeId, usize> = HashMap::new();
    let mut last = 0;
    for &id in &order {
        let n = g.node(id);
        if n.op.is_source() {
            continue;
        }
        let s = g.node_inputs(id).iter().filter_map(|v| ready.get(&v.node)).copied().max().unwrap_or(0);
        stage_of.insert(id, s);
        ready.insert(id, if n.op.is_data_dependent() { s + 1 } else { s });
        last = last.max(s);
    }
    let count = last + 1;
    // Every value a stage must hand on: read by a later stage or a host op, or
    // a graph output.
    let mut needed_after: BTreeSet<Value> = g.outputs().iter().copied().collect();
    for &id in &order {
        let here = stage_of.get(&id).copied();
        for v in g.node_inputs(id) {
            let from = g.node(v.node);
            if from.op.is_source() || from.op.is_data_dependent() {
                continue;
            }
            if g.node(id).op.is_data_dependent() || here != stage_of.get(&v.node).copied() {
                needed_after.insert(v);
            }
        }
    }
    let mut stages = Vec::with_capacity(count);
    let mut hosts: Vec<Vec<HostOp>> = (0..count).map(|_| Vec::new()).collect();
    for (k, host) in hosts.iter_mut().enumerate() {
        let ids: Vec<NodeId> = order.iter().copied().filter(|id| stage_of.get(id) == Some(&k)).collect();
        for &id in ids.iter().filter(|&&id| g.node(id).op.is_data_dependent()) {
            host.push(HostOp { id, inputs: g.node_inputs(id) });
        }
        let plain: Vec<NodeId> = ids.into_iter().filter(|&id| !g.node(id).op.is_data_dependent()).collect();
        if plain.is_empty() {
            stages.push(None);
            continue;
        }
        let (sg, inputs, outputs) = stage_graph(g, k, &plain, &needed_after)?;
        let exe = compile_stage(&sg)?;
        stages.push(Some(Stage { exe, inputs, outputs }));
    }
    Ok(Box::new(Staged { graph: g.clone(), stages, hosts }))
}

/// The graph of stage `k`: its ops, with what they read from outside as
/// inputs (graph inputs and earlier results, by name), params and constants.
#[allow(clippy::type_complexity)]
fn stage_graph(g: &Graph, k: usize, ids: &[NodeId], needed_after: &BTreeSet<Value>) -> Result<(Graph, Vec<(String, Value)>, Vec<(String, Value)>)> {
    let mut sg = Graph::new(format!("{}_stage{k}", g.name));
    let mut map: HashMap<Value, Value> = HashMap::new();
    let mut inputs = Vec::new();
    for &id in ids {
        let mut ins = Vec::new();
        for v in g.node_inputs(id) {
            if let Some(&m) = map.get(&v) {
                ins.push(m);
                continue;
            }
            let from = g.node(v.node);
            let name = g.value_name(v).to_string();
            let ty = g.value_type(v).cloned().ok_or_else(|| Error::text(ErrorKind::Internal, format!("value {name} has no type")))?;
            let m = match &from.op {
                Op::Param => {
                    let w = g.weight(&name).cloned().ok_or_else(|| Error::text(ErrorKind::Model, format!("no weight named `{name}`")))?;
                    sg.set_weight(name.clone(), w);
                    sg.add_param(name, ty)
                }
                Op::Const(t) => sg.add_const(name, (**t).clone()),
                _ => {
                    inputs.push((name.clone(), v));
                    sg.add_input(name, ty)
                }
            };
            map.insert(v, m);
            ins.push(m);
        }
        let n = g.node(id);
        let nid = sg.add_node(n.op.clone(), &ins, n.names.clone());
        sg.node_mut(nid).span = n.span;
        for i in 0..n.names.len() {
            map.insert(Value { node: id, output: i }, Value { node: nid, output: i });
        }
    }
    let mut outputs = Vec::new();
    for &id in ids {
        for i in 0..g.node(id).names.len() {
            let v = Value { node: id, output: i };
            if needed_after.contains(&v) {
                outputs.push((g.value_name(v).to_string(), v));
            }
        }
    }
    sg.set_outputs(outputs.iter().map(|(_, v)| map[v]).collect());
    sg.infer().map_err(|d| Error::diags(ErrorKind::Internal, d.0))?;
    smelt_ir::verify(&sg, Weights::Required).map_err(|d| Error::diags(ErrorKind::Internal, d.0))?;
    Ok((sg, inputs, outputs))
}

impl Staged {
    fn run_stages(&self, inputs: &Tensors, mut profile: Option<&mut Profile>) -> Result<Tensors> {
        let g = &self.graph;
        smelt_interp::bind_inputs(g, inputs).map_err(|e| error::runtime(g, e))?;
        let mut env: HashMap<Value, Tensor> = HashMap::new();
        let fetch = |env: &HashMap<Value, Tensor>, v: Value| -> Result<Tensor> {
            let n = g.node(v.node);
            match &n.op {
                Op::Input => Ok(inputs[n.name()].clone()),
                Op::Param => g.weight(n.name()).map(|t| (**t).clone()).ok_or_else(|| Error::text(ErrorKind::Model, format!("no weight named `{}`", n.name()))),
                Op::Const(t) => Ok((**t).clone()),
                _ => env.get(&v).cloned().ok_or_else(|| Error::text(ErrorKind::Internal, format!("value {} was not computed", g.value_name(v)))),
            }
        };
        for (stage, hosts) in self.stages.iter().zip(&self.hosts) {
            if let Some(s) = stage {
                let mut feed = Tensors::new();
                for (name, v) in &s.inputs {
                    feed.insert(name.clone(), fetch(&env, *v)?);
                }
                let mut out = match profile.as_deref_mut() {
                    Some(p) => {
                        let (out, q) = s.exe.run_profiled(&feed)?;
                        p.kernels.extend(q.map(|q| q.kernels).unwrap_or_default());
                        out
                    }
                    None => s.exe.run(&feed)?,
                };
                for (name, v) in &s.outputs {
                    let t = out.remove(name).ok_or_else(|| Error::text(ErrorKind::Internal, format!("stage gave no `{name}`")))?;
                    env.insert(*v, t);
                }
            }
            for h in hosts {
                let n = g.node(h.id);
                let err = |message: String| error::runtime(g, smelt_interp::Error::Node { node: n.name().into(), op: n.op.name().into(), message });
                let ins = h.inputs.iter().map(|&v| fetch(&env, v)).collect::<Result<Vec<Tensor>>>()?;
                // The counts it finds bind the later stages through their
                // inputs' shapes; the bindings themselves are not needed here.
                let outs = smelt_interp::eval_host(&n.op, &ins.iter().collect::<Vec<_>>(), &n.types, &mut Bindings::new()).map_err(err)?;
                for (i, t) in outs.into_iter().enumerate() {
                    env.insert(Value { node: h.id, output: i }, t);
                }
            }
        }
        let mut out = Tensors::new();
        for &v in g.outputs() {
            out.insert(g.value_name(v).to_string(), fetch(&env, v)?);
        }
        Ok(out)
    }
}

impl Executable for Staged {
    fn run(&self, inputs: &Tensors) -> Result<Tensors> {
        self.run_stages(inputs, None)
    }

    fn run_profiled(&self, inputs: &Tensors) -> Result<(Tensors, Option<Profile>)> {
        let mut p = Profile { kernels: Vec::new() };
        let out = self.run_stages(inputs, Some(&mut p))?;
        Ok((out, Some(p)))
    }

    /// The first stage reads only graph inputs: its plan is made now; the
    /// later ones wait for the sizes the data gives.
    fn prepare(&self, b: &Bindings) -> Result<()> {
        match self.stages.first() {
            Some(Some(s)) => {
                let own: BTreeSet<String> = s.inputs.iter().flat_map(|(n, _)| self.input_symbols(n)).collect();
                let b: Bindings = b.iter().filter(|(k, _)| own.contains(k.as_str())).map(|(k, v)| (k.clone(), *v)).collect();
                s.exe.prepare(&b)
            }
            _ => Ok(()),
        }
    }
}

impl Staged {
    /// The symbols of the graph input `name`'s dims.
    fn input_symbols(&self, name: &str) -> Vec<String> {
        let g = &self.graph;
        g.inputs()
            .iter()
            .filter(|&&i| g.node(i).name() == name)
            .flat_map(|&i| g.node(i).types[0].shape.symbols())
            .map(|s| s.to_string())
            .collect()
    }
}
