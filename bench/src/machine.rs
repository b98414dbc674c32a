//! What machine a run was made on, from /proc and /etc/os-release (Linux; elsewhere
//! the fields say "unknown"), and its peaks as smelt's probe measures them.

use crate::report::Machine;

/// The CPU model, its vector features, the cores, the OS and the current load.
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let mut cpu = field("model name").unwrap_or_else(|| "unknown CPU".into());
    if let Some(flags) = field("flags") {
        let have: Vec<&str> =
            ["avx2", "fma", "avx512f"].into_iter().filter(|f| flags.split_whitespace().any(|x| x == *f)).collect();
        if !have.is_empty() {
            cpu = format!("{cpu}, {}", have.join("+"));
        }
    }
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()));
    // The peaks of one core, probed before anything else runs.
    let peak = smelt_engine::probe::fma_peak(0.5);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        os,
        load,
        peak_gflops: (peak > 0.0).then_some(peak),
        int8_gops: smelt_engine::probe::vnni_peak(0.5),
        bandwidth_gbs: Some(smelt_engine::probe::read_bandwidth()),
    }
}
