//! A view of one ONNX node for the op importers: its inputs and outputs (an empty
//! name is an absent optional one) and typed attribute getters that fail with a
//! message naming the attribute, never panic.

use super::error::{Error, Result};
use super::proto::{AttributeProto, NodeProto, TensorProto, attribute_proto::AttributeType};

/// One ONNX node being imported.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    pub p: &'a NodeProto,
    /// The node's name, or its first output's when it has none.
    pub name: &'a str,
}

impl<'a> NodeRef<'a> {
    pub fn new(p: &'a NodeProto) -> NodeRef<'a> {
        let name = match p.name() {
            "" => p.output.iter().find(|o| !o.is_empty()).map(String::as_str).unwrap_or("<unnamed>"),
            n => n,
        };
        NodeRef { p, name }
    }

    pub fn op_type(&self) -> &'a str {
        self.p.op_type()
    }

    /// A node error about this node.
    pub fn err(&self, message: impl Into<String>) -> Error {
        Error::Node { node: self.name.to_string(), op_type: self.op_type().to_string(), message: message.into() }
    }

    /// An "unsupported" error about this node.
    pub fn unsupported(&self, reason: impl Into<String>) -> Error {
        Error::Unsupported(vec![super::error::Unsupported {
            op_type: self.op_type().to_string(),
            node: self.name.to_string(),
            reason: Some(reason.into()),
        }])
    }

    /// The name of input `i`, when present and not empty.
    pub fn input_name(&self, i: usize) -> Option<&'a str> {
        self.p.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn has_input(&self, i: usize) -> bool {
        self.input_name(i).is_some()
    }

    /// Number of input slots (absent optional ones included).
    pub fn num_inputs(&self) -> usize {
        self.p.input.len()
    }

    /// Is output `i` requested (present with a non-empty name)?
    pub fn has_output(&self, i: usize) -> bool {
        self.p.output.get(i).is_some_and(|s| !s.is_empty())
    }

    pub fn num_outputs(&self) -> usize {
        self.p.output.len()
    }

    /// Fails unless only the first `k` outputs are requested.
    pub fn only_outputs(&self, k: usize, what: &str) -> Result<()> {
        match (k..self.num_outputs()).find(|&i| self.has_output(i)) {
            Some(i) => Err(self.unsupported(format!("output {i} ({what}) is not supported"))),
            None => Ok(()),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.p.attribute.iter().find(|a| a.name() == name)
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    fn kind(&self, a: &AttributeProto, want: AttributeType) -> Result<()> {
        let t = a.r#type();
        if t != AttributeType::Undefined && t != want {
            return Err(self.err(format!(
                "attribute `{}` should be {}, found {}",
                a.name(),
                want.as_str_name(),
                t.as_str_name()
            )));
        }
        Ok(())
    }

    pub fn int_opt(&self, name: &str) -> Result<Option<i64>> {
        self.attr(name).map(|a| self.kind(a, AttributeType::Int).map(|_| a.i())).transpose()
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        Ok(self.int(name, default as i64)? != 0)
    }

    pub fn float_opt(&self, name: &str) -> Result<Option<f32>> {
        self.attr(name).map(|a| self.kind(a, AttributeType::Float).map(|_| a.f())).transpose()
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.float_opt(name)?.unwrap_or(default))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        self.attr(name).map(|a| self.kind(a, AttributeType::Ints).map(|_| a.ints.clone())).transpose()
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        self.attr(name).map(|a| self.kind(a, AttributeType::Floats).map(|_| a.floats.clone())).transpose()
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        self.attr(name)
            .map(|a| {
                self.kind(a, AttributeType::String)?;
                String::from_utf8(a.s().to_vec()).map_err(|_| self.err(format!("attribute `{name}` is not UTF-8")))
            })
            .transpose()
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        self.attr(name)
            .map(|a| {
                self.kind(a, AttributeType::Strings)?;
                a.strings
                    .iter()
                    .map(|s| {
                        String::from_utf8(s.clone()).map_err(|_| self.err(format!("attribute `{name}` is not UTF-8")))
                    })
                    .collect()
            })
            .transpose()
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        self.attr(name)
            .map(|a| self.kind(a, AttributeType::Tensor).map(|_| a.t.as_ref()))
            .transpose()
            .map(Option::flatten)
    }

    /// Non-negative ints of an attribute, as usizes.
    pub fn usizes(&self, name: &str) -> Result<Option<Vec<usize>>> {
        match self.ints(name)? {
            None => Ok(None),
            Some(v) => v
                .iter()
                .map(|&x| {
                    usize::try_from(x).map_err(|_| self.err(format!("attribute `{name}` has a negative value {x}")))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
        }
    }
}
