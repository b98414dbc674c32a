//! Whether a run can fit in memory, checked before anything of its size is
//! allocated: a model (or a `--dim`) that needs more memory than the machine has
//! fails with a clear error instead of an allocation abort.
//!
//! The check is a lower bound, so it never refuses a run that could fit: the
//! inputs, the outputs and the largest intermediate value must be in memory at
//! once, whatever the executor reuses. Memory available is the kernel's estimate
//! (`MemAvailable` in `/proc/meminfo`); where it is not known, nothing is checked.

use crate::error::{Error, ErrorKind, Result};
use smelt_ir::{Bindings, Dim, Graph, TensorType};

/// Bytes of memory available to this process, if the system says.
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Bytes of a value of type `t` with the symbols bound by `b` (unbound ones
/// count as 1), saturating.
pub fn bytes(t: &TensorType, b: &Bindings) -> u128 {
    let n = t.dims().iter().fold(1u128, |acc, d| {
        let s = match d {
            Dim::Fixed(n) => *n,
            Dim::Sym(s) => b.get(&**s).copied().unwrap_or(1),
        };
        acc.saturating_mul(s as u128)
    });
    n.saturating_mul(t.dtype.size() as u128)
}

/// The least memory a run of `g` at bindings `b` needs: (inputs, outputs, the
/// largest intermediate value), in bytes.
pub fn lower_bound(g: &Graph, b: &Bindings) -> (u128, u128, u128) {
    let inputs: u128 = g.inputs().iter().map(|&i| bytes(&g.node(i).types[0], b)).sum();
    let outputs: u128 = g.outputs().iter().filter_map(|&v| g.value_type(v)).map(|t| bytes(t, b)).sum();
    let largest = g
        .node_ids()
        .filter(|&id| !g.node(id).op.is_source())
        .flat_map(|id| g.node(id).types.iter().map(|t| bytes(t, b)))
        .max()
        .unwrap_or(0);
    (inputs, outputs, largest)
}

fn gb(bytes: u128) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// `Ok` when the lower bound fits in the memory available (or that is unknown).
pub fn check(g: &Graph, b: &Bindings) -> Result<()> {
    let Some(avail) = available() else { return Ok(()) };
    let (i, o, l) = lower_bound(g, b);
    let need = i.saturating_add(o).saturating_add(l);
    if need <= avail as u128 {
        return Ok(());
    }
    let dims: Vec<String> = b.iter().map(|(k, v)| format!("{}={v}", smelt_ir::text::quote(k))).collect();
    let at = if dims.is_empty() { String::new() } else { format!(" at {}", dims.join(", ")) };
    Err(Error::text(
        ErrorKind::Memory,
        format!(
            "graph {}{at} needs at least {} (inputs {}, outputs {}, its largest intermediate value {}), more than the {} of memory available",
            g.name,
            gb(need),
            gb(i),
            gb(o),
            gb(l),
            gb(avail as u128)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::{bytes, lower_bound};
    use smelt_ir::{Bindings, text::parse};

    #[test]
    fn bounds_count_inputs_outputs_and_the_largest_value() {
        let g = parse("graph g(x: f32[N, 64]) -> (y) {\n  w = param f32[64, 48]\n  h = matmul(x, w)\n  y = relu(h)\n}\n").unwrap();
        let b: Bindings = [("N".to_string(), 1_000_000_000u64)].into_iter().collect();
        let (i, o, l) = lower_bound(&g, &b);
        assert_eq!((i, o, l), (256_000_000_000, 192_000_000_000, 192_000_000_000));
        assert_eq!(bytes(&g.node(g.inputs()[0]).types[0], &Bindings::new()), 256);
    }
}
