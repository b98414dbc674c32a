//! The e-graph language: a hand-written egg [`Language`] whose e-nodes carry an IR
//! [`Op`] (attributes included) as payload, so that every op of the catalogue is in
//! the language without mirroring it by hand, and rules read like the text format:
//! `(relu (add (matmul ?a ?b) ?c))`.
//!
//! An e-node is identified by its *key* ([`crate::opkey::op_key`]: name and
//! non-default attributes) and its children. Graph inputs and params are leaves
//! named by their names; an output of a multi-output op (`split`, `lstm`, `topk`) is
//! `get:K` of the op's e-class. Nodes with one op name share a discriminant, so a
//! rule may match a name with any attributes (see `rules::OpSearcher`).

use crate::opkey::op_key;
use egg::{FromOp, Id, Language};
use smelt_ir::Op;
use smelt_ir::attr::AttrReader;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What an e-node computes.
#[derive(Debug, Clone)]
pub enum Head {
    /// An IR op (a `const` carries its value).
    Op(Arc<Op>),
    /// A graph input, by name.
    Input(Arc<str>),
    /// A param, by name.
    Param(Arc<str>),
    /// Output `k` of a multi-output op.
    Get(usize),
}

/// An e-node: a head and its children (one e-class per input).
#[derive(Debug, Clone)]
pub struct ENode {
    name: &'static str,
    key: Arc<str>,
    pub head: Head,
    pub children: Vec<Id>,
}

impl ENode {
    pub fn op(op: Op, children: Vec<Id>) -> ENode {
        let key: Arc<str> = op_key(&op).into();
        ENode { name: op.name(), key, head: Head::Op(Arc::new(op)), children }
    }

    pub fn input(name: &str) -> ENode {
        ENode { name: "input", key: format!("input:{name}").into(), head: Head::Input(name.into()), children: vec![] }
    }

    pub fn param(name: &str) -> ENode {
        ENode { name: "param", key: format!("param:{name}").into(), head: Head::Param(name.into()), children: vec![] }
    }

    pub fn get(k: usize, of: Id) -> ENode {
        ENode { name: "get", key: format!("get:{k}").into(), head: Head::Get(k), children: vec![of] }
    }

    /// The op name (`conv2d`, `input`, `param`, `get`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The key: name and attributes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The IR op, when the head is one.
    pub fn ir(&self) -> Option<&Op> {
        match &self.head {
            Head::Op(op) => Some(op),
            _ => None,
        }
    }
}

impl PartialEq for ENode {
    fn eq(&self, o: &ENode) -> bool {
        self.key == o.key && self.children == o.children
    }
}
impl Eq for ENode {}

impl Hash for ENode {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key.hash(h);
        self.children.hash(h);
    }
}

impl PartialOrd for ENode {
    fn partial_cmp(&self, o: &ENode) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for ENode {
    /// By name first, so that the nodes of one name (the discriminant) are
    /// contiguous in a sorted e-class, as egg's matcher expects.
    fn cmp(&self, o: &ENode) -> Ordering {
        (self.name, &self.key, &self.children).cmp(&(o.name, &o.key, &o.children))
    }
}

impl Language for ENode {
    type Discriminant = &'static str;

    fn discriminant(&self) -> &'static str {
        self.name
    }

    fn matches(&self, other: &ENode) -> bool {
        self.key == other.key && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl fmt::Display for ENode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// An op token in a rule's pattern that names no op (or needs attributes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an op usable in a pattern (ops with required attributes must be matched in Rust)")]
pub struct UnknownOp(pub String);

impl FromOp for ENode {
    type Error = UnknownOp;

    /// Parses an op name with default attributes (`relu`, `add`, `softmax`), or
    /// `input:NAME`, `param:NAME`, `get:K`.
    fn from_op(op: &str, children: Vec<Id>) -> Result<ENode, UnknownOp> {
        if let Some(n) = op.strip_prefix("input:") {
            return Ok(ENode::input(n));
        }
        if let Some(n) = op.strip_prefix("param:") {
            return Ok(ENode::param(n));
        }
        if let Some(k) = op.strip_prefix("get:").and_then(|k| k.parse().ok())
            && children.len() == 1
        {
            return Ok(ENode::get(k, children[0]));
        }
        let mut reader = AttrReader::new(op, &[]);
        let parsed = Op::parse(op, &mut reader);
        match parsed {
            Some(o) if reader.finish().is_empty() && !o.is_source() => Ok(ENode::op(o, children)),
            _ => Err(UnknownOp(op.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_ops_with_default_attributes() {
        let relu = ENode::from_op("relu", vec![Id::from(0)]).unwrap();
        assert_eq!(relu.to_string(), "relu");
        assert_eq!(relu.discriminant(), "relu");
        assert!(ENode::from_op("softmax", vec![Id::from(0)]).is_ok());
        // reshape needs its `shape`; a pattern cannot name it.
        assert_eq!(ENode::from_op("reshape", vec![Id::from(0)]), Err(UnknownOp("reshape".into())));
        assert!(ENode::from_op("frobnicate", vec![]).is_err());
        assert_eq!(ENode::from_op("param:w", vec![]).unwrap(), ENode::param("w"));
    }

    #[test]
    fn nodes_of_one_name_sort_together() {
        use smelt_ir::ops::Conv;
        let mut c = Conv::new(2);
        c.pad = vec![1; 4];
        let mut v = [
            ENode::op(Op::Conv(c), vec![Id::from(0), Id::from(1)]),
            ENode::op(Op::Unary(smelt_ir::UnaryOp::Relu), vec![Id::from(0)]),
            ENode::op(Op::Conv(Conv::new(2)), vec![Id::from(0), Id::from(1)]),
        ];
        v.sort();
        let names: Vec<&str> = v.iter().map(|n| n.name()).collect();
        assert_eq!(names, ["conv2d", "conv2d", "relu"]);
        assert!(!v[0].matches(&v[1]));
    }
}
