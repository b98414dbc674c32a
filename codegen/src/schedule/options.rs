//! Typed schedule options: the switches a caller may set on a backend's schedule
//! (`smelt run --schedule winograd=off,ukernels=avx2`), each `None` by default —
//! the backend's own choice for this host. Nothing in the library reads the
//! environment to change generated code: every such choice is a field here, passed
//! explicitly from the caller to [`super::Target::for_backend`] (CPU schedules) and
//! to `wgsl::Options::for_device` (shaders).

use std::fmt;
use smelt_ir::ops::MoeStrategy;

/// Which precompiled GEMM micro-kernels the GEMM tiles call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ukernels {
    /// Generated code computes the tile (Cranelift's own 4×8 f32x4 tile, LLVM's
    /// vector tile).
    Off,
    /// The best ISA of the host that has micro-kernels.
    Host,
    /// The AVX2 + FMA 6×16 micro-kernel.
    Avx2,
    /// The AVX-512 8×32 micro-kernel.
    Avx512,
}

/// Switches and overrides of a schedule. `None` (and `false` for `loop_opts`):
/// the backend's default on this host. [`ScheduleOptions::parse`] reads the
/// `key=value,…` form; [`ScheduleOptions::help`] lists the keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScheduleOptions {
    /// 3×3 unit-stride convs with constant weights as Winograd F(2×2, 3×3)
    /// (CPU backends; default on, except with Cranelift's own tile).
    pub winograd: Option<bool>,
    /// The Winograd tile's outputs per side: 2 (F(2×2, 3×3), default) or 4.
    pub winograd_tile: Option<usize>,
    /// GEMM tiles as calls of precompiled micro-kernels (default: the host's on
    /// Cranelift, off on LLVM; never in object files or libraries).
    pub ukernels: Option<Ukernels>,
    /// A computed row-major A read in place by the GEMM instead of packed (LLVM;
    /// default on).
    pub direct_a: Option<bool>,
    /// Convs with the output positions as the GEMM's rows (LLVM; default on).
    pub conv_rows: Option<bool>,
    /// Quantized products as the packed GEMM of i16 pairs (CPU; default on).
    pub quant_pairs: Option<bool>,
    /// The quantized GEMM as u8×s8 quads with `vpdpbusd` (LLVM; default on hosts
    /// with AVX512-VNNI).
    pub vnni: Option<bool>,
    /// The quantized GEMM on AMX-INT8 tiles by a precompiled micro-kernel (CPU;
    /// default on hosts with AMX; never in object files or libraries).
    pub amx: Option<bool>,
    /// LLVM's vector width in bits: 512 (AVX-512, 8×32 tile), 256 (AVX2, 6×16)
    /// or 128 (SSE, Cranelift's 4×8); default the widest the host has.
    pub vector_bits: Option<u32>,
    /// LLVM's own loop vectorizer, interleaver and unroller (default off: kernels
    /// arrive vectorized and tiled).
    pub loop_opts: bool,
    /// Threads LLVM compiles kernels on (default: the machine's, fewer for small
    /// models). It changes compile time only, not the code.
    pub compile_threads: Option<usize>,
    /// The WGSL tiled GEMM's workgroup tile: 64 or 128 (default chosen per GEMM).
    pub wgsl_tile: Option<u32>,
    /// f16 tensors as `array<f16>` on the GPU (default: when the adapter has
    /// `shader-f16` and converts exactly; off prints and runs the packed form).
    pub wgsl_f16: Option<bool>,
    /// Forces every `moe` layer's strategy (default: chosen per layer and token
    /// count by cost).
    pub moe: Option<MoeStrategy>,
    /// The GEMM's cache blocks on CPUs: depth of a packed panel (`KC`), rows of A
    /// per block (`MC`), columns per parallel block (`NC`), for every GEMM (default:
    /// a tuning file's entry for the GEMM's class, else the target's).
    pub kc: Option<usize>,
    pub mc: Option<usize>,
    pub nc: Option<usize>,
    /// Tuned choices by node class (`smelt tune`, `--tuning FILE`); not part of
    /// the `key=value` text form. Explicit keys above win over its entries.
    pub tuning: Option<std::sync::Arc<super::Tuning>>,
}

/// A key of the `key=value` form: its name, its values and what it does.
struct Key {
    name: &'static str,
    values: &'static str,
    what: &'static str,
}

const KEYS: &[Key] = &[
    Key { name: "winograd", values: "on|off", what: "3x3 unit-stride convs as Winograd F(2x2,3x3) (cpu; default on, off with cranelift's own tile)" },
    Key { name: "winograd-tile", values: "2|4", what: "Winograd F(2x2,3x3) or F(4x4,3x3): fewer multiplies, more rounding (cpu; default 2, 4 where tuned)" },
    Key { name: "ukernels", values: "on|off|avx2|avx512", what: "GEMM tiles as precompiled micro-kernel calls (default: host's on cranelift, off on llvm; never in objects/libraries)" },
    Key { name: "direct-a", values: "on|off", what: "computed row-major A read in place by the GEMM instead of packed (llvm; default on)" },
    Key { name: "conv-rows", values: "on|off", what: "convs with output positions as GEMM rows (llvm; default on)" },
    Key { name: "quant-pairs", values: "on|off", what: "quantized products as the packed GEMM of i16 pairs (cpu; default on)" },
    Key { name: "vnni", values: "on|off", what: "the packed quantized GEMM as u8xs8 quads: vpdpbusd with AVX512-VNNI, pmaddubsw on AVX2 for weights within +-64 (llvm; default on)" },
    Key { name: "amx", values: "on|off", what: "the packed quantized GEMM on AMX-INT8 tiles, a precompiled micro-kernel (cpu; default on hosts with AMX; never in objects/libraries)" },
    Key { name: "vector-bits", values: "512|256|128", what: "llvm's vector width and tile: 8x32 f32x16, 6x16 f32x8, 4x8 f32x4 (default: widest on the host)" },
    Key { name: "loop-opts", values: "on|off", what: "llvm's own loop vectorizer, interleaver and unroller (default off)" },
    Key { name: "compile-threads", values: "N", what: "threads llvm compiles on (default: the machine's; compile time only)" },
    Key { name: "wgsl-tile", values: "64|128", what: "the WGSL tiled GEMM's workgroup tile (default: per GEMM)" },
    Key { name: "wgsl-f16", values: "on|off", what: "f16 tensors as array<f16> on the GPU (default: when the adapter has shader-f16)" },
    Key { name: "kc", values: "N", what: "depth of the GEMM's packed panels, every GEMM (cpu; default: tuned per GEMM, else the target's)" },
    Key { name: "mc", values: "N", what: "rows of A per GEMM cache block (cpu; default: tuned per GEMM, else the target's)" },
    Key { name: "nc", values: "N", what: "columns per GEMM parallel block (cpu; default: tuned per GEMM, else the target's)" },
    Key { name: "moe", values: "dense|gather|loop", what: "every moe layer's strategy (default: the cheapest by cost for each token count)" },
];

/// A bad `--schedule` string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--schedule {0}")]
pub struct ParseError(pub String);

fn switch(key: &str, v: &str) -> Result<Option<bool>, ParseError> {
    match v {
        "on" | "true" | "1" | "yes" => Ok(Some(true)),
        "off" | "false" | "0" | "no" => Ok(Some(false)),
        "auto" | "default" => Ok(None),
        _ => Err(ParseError(format!("{key}={v}: expected on, off or auto"))),
    }
}

impl ScheduleOptions {
    /// Reads `key=value,key=value` (see [`ScheduleOptions::help`]); later keys
    /// override earlier ones, `auto` restores the default.
    pub fn parse(s: &str) -> Result<ScheduleOptions, ParseError> {
        let mut o = ScheduleOptions::default();
        o.apply(s)?;
        Ok(o)
    }

    /// Applies `key=value,…` on top of these options.
    pub fn apply(&mut self, s: &str) -> Result<(), ParseError> {
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| ParseError(format!("`{item}` is not KEY=VALUE (`--schedule help` lists the keys)")))?;
            let (k, v) = (k.trim(), v.trim().to_ascii_lowercase());
            let num = |what: &str| -> Result<Option<u64>, ParseError> {
                if v == "auto" || v == "default" {
                    return Ok(None);
                }
                v.parse::<u64>().map(Some).map_err(|_| ParseError(format!("{k}={v}: expected {what}")))
            };
            match k {
                "winograd" => self.winograd = switch(k, &v)?,
                "direct-a" => self.direct_a = switch(k, &v)?,
                "conv-rows" => self.conv_rows = switch(k, &v)?,
                "quant-pairs" => self.quant_pairs = switch(k, &v)?,
                "vnni" => self.vnni = switch(k, &v)?,
                "amx" => self.amx = switch(k, &v)?,
                "wgsl-f16" => self.wgsl_f16 = switch(k, &v)?,
                "loop-opts" => self.loop_opts = switch(k, &v)?.unwrap_or(false),
                "ukernels" => {
                    self.ukernels = match v.as_str() {
                        "avx2" => Some(Ukernels::Avx2),
                        "avx512" => Some(Ukernels::Avx512),
                        _ => switch(k, &v)
                            .map_err(|_| ParseError(format!("{k}={v}: expected on, off, avx2, avx512 or auto")))?
                            .map(|on| if on { Ukernels::Host } else { Ukernels::Off }),
                    }
                }
                "vector-bits" => {
                    self.vector_bits = match num("512, 256 or 128")? {
                        None => None,
                        Some(b @ (512 | 256 | 128)) => Some(b as u32),
                        Some(b) => return Err(ParseError(format!("{k}={b}: expected 512, 256 or 128"))),
                    }
                }
                "compile-threads" => {
                    self.compile_threads = match num("a thread count")? {
                        Some(0) => return Err(ParseError(format!("{k}=0: at least one thread"))),
                        n => n.map(|n| n as usize),
                    }
                }
                "winograd-tile" => {
                    self.winograd_tile = match num("2 or 4")? {
                        None => None,
                        Some(r @ (2 | 4)) => Some(r as usize),
                        Some(r) => return Err(ParseError(format!("{k}={r}: expected 2 or 4"))),
                    }
                }
                "kc" | "mc" | "nc" => {
                    let n = match num("a size")? {
                        Some(n @ 1..=65536) => Some(n as usize),
                        None => None,
                        Some(n) => return Err(ParseError(format!("{k}={n}: expected 1 to 65536"))),
                    };
                    match k {
                        "kc" => self.kc = n,
                        "mc" => self.mc = n,
                        _ => self.nc = n,
                    }
                }
                "moe" => {
                    self.moe = match MoeStrategy::from_name(&v) {
                        Some(MoeStrategy::Auto) => None,
                        Some(m) => Some(m),
                        None if v == "default" => None,
                        None => return Err(ParseError(format!("{k}={v}: expected dense, gather, loop or auto"))),
                    }
                }
                "wgsl-tile" => {
                    self.wgsl_tile = match num("64 or 128")? {
                        None => None,
                        Some(t @ (64 | 128)) => Some(t as u32),
                        Some(t) => return Err(ParseError(format!("{k}={t}: expected 64 or 128"))),
                    }
                }
                _ => {
                    let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
                    return Err(ParseError(format!("unknown key `{k}` (keys: {})", known.join(", "))));
                }
            }
        }
        Ok(())
    }

    /// The keys, their values and meanings, one per line (`--schedule help`).
    pub fn help() -> String {
        let mut s = String::from("schedule options (--schedule KEY=VALUE,...; `auto` is the default):\n");
        for k in KEYS {
            s.push_str(&format!("  {:<16} {:<20} {}\n", k.name, k.values, k.what));
        }
        s
    }

    /// Whether every option is the default.
    pub fn is_default(&self) -> bool {
        *self == ScheduleOptions::default()
    }
}

/// The `key=value,…` form of the options that are set (empty for the defaults);
/// [`ScheduleOptions::parse`] reads it back.
impl fmt::Display for ScheduleOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut parts: Vec<String> = Vec::new();
        let mut flag = |k: &str, v: Option<bool>| {
            if let Some(v) = v {
                parts.push(format!("{k}={}", on(v)));
            }
        };
        flag("winograd", self.winograd);
        flag("direct-a", self.direct_a);
        flag("conv-rows", self.conv_rows);
        flag("quant-pairs", self.quant_pairs);
        flag("vnni", self.vnni);
        flag("amx", self.amx);
        flag("wgsl-f16", self.wgsl_f16);
        if self.loop_opts {
            parts.push("loop-opts=on".into());
        }
        if let Some(u) = self.ukernels {
            let v = match u {
                Ukernels::Off => "off",
                Ukernels::Host => "on",
                Ukernels::Avx2 => "avx2",
                Ukernels::Avx512 => "avx512",
            };
            parts.push(format!("ukernels={v}"));
        }
        if let Some(b) = self.vector_bits {
            parts.push(format!("vector-bits={b}"));
        }
        if let Some(n) = self.compile_threads {
            parts.push(format!("compile-threads={n}"));
        }
        if let Some(t) = self.wgsl_tile {
            parts.push(format!("wgsl-tile={t}"));
        }
        if let Some(m) = self.moe {
            parts.push(format!("moe={}", m.name()));
        }
        for (k, v) in [("winograd-tile", self.winograd_tile), ("kc", self.kc), ("mc", self.mc), ("nc", self.nc)] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::{ScheduleOptions, Ukernels};

    #[test]
    fn parse_print_round_trip_and_errors() {
        let o = ScheduleOptions::parse("winograd=off, ukernels=avx2,vector-bits=256,loop-opts=on,wgsl-tile=128,compile-threads=3,moe=gather,kc=384,nc=1024,winograd-tile=4").unwrap();
        assert_eq!(o.moe, Some(smelt_ir::ops::MoeStrategy::Gather));
        assert_eq!(o.winograd, Some(false));
        assert_eq!(o.ukernels, Some(Ukernels::Avx2));
        assert_eq!(o.vector_bits, Some(256));
        assert_eq!((o.kc, o.mc, o.nc), (Some(384), None, Some(1024)));
        assert!(o.loop_opts);
        assert_eq!(ScheduleOptions::parse(&o.to_string()).unwrap(), o);
        assert_eq!(ScheduleOptions::parse("").unwrap(), ScheduleOptions::default());
        assert_eq!(ScheduleOptions::parse("winograd=off,winograd=auto").unwrap(), ScheduleOptions::default());
        for bad in ["winograd", "winograd=maybe", "vector-bits=100", "wgsl-tile=32", "compile-threads=0", "tile=3", "ukernels=sse", "moe=sorted", "kc=0", "mc=x", "winograd-tile=3"] {
            let e = ScheduleOptions::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("--schedule "), "{bad}: {e}");
        }
        assert!(ScheduleOptions::parse("tile=3").unwrap_err().to_string().contains("keys: winograd, winograd-tile, ukernels"));
        assert!(ScheduleOptions::help().lines().count() > 10);
    }
}
