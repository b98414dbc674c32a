//! Ahead-of-time libraries: a graph with bound shapes compiled once into what a C
//! program links against — an object file of kernels (Cranelift or LLVM), a C
//! driver that owns the arena and calls the kernels in plan order, a C header with
//! an init/run/free API, and a weights file with every constant (weights and
//! packed weights). `smelt compile --emit lib` writes these and builds the shared
//! library and static archive with the system C compiler.
//!
//! The weights file is `SMELTWTS`, the payload length as a little-endian u64, then
//! the payload: each constant buffer at a 64-byte aligned offset. The driver runs
//! the kernels on the calling thread (parallel loops run whole); one instance runs
//! one call at a time.

use crate::exec::memory;
use smelt_codegen::lower::{self, BufKind, Program};
use smelt_codegen::schedule::Target;
use smelt_codegen::{Backend, kernel::Kernel};
use smelt_ir::Graph;
use std::fmt::Write as _;

/// Magic bytes at the start of a weights file.
pub const WEIGHTS_MAGIC: &[u8; 8] = b"SMELTWTS";

/// Alignment of each constant in the weights payload.
const ALIGN: usize = 64;

/// The parts of an ahead-of-time library.
#[derive(Debug, Clone)]
pub struct Library {
    /// The C identifier of the model: functions are `smelt_<name>_*`.
    pub name: String,
    /// Relocatable (PIC) object with one function per kernel, `smelt_<name>_k<i>`.
    pub object: Vec<u8>,
    /// `<name>.h`.
    pub header: String,
    /// `<name>.c`: init/run/free, calling the kernels of `object`.
    pub driver: String,
    /// `<name>.weights`.
    pub weights: Vec<u8>,
}

/// A C identifier made of `s`.
fn ident(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'm');
    }
    out
}

/// `s` as the body of a C string literal.
fn c_str(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if c.is_ascii() && !c.is_ascii_control() => o.push(c),
            c => {
                let mut b = [0; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(o, "\\{byte:03o}");
                }
            }
        }
    }
    o
}

/// Compiles a graph whose input shapes are bound into a library for `backend`.
pub fn build(g: &Graph, target: &Target, backend: Backend) -> Result<Library, smelt_codegen::Error> {
    let prog = lower::lower(g, target)?;
    let name = ident(&g.name);
    let prefix = format!("smelt_{name}");
    let kernels: Vec<Kernel> =
        prog.steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut k = s.kernel.clone();
                k.name = format!("k{i}");
                k
            })
            .collect();
    let object = smelt_codegen::object(backend, &kernels, &prefix, target)?;
    let mem = memory::plan(&prog);
    // Constants side by side in the payload.
    let mut payload: Vec<u8> = vec![];
    let mut const_off = vec![None; prog.buffers.len()];
    for (i, b) in prog.buffers.iter().enumerate() {
        if let BufKind::Const(c) = &b.kind {
            payload.resize(payload.len().div_ceil(ALIGN) * ALIGN, 0);
            const_off[i] = Some(payload.len());
            payload.extend_from_slice(c);
        }
    }
    let mut weights = WEIGHTS_MAGIC.to_vec();
    weights.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    weights.extend_from_slice(&payload);
    let header = header(g, &prog, &name, backend, target);
    let driver = driver(&prog, &name, &mem, &const_off, payload.len());
    Ok(Library { name, object, header, driver, weights })
}

/// The type of graph input or output `value_name`, as text (for the header).
fn describe(g: &Graph, value: &str) -> String {
    g.find(value)
        .and_then(|v| g.value_type(v))
        .map(|t| t.to_string())
        .unwrap_or_else(|| "?".into())
}

/// Text for a C comment: a model's own names may hold `*/` (or `/*`).
fn in_comment(s: &str) -> String {
    s.replace("*/", "*\\/").replace("/*", "/\\*")
}

fn header(g: &Graph, prog: &Program, name: &str, backend: Backend, target: &Target) -> String {
    let up = name.to_uppercase();
    let mut h = String::new();
    let _ = writeln!(h, "/* {name}.h: the C API of model `{}`, compiled ahead of time by smelt", in_comment(&g.name));
    let _ = writeln!(h, " * ({} backend, schedule {}). Shapes are fixed at compile time.", backend.name(), target.name);
    let _ = writeln!(h, " *");
    let _ = writeln!(h, " * Tensors are little-endian, row-major bytes (bool: one byte 0/1).");
    let _ = writeln!(h, " * Inputs, in the order `run` takes them:");
    for (i, (n, b)) in prog.inputs.iter().enumerate() {
        let _ = writeln!(h, " *   {i}: {}: {} ({} bytes)", in_comment(n), in_comment(&describe(g, n)), prog.buffer(*b).bytes());
    }
    let _ = writeln!(h, " * Outputs, in the order `run` writes them:");
    for (i, o) in prog.outputs.iter().enumerate() {
        let _ = writeln!(h, " *   {i}: {}: {} ({} bytes)", in_comment(&o.name), in_comment(&describe(g, &o.name)), prog.buffer(o.buf).bytes());
    }
    let _ = writeln!(h, " *");
    let _ = writeln!(h, " * Kernels run on the calling thread; an instance runs one call at a time.");
    let _ = writeln!(h, " */");
    let _ = writeln!(h, "#ifndef SMELT_{up}_H\n#define SMELT_{up}_H\n\n#include <stddef.h>\n");
    let _ = writeln!(h, "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n");
    let _ = writeln!(h, "#define SMELT_{up}_NUM_INPUTS {}", prog.inputs.len());
    let _ = writeln!(h, "#define SMELT_{up}_NUM_OUTPUTS {}\n", prog.outputs.len());
    let _ = writeln!(h, "typedef struct smelt_{name} smelt_{name};\n");
    let _ = writeln!(h, "/* Loads the weights file (`{name}.weights`); NULL on failure, with a message in");
    let _ = writeln!(h, " * `err` (`err_len` bytes, may be 0). */");
    let _ = writeln!(h, "smelt_{name} *smelt_{name}_init(const char *weights_path, char *err, size_t err_len);");
    let _ = writeln!(h, "/* Runs the model: `inputs[i]` holds input i, `outputs[i]` receives output i.");
    let _ = writeln!(h, " * 0 on success; otherwise smelt_{name}_error tells why. */");
    let _ = writeln!(h, "int smelt_{name}_run(smelt_{name} *m, const void *const *inputs, void *const *outputs);");
    let _ = writeln!(h, "/* The message of the last failed run (\"\" if none). */");
    let _ = writeln!(h, "const char *smelt_{name}_error(const smelt_{name} *m);");
    let _ = writeln!(h, "void smelt_{name}_free(smelt_{name} *m);\n");
    let _ = writeln!(h, "/* Names and sizes in bytes of the inputs and outputs. */");
    for (dir, _) in [("input", ()), ("output", ())] {
        let _ = writeln!(h, "size_t smelt_{name}_num_{dir}s(void);");
        let _ = writeln!(h, "const char *smelt_{name}_{dir}_name(size_t i);");
        let _ = writeln!(h, "size_t smelt_{name}_{dir}_bytes(size_t i);");
    }
    let _ = writeln!(h, "\n#ifdef __cplusplus\n}}\n#endif\n\n#endif");
    h
}

/// `message` of a run-time check as a printf format and its arguments in order
/// (`{k}` is status word `k + 1`).
fn check_format(message: &str) -> (String, Vec<usize>) {
    let mut fmt = String::new();
    let mut args = vec![];
    let mut rest = message;
    while let Some(i) = rest.find('{') {
        let (head, tail) = rest.split_at(i);
        fmt.push_str(&c_str(head).replace('%', "%%"));
        match tail.get(1..3) {
            Some(d) if d.ends_with('}') && matches!(&d[..1], "0" | "1" | "2") => {
                fmt.push_str("%lld");
                args.push(d[..1].parse::<usize>().unwrap_or(0) + 1);
                rest = &tail[3..];
            }
            _ => {
                fmt.push('{');
                rest = &tail[1..];
            }
        }
    }
    fmt.push_str(&c_str(rest).replace('%', "%%"));
    (fmt, args)
}

fn driver(prog: &Program, name: &str, mem: &memory::MemoryPlan, const_off: &[Option<usize>], payload: usize) -> String {
    let m = format!("smelt_{name}");
    let mut c = String::new();
    let _ = writeln!(c, "/* {name}.c: the driver of model `{}`, generated by smelt. */", in_comment(&prog.name));
    let _ = writeln!(c, "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"{name}.h\"\n");
    for i in 0..prog.steps.len() {
        let _ = writeln!(c, "void {m}_k{i}(void *const *buffers, int64_t lo, int64_t hi);");
    }
    let arena = mem.peak_bytes.div_ceil(ALIGN).max(1) * ALIGN;
    let _ = writeln!(c, "\n#define ARENA_BYTES {arena}u\n#define PAYLOAD_BYTES {payload}u\n");
    let _ = writeln!(c, "struct {m} {{ unsigned char *arena; unsigned char *weights; char error[512]; }};\n");
    // Names and sizes.
    let list = |items: Vec<String>| items.join(", ");
    let in_names = list(prog.inputs.iter().map(|(n, _)| format!("\"{}\"", c_str(n))).collect());
    let in_bytes = list(prog.inputs.iter().map(|(_, b)| format!("{}u", prog.buffer(*b).bytes())).collect());
    let out_names = list(prog.outputs.iter().map(|o| format!("\"{}\"", c_str(&o.name))).collect());
    let out_bytes = list(prog.outputs.iter().map(|o| format!("{}u", prog.buffer(o.buf).bytes())).collect());
    let (ni, no) = (prog.inputs.len(), prog.outputs.len());
    let _ = writeln!(c, "static const char *const in_names[] = {{ {in_names}{} }};", if ni == 0 { "0" } else { "" });
    let _ = writeln!(c, "static const size_t in_bytes[] = {{ {in_bytes}{} }};", if ni == 0 { "0" } else { "" });
    let _ = writeln!(c, "static const char *const out_names[] = {{ {out_names}{} }};", if no == 0 { "0" } else { "" });
    let _ = writeln!(c, "static const size_t out_bytes[] = {{ {out_bytes}{} }};\n", if no == 0 { "0" } else { "" });
    for (dir, n, names, bytes) in [("input", ni, "in_names", "in_bytes"), ("output", no, "out_names", "out_bytes")] {
        let _ = writeln!(c, "size_t {m}_num_{dir}s(void) {{ return {n}; }}");
        let _ = writeln!(c, "const char *{m}_{dir}_name(size_t i) {{ return i < {n} ? {names}[i] : 0; }}");
        let _ = writeln!(c, "size_t {m}_{dir}_bytes(size_t i) {{ return i < {n} ? {bytes}[i] : 0; }}");
    }
    // init / free / error.
    let _ = write!(
        c,
        r#"
static void fail(char *err, size_t len, const char *what, const char *path) {{
    if (err && len) snprintf(err, len, "%s: %s", path, what);
}}

{m} *{m}_init(const char *path, char *err, size_t err_len) {{
    FILE *f = fopen(path, "rb");
    if (!f) {{ fail(err, err_len, "cannot open the weights file", path); return 0; }}
    unsigned char head[16];
    if (fread(head, 1, 16, f) != 16 || memcmp(head, "SMELTWTS", 8) != 0) {{
        fclose(f); fail(err, err_len, "not a smelt weights file", path); return 0;
    }}
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | head[8 + i];
    if (n != PAYLOAD_BYTES) {{ fclose(f); fail(err, err_len, "weights of another model (payload size differs)", path); return 0; }}
    {m} *m = calloc(1, sizeof *m);
    if (!m) {{ fclose(f); fail(err, err_len, "out of memory", path); return 0; }}
    m->weights = aligned_alloc({ALIGN}, PAYLOAD_BYTES / {ALIGN} * {ALIGN} + {ALIGN});
    m->arena = aligned_alloc({ALIGN}, ARENA_BYTES);
    if (!m->weights || !m->arena) {{ fclose(f); {m}_free(m); fail(err, err_len, "out of memory", path); return 0; }}
    memset(m->arena, 0, ARENA_BYTES);
    int extra = 0;
    if (fread(m->weights, 1, PAYLOAD_BYTES, f) != PAYLOAD_BYTES || fread(&extra, 1, 1, f) != 0) {{
        fclose(f); {m}_free(m); fail(err, err_len, "truncated or oversized weights file", path); return 0;
    }}
    fclose(f);
    return m;
}}

void {m}_free({m} *m) {{
    if (!m) return;
    free(m->weights);
    free(m->arena);
    free(m);
}}

const char *{m}_error(const {m} *m) {{ return m ? m->error : "no model"; }}

int {m}_run({m} *m, const void *const *inputs, void *const *outputs) {{
    unsigned char *A = m->arena;
    const unsigned char *W = m->weights;
    (void)A; (void)W;
    m->error[0] = 0;
"#
    );
    let place = |b: lower::BufIdx| -> String {
        match (const_off[b.0], mem.offsets[b.0]) {
            (Some(o), _) => format!("(void *)(W + {o})"),
            (_, Some(o)) => format!("A + {o}"),
            _ => "A".into(),
        }
    };
    for (i, (n, b)) in prog.inputs.iter().enumerate() {
        if let Some(o) = mem.offsets[b.0] {
            let _ = writeln!(c, "    memcpy(A + {o}, inputs[{i}], {}u); /* {} */", prog.buffer(*b).bytes(), c_str(n).replace("*/", "* /"));
        }
    }
    for (i, s) in prog.steps.iter().enumerate() {
        let extent = s.kernel.parallel_extent();
        if extent == 0 {
            continue;
        }
        let args = list(s.args.iter().map(|&b| place(b)).collect());
        let _ = writeln!(c, "    {{ /* node {} */", c_str(&s.node).replace("*/", "* /"));
        let status = s.check.as_ref().and_then(|ch| mem.offsets[ch.buf.0].map(|o| (o, ch)));
        if let Some((o, _)) = status {
            let _ = writeln!(c, "        memset(A + {o}, 0, 32);");
        }
        let _ = writeln!(c, "        void *b[] = {{ {args}{} }};", if s.args.is_empty() { "0" } else { "" });
        let _ = writeln!(c, "        {m}_k{i}((void *const *)b, 0, {extent});");
        if let Some((o, ch)) = status {
            let _ = writeln!(c, "        const int64_t *s = (const int64_t *)(A + {o});");
            let (fmt, words) = check_format(&ch.message);
            let args: String = words.iter().map(|w| format!(", (long long)s[{w}]")).collect();
            let _ = writeln!(
                c,
                "        if (s[0]) {{ snprintf(m->error, sizeof m->error, \"{} at node {}: {fmt}\"{args}); return 1; }}",
                c_str(&ch.op).replace('%', "%%"),
                c_str(&s.node).replace('%', "%%"),
            );
        }
        let _ = writeln!(c, "    }}");
    }
    for (i, o) in prog.outputs.iter().enumerate() {
        let n = prog.buffer(o.buf).bytes();
        let src = match (const_off[o.buf.0], mem.offsets[o.buf.0]) {
            (Some(off), _) => format!("W + {off}"),
            (_, Some(off)) => format!("A + {off}"),
            _ => continue,
        };
        let _ = writeln!(c, "    memcpy(outputs[{i}], {src}, {n}u);");
    }
    let _ = writeln!(c, "    return 0;\n}}");
    c
}
