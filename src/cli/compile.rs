//! `smelt compile MODEL --emit kernel|clif|asm|obj|wgsl [--dim N=4] [-o OUT]`: lowers a
//! model for Cranelift (or, with `--emit wgsl`, for the GPU: its WGSL shaders) (symbolic dims bound by `--dim`, unset ones 1) and shows
//! the kernel IR, the CLIF, the machine code, or writes an object file with one
//! exported function per kernel (`void smelt_<model>_<kernel>(void *const *buffers,
//! int64_t lo, int64_t hi)`).

use super::run::{dims, render_codegen_error};
use super::{load_model, reported, shown};
use smelt::codegen::{cranelift, lower, schedule::Target};
use smelt::ir::{Bindings, weights};
use std::path::Path;

/// What `compile` emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// The kernel IR of every step, as scheduled.
    Kernel,
    /// Cranelift IR, after vectorization.
    Clif,
    /// The machine code, disassembled.
    Asm,
    /// An object file (needs `-o`).
    Obj,
    /// The WGSL compute shaders of the GPU lowering, one per step.
    Wgsl,
}

pub fn main(model: &Path, emit: Emit, given: &[(String, u64)], out: Option<&Path>) -> anyhow::Result<()> {
    let shown_model = shown(model);
    let g = load_model(model)?;
    let mut b: Bindings = dims(&g, given)?;
    for &i in g.inputs() {
        for s in g.node(i).types[0].shape.symbols() {
            b.entry(s.to_string()).or_insert(1);
        }
    }
    let bound = match g.bind(&b) {
        Ok(bg) => bg,
        Err(d) => return reported(d.render(Some(&shown_model))),
    };
    if emit == Emit::Wgsl {
        let text = match smelt::codegen::wgsl::check(&g)
            .and_then(|()| lower::lower(&bound, &smelt::codegen::wgsl::target()))
            .and_then(|p| smelt::codegen::wgsl::print_program(&p))
        {
            Ok(t) => t,
            Err(e) => return reported(render_codegen_error(&g, &shown_model, e)),
        };
        return match out {
            Some(path) => match weights::write_atomic(path, text.as_bytes()) {
                Ok(()) => {
                    eprintln!("wrote {} bytes of WGSL to {}", text.len(), shown(path));
                    Ok(())
                }
                Err(e) => reported(e.render(None)),
            },
            None => {
                print!("{text}");
                Ok(())
            }
        };
    }
    let prog = match lower::lower(&bound, &Target::default()) {
        Ok(p) => p,
        Err(e) => return reported(render_codegen_error(&g, &shown_model, e)),
    };
    let kernels: Vec<_> = prog.steps.iter().map(|s| s.kernel.clone()).collect();
    let bytes: Vec<u8> = match emit {
        Emit::Kernel | Emit::Wgsl => prog.print_kernels().into_bytes(),
        Emit::Clif | Emit::Asm | Emit::Obj => {
            let r = match emit {
                Emit::Clif => cranelift::clif(&kernels).map(String::into_bytes),
                Emit::Asm => cranelift::asm(&kernels).map(String::into_bytes),
                _ => cranelift::object(&kernels, &format!("smelt_{}", prog.name)),
            };
            match r {
                Ok(b) => b,
                Err(e) => return reported(render_codegen_error(&g, &shown_model, e)),
            }
        }
    };
    match out {
        Some(path) => {
            if let Err(e) = weights::write_atomic(path, &bytes) {
                return reported(e.render(None));
            }
            eprintln!("wrote {} bytes ({} kernels) to {}", bytes.len(), kernels.len(), shown(path));
        }
        None if emit == Emit::Obj => return reported("error: --emit obj writes a binary file: give it with -o FILE.o"),
        None => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(())
}
