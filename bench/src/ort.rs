//! ONNX Runtime as a subject of [`crate::measure::interleave`]: a Python worker
//! (`scripts/bench/ort_bench.py serve MODELS`) that holds one session at a time and
//! answers one JSON line per request — `{"op": "open", "model", "threads"}` →
//! `{"ok", "compile_ms"}`, `{"op": "run"}` → `{"ok", "ms"}` (timed inside Python, so
//! the pipe is not counted). Its inputs are the seeded ones of the reference outputs.

use crate::measure::{Prepped, Subject};
use crate::report::{Entry, Status};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The running worker.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// onnxruntime's version, as the worker reports it.
    pub version: String,
}

impl Worker {
    /// Starts `PYTHON SCRIPT serve MODELS`; waits for its greeting.
    pub fn spawn(python: &Path, script: &Path, models: &Path) -> Result<Worker, String> {
        let mut child = Command::new(python)
            .arg(script)
            .arg("serve")
            .arg(models)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {} {}: {e}", python.display(), script.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("the worker has no stdout")?);
        let mut w = Worker { child, stdin, stdout, version: String::new() };
        let hello = w.read()?;
        w.version = hello["version"].as_str().unwrap_or("?").to_string();
        Ok(w)
    }

    fn read(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err("the ONNX Runtime worker exited".into()),
            Ok(_) => {
                let v: Value =
                    serde_json::from_str(&line).map_err(|e| format!("bad reply from the worker ({e}): {line}"))?;
                if v["ok"] == json!(true) {
                    Ok(v)
                } else {
                    Err(format!("onnxruntime: {}", v["error"].as_str().unwrap_or("failed")))
                }
            }
            Err(e) => Err(format!("reading from the ONNX Runtime worker: {e}")),
        }
    }

    fn request(&mut self, req: Value) -> Result<Value, String> {
        let stdin = self.stdin.as_mut().ok_or("the worker is closed")?;
        writeln!(stdin, "{req}").and_then(|()| stdin.flush()).map_err(|e| format!("writing to the worker: {e}"))?;
        self.read()
    }

    /// A session for `model` at `threads`: its creation time is the compile time.
    pub fn subject(&mut self, model: &str, threads: usize) -> Prepped<'_> {
        let mut e = Entry::new(model, "onnxruntime", threads, Status::Ok);
        match self.request(json!({"op": "open", "model": model, "threads": threads})) {
            Ok(v) => {
                e.compile_ms = v["compile_ms"].as_f64();
                (e, Some(Box::new(OrtSubject { worker: self })))
            }
            Err(msg) => {
                e.status = Status::Error;
                e.note = Some(msg);
                (e, None)
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // End of input: the worker exits.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

struct OrtSubject<'a> {
    worker: &'a mut Worker,
}

impl Subject for OrtSubject<'_> {
    fn once(&mut self) -> Result<f64, String> {
        let v = self.worker.request(json!({"op": "run"}))?;
        v["ms"].as_f64().ok_or_else(|| format!("no time in the worker's reply {v}"))
    }
}
