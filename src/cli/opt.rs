//! `smelt opt MODEL [-O2] [--print-after NAME|all] [--time-passes] [--target cpu|gpu] [-o OUT]`:
//! runs an optimization pipeline. Without `-o` the optimized model is printed;
//! with it, `OUT.smelt` and `OUT.safetensors` are written (each atomically, the
//! weights first, only after the pipeline succeeded), folded params' weights
//! recomputed. `--print-after` and `--time-passes` report on stderr.

use super::{load_model, reported, shown};
use smelt::ir::{text, weights};
use smelt::passes::{OptLevel, PassManager, PrintAfter, CostTarget, time_table};
use std::path::PathBuf;

/// What `opt` was asked to do.
#[derive(Debug)]
pub struct OptArgs {
    pub model: PathBuf,
    pub level: String,
    pub print_after: Vec<String>,
    pub time_passes: bool,
    pub target: String,
    pub out: Option<PathBuf>,
}

pub fn main(a: &OptArgs) -> anyhow::Result<()> {
    let level: OptLevel = match a.level.parse() {
        Ok(l) => l,
        Err(e) => return reported(format!("error: {e}")),
    };
    let Some(target) = CostTarget::by_name(&a.target) else {
        return reported(format!("error: unknown target `{}` (use cpu or gpu)", a.target));
    };
    let mut g = load_model(&a.model)?;
    let mut pm = PassManager::pipeline_for(level, target);
    let pa = match a.print_after.as_slice() {
        [] => PrintAfter::None,
        v if v.iter().any(|n| n == "all") => PrintAfter::All,
        v => PrintAfter::Only(v.to_vec()),
    };
    if let Err(e) = pm.set_print_after(pa) {
        return reported(format!("error: {e}"));
    }
    let records = match pm.run(&mut g) {
        Ok(r) => r,
        Err(e) => return reported(format!("error: {e}").replace('\n', "\n  ")),
    };
    for r in &records {
        if let Some(p) = &r.printed {
            eprintln!("# ---- after {} ----\n{p}", r.name);
        }
    }
    if a.time_passes {
        eprint!("{}", time_table(&records));
    }
    match &a.out {
        None => print!("{}", text::print(&g)),
        Some(out) => match weights::write_model(&g, out) {
            Ok((mpath, wpath)) => eprintln!("wrote {} and {}", shown(&mpath), shown(&wpath)),
            Err(e) => return reported(e.render(None)),
        },
    }
    Ok(())
}
