//! The tuning database: a JSON file of tuned schedules, one entry per machine
//! (CPU brand string and ISA features), backend and thread count, each with the
//! machine's measured peak and the choices by node class. `smelt tune` writes
//! it; compilation reads the entry of its host ([`TuningDb::tuning_for`]).
//!
//! A file that is unreadable, not valid, written by another smelt (format or
//! schedule version) or that holds nothing for this CPU is ignored with a
//! one-line warning ([`Loaded::warning`]): it never fails a compilation and
//! never reaches code generation. Files are written whole (to a temporary file
//! renamed over the old one), never half.

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use smelt_codegen::probe::Host;
use smelt_codegen::schedule::{Calibration, Choice, ConvMethod, Tuning};
use std::collections::BTreeMap;
use std::path::Path;

/// The version of the file's layout.
pub const FORMAT: u32 = 1;

/// The version of what entries mean: the class keys and the choices. Raised when
/// either changes, so that older files are ignored rather than misread.
pub const SCHEDULE_VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TuningDb {
    pub format: u32,
    pub schedule: u32,
    /// The smelt that wrote it (`CARGO_PKG_VERSION`).
    pub smelt: String,
    pub entries: Vec<Entry>,
}

impl Default for TuningDb {
    fn default() -> TuningDb {
        TuningDb { format: FORMAT, schedule: SCHEDULE_VERSION, smelt: env!("CARGO_PKG_VERSION").into(), entries: vec![] }
    }
}

/// The tuned schedule of one machine, backend and thread count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub cpu: String,
    pub features: String,
    /// `cranelift` or `llvm`.
    pub backend: String,
    pub threads: usize,
    /// The f32 FMA peak of one core, GFLOP/s (measured by `smelt tune`).
    #[serde(default)]
    pub peak_gflops: f64,
    /// The read bandwidth of one core, GB/s.
    #[serde(default)]
    pub bandwidth_gbs: f64,
    /// The backend's own rates on one core: a GEMM's GFLOP/s, an elementwise
    /// stream's GB/s, one tiny kernel call's µs (the cost models' calibration).
    #[serde(default)]
    pub gemm_gflops: f64,
    #[serde(default)]
    pub stream_gbs: f64,
    #[serde(default)]
    pub launch_us: f64,
    /// Choices by node class key.
    pub classes: BTreeMap<String, EntryChoice>,
}

/// A [`Choice`] as the file spells it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EntryChoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kc: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mc: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nc: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<bool>,
}

impl EntryChoice {
    pub fn from_choice(c: &Choice) -> EntryChoice {
        EntryChoice { conv: c.conv.map(|m| m.name().to_string()), kc: c.kc, mc: c.mc, nc: c.nc, serial: c.serial }
    }

    /// The choice, or what is wrong with it.
    pub fn choice(&self) -> std::result::Result<Choice, String> {
        let conv = match &self.conv {
            None => None,
            Some(s) => Some(ConvMethod::from_name(s).ok_or_else(|| format!("unknown conv method `{s}`"))?),
        };
        for (k, v) in [("kc", self.kc), ("mc", self.mc), ("nc", self.nc)] {
            if let Some(v) = v
                && !(1..=65536).contains(&v)
            {
                return Err(format!("{k} = {v} is out of range"));
            }
        }
        Ok(Choice { conv, kc: self.kc, mc: self.mc, nc: self.nc, serial: self.serial })
    }
}

/// A file as read: the database (empty when the file was ignored) and the
/// warning to show, if any.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub db: TuningDb,
    pub warning: Option<String>,
}

impl TuningDb {
    /// Reads `path`. A missing file is an empty database without a warning;
    /// any other problem is an empty database with one.
    pub fn load(path: &Path) -> Loaded {
        let ignored = |why: String| Loaded { db: TuningDb::default(), warning: Some(format!("ignoring tuning file {}: {why}", path.display())) };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::default(),
            Err(e) => return ignored(e.to_string()),
        };
        let db: TuningDb = match serde_json::from_str(&text) {
            Ok(db) => db,
            Err(e) => return ignored(format!("not a smelt tuning file ({e})")),
        };
        if db.format != FORMAT || db.schedule != SCHEDULE_VERSION {
            return ignored(format!(
                "written by smelt {} (format {}, schedule {}; this smelt reads {FORMAT}, {SCHEDULE_VERSION}): run `smelt tune` again",
                db.smelt, db.format, db.schedule
            ));
        }
        for e in &db.entries {
            for (k, c) in &e.classes {
                if let Err(why) = c.choice() {
                    return ignored(format!("class `{k}`: {why}"));
                }
            }
        }
        Loaded { db, warning: None }
    }

    /// Writes the file whole: a temporary file beside it, renamed over it.
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |what: &str, e: std::io::Error| Error::text(ErrorKind::Io, format!("error: cannot {what} {}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::text(ErrorKind::Internal, format!("error: tuning file: {e}")))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text + "\n").map_err(|e| io("write", e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("write", e)
        })
    }

    /// The entries of `host`: same CPU and features.
    fn of_host<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.cpu == host.cpu && e.features == host.features)
    }

    /// The entry for `host`, `backend` and `threads`: that thread count's, else
    /// the nearest one tuned for the backend (blocks and conv methods carry
    /// over; threads change the split, which the GEMM still chooses itself).
    pub fn entry<'a>(&'a self, host: &'a Host, backend: &str, threads: usize) -> Option<&'a Entry> {
        self.of_host(host).filter(|e| e.backend == backend).min_by_key(|e| e.threads.abs_diff(threads))
    }

    /// The tuning of `host`, `backend` and `threads` (see [`TuningDb::entry`]),
    /// and a warning when the file has entries but none for this CPU.
    pub fn tuning_for(&self, host: &Host, backend: &str, threads: usize) -> (Option<Tuning>, Option<String>) {
        let Some(e) = self.entry(host, backend, threads) else {
            if self.of_host(host).next().is_none() && !self.entries.is_empty() {
                let cpus: Vec<&str> = self.entries.iter().map(|e| e.cpu.as_str()).collect();
                return (None, Some(format!("the tuning file has no entry for this CPU ({}); it has {}", host.cpu, cpus.join(", "))));
            }
            return (None, None);
        };
        let choices = e.classes.iter().filter_map(|(k, c)| Some((k.clone(), c.choice().ok()?))).collect();
        let calibration = (e.gemm_gflops > 0.0 && e.stream_gbs > 0.0).then(|| Calibration {
            gemm_mflops: (e.gemm_gflops * 1e3) as u64,
            stream_mbs: (e.stream_gbs * 1e3) as u64,
            launch_ns: (e.launch_us.max(0.0) * 1e3) as u64,
        });
        (Some(Tuning { choices, calibration }), None)
    }

    /// The tuning of this host for `backend` on `threads` threads from the file
    /// at `path` (see [`TuningDb::tuning_for`]), and the one-line warnings to
    /// show: the file's own, or that it holds nothing for this CPU.
    pub fn read_for_host(path: &Path, backend: &str, threads: usize) -> (Option<Tuning>, Vec<String>) {
        let loaded = TuningDb::load(path);
        let (tuning, warning) = loaded.db.tuning_for(&Host::detect(), backend, threads.max(1));
        (tuning, loaded.warning.into_iter().chain(warning).collect())
    }

    /// Adds `entry`: into the entry of the same machine, backend and threads if
    /// there is one — its classes over theirs (other models' classes stay), its
    /// rates replacing theirs — else as a new one.
    pub fn upsert(&mut self, mut entry: Entry) {
        let same = |e: &Entry| e.cpu == entry.cpu && e.features == entry.features && e.backend == entry.backend && e.threads == entry.threads;
        if let Some(old) = self.entries.iter().position(same) {
            let mut classes = std::mem::take(&mut self.entries[old].classes);
            classes.append(&mut entry.classes);
            entry.classes = classes;
            self.entries.remove(old);
        }
        self.entries.push(entry);
        *self = TuningDb { entries: std::mem::take(&mut self.entries), ..TuningDb::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host { cpu: "Test CPU 9000".into(), features: "avx2,fma".into() }
    }

    fn entry(threads: usize, kc: usize) -> Entry {
        Entry {
            cpu: host().cpu,
            features: host().features,
            backend: "llvm".into(),
            threads,
            peak_gflops: 100.0,
            bandwidth_gbs: 10.0,
            gemm_gflops: 50.0,
            stream_gbs: 8.0,
            launch_us: 0.05,
            classes: BTreeMap::from([("matmul f32[8,8] const f32[8,8]".into(), EntryChoice { kc: Some(kc), ..Default::default() })]),
        }
    }

    #[test]
    fn round_trip_nearest_threads_and_replacement() {
        let dir = std::env::temp_dir().join(format!("smelt-db-{}", std::process::id()));
        let path = dir.join("sub").join("tuning.json");
        let mut db = TuningDb::default();
        db.upsert(entry(1, 128));
        db.upsert(entry(2, 256));
        db.upsert(entry(1, 384));
        // Another model's class joins the entry; the first model's stays.
        let mut other = entry(1, 64);
        other.classes = BTreeMap::from([("conv f32[1,8,9,9] const f32[4,8,3,3]".into(), EntryChoice { conv: Some("rows".into()), ..Default::default() })]);
        db.upsert(other);
        db.save(&path).unwrap();
        let l = TuningDb::load(&path);
        assert!(l.warning.is_none(), "{:?}", l.warning);
        assert_eq!(l.db.entries.len(), 2);
        let (t, w) = l.db.tuning_for(&host(), "llvm", 1);
        assert!(w.is_none());
        let t = t.unwrap();
        assert_eq!(t.choices.len(), 2, "{t:?}");
        assert_eq!(t.choices["matmul f32[8,8] const f32[8,8]"].kc, Some(384));
        assert_eq!(t.calibration, Some(Calibration { gemm_mflops: 50_000, stream_mbs: 8_000, launch_ns: 50 }));
        assert_eq!(l.db.entry(&host(), "llvm", 4).unwrap().threads, 2);
        assert!(l.db.entry(&host(), "cranelift", 1).is_none());
        let other = Host { cpu: "Other".into(), ..host() };
        let (t, w) = l.db.tuning_for(&other, "llvm", 1);
        assert!(t.is_none() && w.unwrap().contains("no entry for this CPU (Other)"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_ignored_with_one_line() {
        let dir = std::env::temp_dir().join(format!("smelt-db-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(TuningDb::load(&dir.join("missing.json")).warning.is_none());
        let old = TuningDb { schedule: 0, smelt: "0.0.1".into(), ..TuningDb::default() };
        let bad_choice = {
            let mut db = TuningDb::default();
            let mut e = entry(1, 64);
            e.classes.values_mut().for_each(|c| c.conv = Some("fft".into()));
            db.entries.push(e);
            db
        };
        let cases = [
            ("{ not json", "not a smelt tuning file".to_string()),
            ("[1, 2]", "not a smelt tuning file".to_string()),
            (&serde_json::to_string(&old).unwrap(), "written by smelt 0.0.1".to_string()),
            (&serde_json::to_string(&bad_choice).unwrap(), "unknown conv method `fft`".to_string()),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let p = dir.join(format!("t{i}.json"));
            std::fs::write(&p, text).unwrap();
            let l = TuningDb::load(&p);
            let w = l.warning.expect("a warning");
            assert!(w.contains(want.as_str()) && !w.contains('\n'), "{w}");
            assert!(l.db.entries.is_empty());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
