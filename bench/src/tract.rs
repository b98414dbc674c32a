//! The tract peer (tract-onnx 0.23.9), in the same process as smelt: the same ONNX
//! file loaded, decluttered and optimized (`into_optimized`), planned, checked
//! against ONNX Runtime's outputs and timed on the same inputs (by
//! [`crate::measure::interleave`]). Threads: tract's
//! matrix products run on a tract executor of N threads (`multithread_tract_scope`),
//! single-threaded for N = 1.

use crate::check::Values;
use crate::measure::{Case, Prepped, Subject, check, ms};
use crate::report::{Entry, Status};
use std::time::Instant;
use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::*;

pub const VERSION: &str = "0.23.9";

/// tract on one model at one thread count: loaded, optimized, planned (the
/// compile time) and checked.
pub fn subject(case: &Case, threads: usize, tolerance: f64) -> Prepped<'static> {
    let executor = if threads > 1 { Executor::multithread(threads) } else { Executor::SingleThread };
    multithread_tract_scope(executor.clone(), || prepare(case, threads, tolerance, executor))
}

struct TractSubject {
    executor: Executor,
    state: TypedSimpleState,
    inputs: TVec<TValue>,
}

impl Subject for TractSubject {
    fn once(&mut self) -> Result<f64, String> {
        let (state, inputs) = (&mut self.state, &self.inputs);
        multithread_tract_scope(self.executor.clone(), || {
            let t0 = Instant::now();
            state.run(inputs.clone()).map_err(|err| one_line(&err))?;
            Ok(ms(t0))
        })
    }
}

fn prepare(case: &Case, threads: usize, tolerance: f64, executor: Executor) -> Prepped<'static> {
    let mut e = Entry::new(&case.model, "tract", threads, Status::Ok);
    let t0 = Instant::now();
    let plan =
        tract_onnx::onnx().model_for_path(&case.path).and_then(|m| m.into_optimized()).and_then(|m| m.into_runnable());
    let plan = match plan {
        Ok(p) => p,
        Err(err) => {
            e.status = Status::NotAvailable;
            e.note = Some(format!("tract cannot load the model: {}", one_line(&err)));
            return (e, None);
        }
    };
    e.compile_ms = Some(ms(t0));
    let inputs: TractResult<TVec<TValue>> = case
        .inputs
        .iter()
        .map(|(_, t)| Ok(tract_onnx::prelude::Tensor::from_shape(t.shape(), &t.to_f32())?.into_tvalue()))
        .collect();
    let result = inputs.and_then(|inputs| {
        let mut state = plan.spawn()?;
        let out = state.run(inputs.clone())?;
        Ok((state, inputs, out))
    });
    let (state, inputs, out) = match result {
        Ok(r) => r,
        Err(err) => {
            e.status = Status::Error;
            e.note = Some(format!("tract: {}", one_line(&err)));
            return (e, None);
        }
    };
    let out: Result<Vec<(String, Values)>, String> = case
        .expected
        .iter()
        .zip(out.iter())
        .map(|((name, _), t)| {
            let data = t
                .try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
                .map_err(|err| format!("output {name}: {}", one_line(&err)))?;
            Ok((name.clone(), Values { shape: t.shape().to_vec(), data }))
        })
        .collect();
    if let Err(note) = out.and_then(|out| check(&mut e, &out, &case.expected, tolerance)) {
        e.status = Status::Mismatch;
        e.note = Some(note);
        return (e, None);
    }
    (e, Some(Box::new(TractSubject { executor, state, inputs })))
}

/// An error with its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}
