//! Building small ONNX models in tests (value infos, nodes, attributes, the
//! model around them) and running one on every backend.

#![allow(dead_code)]

use smelt::Tensor;
use smelt::engine::{BackendKind, Options, Source, Tensors};
use smelt::frontends::onnx::encode_model;
use smelt::frontends::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto, tensor_shape_proto, type_proto,
};

/// A tensor value info of ONNX element type `elem` (1 float, 7 int64), with
/// fixed dims (numbers) and symbolic ones (names).
pub fn vi_typed(name: &str, dims: &[&str], elem: i32) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d.parse::<i64>() {
                Ok(n) => tensor_shape_proto::dimension::Value::DimValue(n),
                Err(_) => tensor_shape_proto::dimension::Value::DimParam(d.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    let tt = type_proto::Tensor { elem_type: Some(elem), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tt)), ..Default::default() }),
        ..Default::default()
    }
}

/// A float value info.
pub fn vi(name: &str, dims: &[&str]) -> ValueInfoProto {
    vi_typed(name, dims, 1)
}

/// An int64 value info.
pub fn vi_i64(name: &str, dims: &[&str]) -> ValueInfoProto {
    vi_typed(name, dims, 7)
}

pub fn node(op: &str, name: &str, ins: &[&str], outs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn node_with(op: &str, name: &str, ins: &[&str], outs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto { attribute, ..node(op, name, ins, outs) }
}

pub fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), i: Some(v), r#type: Some(attribute_proto::AttributeType::Int as i32), ..Default::default() }
}

pub fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: Some(name.into()), f: Some(v), r#type: Some(attribute_proto::AttributeType::Float as i32), ..Default::default() }
}

pub fn floats_attr(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        floats: v.to_vec(),
        r#type: Some(attribute_proto::AttributeType::Floats as i32),
        ..Default::default()
    }
}

pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(attribute_proto::AttributeType::Ints as i32),
        ..Default::default()
    }
}

pub fn string_attr(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(attribute_proto::AttributeType::String as i32),
        ..Default::default()
    }
}

/// A graph attribute (a `Loop`, `Scan` or `If` body) of `node`s with the given
/// formal inputs and outputs.
pub fn graph_attr(name: &str, node: Vec<NodeProto>, input: Vec<ValueInfoProto>, output: Vec<ValueInfoProto>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        g: Some(GraphProto { name: Some(name.into()), node, input, output, ..Default::default() }),
        r#type: Some(attribute_proto::AttributeType::Graph as i32),
        ..Default::default()
    }
}

/// The encoded model of one graph at `opset` of the default domain.
pub fn model(
    opset: i64,
    node: Vec<NodeProto>,
    input: Vec<ValueInfoProto>,
    output: Vec<ValueInfoProto>,
    initializer: Vec<TensorProto>,
) -> Vec<u8> {
    encode_model(&ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(GraphProto { name: Some("test".into()), node, input, output, initializer, ..Default::default() }),
        ..Default::default()
    })
}

/// Named input tensors.
pub fn tensors(list: Vec<(&str, Tensor)>) -> Tensors {
    list.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The ONNX model `bytes` run on `inputs` by every backend (WGSL where there is
/// an adapter), the interpreter first: (backend, outputs).
pub fn on_every_backend(bytes: &[u8], inputs: &Tensors) -> Vec<(BackendKind, Tensors)> {
    let mut backends = vec![BackendKind::Interp, BackendKind::Cranelift, BackendKind::Llvm];
    match smelt::engine::Wgsl::default().device() {
        Ok(_) => backends.push(BackendKind::Wgsl),
        Err(e) => eprintln!("no WGSL adapter ({e}): the CPU backends only"),
    }
    backends
        .into_iter()
        .map(|b| {
            let opts = Options { backend: b, ..Default::default() };
            let model = smelt::engine::compile(Source::Onnx { bytes: bytes.to_vec(), name: "m".into() }, &opts)
                .unwrap_or_else(|e| panic!("{b:?}: {e}"));
            (b, model.run(inputs).unwrap_or_else(|e| panic!("{b:?}: {e}")))
        })
        .collect()
}
