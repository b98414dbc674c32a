//! What a case covers (its labels: each op with the dtype it computes on), and
//! the table of results per label. Outputs are compared by the one rule every
//! suite uses (`smelt_interp::compare`).

use smelt_ir::{Graph, Op};
use std::collections::{BTreeMap, BTreeSet};

/// The labels of a graph: `op(dtype)` for each of its nodes (sources left out),
/// the dtype its first input has — `add(i32)`, `reduce_max(u8)`, `relu(f16)`;
/// casts also name what they cast to (`cast(f32→i8)`).
pub fn labels(g: &Graph) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for id in g.node_ids() {
        let n = g.node(id);
        if n.op.is_source() {
            continue;
        }
        let dt = g.node_inputs(id).first().and_then(|&v| g.value_type(v)).map(|t| t.dtype.to_string()).unwrap_or_default();
        let l = match &n.op {
            Op::Cast { .. } => format!("cast({dt}→{})", n.types[0].dtype),
            op => format!("{}({dt})", op.name()),
        };
        out.insert(l);
    }
    out
}

/// The op of a label (`add(i32)` → `add`).
pub fn op_of_label(l: &str) -> &str {
    l.split('(').next().unwrap_or(l)
}

/// Counts per label: passed, unsupported (as expected), failed; and the failures.
#[derive(Debug, Default)]
pub struct Table {
    rows: BTreeMap<String, [usize; 3]>,
    pub failures: Vec<String>,
    /// Cases that were expected to be unsupported, by name: whether they were.
    pub expected: BTreeMap<String, bool>,
}

impl Table {
    pub fn pass(&mut self, labels: &BTreeSet<String>) {
        for l in labels {
            self.rows.entry(l.clone()).or_default()[0] += 1;
        }
    }

    pub fn unsupported(&mut self, labels: &BTreeSet<String>) {
        for l in labels {
            self.rows.entry(l.clone()).or_default()[1] += 1;
        }
    }

    pub fn fail(&mut self, labels: &BTreeSet<String>, msg: String) {
        for l in labels {
            self.rows.entry(l.clone()).or_default()[2] += 1;
        }
        self.failures.push(msg);
    }

    /// The labels that passed at least one case.
    pub fn passed_labels(&self) -> BTreeSet<String> {
        self.rows.iter().filter(|(_, r)| r[0] > 0).map(|(l, _)| l.clone()).collect()
    }

    /// The table as text: one row per label with its counts and a verdict.
    pub fn render(&self, title: &str) -> String {
        let mut s = format!("{title}\n{:<34} {:>6} {:>12} {:>7}  status\n", "op(dtype)", "pass", "unsupported", "fail");
        for (l, [p, u, f]) in &self.rows {
            let status = if *f > 0 {
                "FAIL"
            } else if *u > 0 && *p == 0 {
                "unsupported"
            } else if *u > 0 {
                "partial"
            } else {
                "pass"
            };
            s.push_str(&format!("{l:<34} {p:>6} {u:>12} {f:>7}  {status}\n"));
        }
        s
    }
}
