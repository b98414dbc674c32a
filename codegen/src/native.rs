//! Calling JIT-compiled kernels: the module of smelt that binds raw code to data
//! pointers, for every native backend (Cranelift's JIT and LLVM's MCJIT hand their
//! entry points and an owner that keeps the code alive to [`JitCode::new`]).
//!
//! Safety rests on three facts, each checked or guaranteed here or by codegen:
//! 1. A kernel touches only elements `0..len` of each buffer it declares (lowering
//!    computes every index from the shapes it was given, and [`JitCode::bind`]
//!    checks that each place holds at least the declared bytes).
//! 2. Buffers a kernel writes are in the arena, borrowed mutably for the life of
//!    the [`Call`], and overlap no other buffer of the call (checked by `bind`).
//! 3. Iterations of a kernel's parallel loop write disjoint elements (lowering
//!    only marks such loops parallel), so one [`Call`] may run ranges of it on
//!    several threads at once.
#![allow(unsafe_code)]

use crate::Error;
use crate::kernel::{Buffer, Kernel};
use std::marker::PhantomData;

/// The machine-code signature of every kernel.
type KernelFn = extern "C" fn(*const *mut u8, i64, i64);

/// One compiled kernel: its entry point and what it expects.
#[derive(Debug)]
struct Entry {
    name: String,
    code: *const u8,
    extent: u64,
    buffers: Vec<Buffer>,
}

/// Whatever keeps a backend's machine code alive: the code is freed when the owner
/// is dropped (after every entry point, see [`JitCode`]'s `Drop`).
pub(crate) type Owner = Box<dyn std::any::Any>;

/// Executable code for a list of kernels. Dropping it frees the code.
pub struct JitCode {
    owner: Option<Owner>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for JitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitCode").field("kernels", &self.entries.iter().map(|e| &e.name).collect::<Vec<_>>()).finish()
    }
}

// SAFETY: the code is immutable once finalized and the entries are plain data; the
// owner (a JIT module or execution engine) is only touched again when it is dropped.
unsafe impl Send for JitCode {}
// SAFETY: as above; nothing reachable through `&JitCode` mutates.
unsafe impl Sync for JitCode {}

impl JitCode {
    /// Code for `kernels`, kernel `i` at `code[i]`.
    ///
    /// # Safety
    /// Each `code[i]` must be the entry of a finalized function with the kernel
    /// signature `extern "C" fn(*const *mut u8, i64, i64)` compiled from
    /// `kernels[i]` (so it touches only the buffers and elements `kernels[i]`
    /// declares), and stay executable until `owner` is dropped.
    pub(crate) unsafe fn new(owner: Owner, code: &[*const u8], kernels: &[Kernel]) -> JitCode {
        assert_eq!(code.len(), kernels.len(), "one entry point per kernel");
        let entries = code
            .iter()
            .zip(kernels)
            .map(|(&code, k)| Entry { name: k.name.clone(), code, extent: k.parallel_extent(), buffers: k.buffers.clone() })
            .collect();
        JitCode { owner: Some(owner), entries }
    }

    /// The code for `kernels` when kernel `i` is the same, name apart, as the one
    /// compiled at index `of[i]` of `self` (see [`crate::jit`]): entries share code.
    pub(crate) fn shared_by(mut self, kernels: &[Kernel], of: &[usize]) -> JitCode {
        assert_eq!(kernels.len(), of.len(), "one compiled kernel per kernel");
        let entries = kernels
            .iter()
            .zip(of)
            .map(|(k, &u)| {
                let e = &self.entries[u];
                debug_assert!(e.buffers == k.buffers, "kernel {} shares code with {} but not its buffers", k.name, e.name);
                Entry { name: k.name.clone(), code: e.code, extent: e.extent, buffers: e.buffers.clone() }
            })
            .collect();
        self.entries = entries;
        self
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parallel extent of kernel `k` (see [`Kernel::parallel_extent`]).
    pub fn extent(&self, k: usize) -> u64 {
        self.entries[k].extent
    }

    /// Binds kernel `k` to its buffers: `places[i]` holds buffer `i`. Checks sizes,
    /// bounds, that written buffers are in the arena, and that they overlap nothing
    /// else of the call.
    pub fn bind<'a>(&'a self, k: usize, arena: &'a mut Arena, places: &[Place<'a>]) -> Result<Call<'a>, Error> {
        let e = self.entries.get(k).ok_or_else(|| Error::Run(format!("no kernel {k}")))?;
        let bad = |m: String| Error::Run(format!("kernel {}: {m}", e.name));
        if places.len() != e.buffers.len() {
            return Err(bad(format!("{} buffers given, {} declared", places.len(), e.buffers.len())));
        }
        let total = arena.len();
        let base = arena.mem.as_mut_ptr() as *mut u8;
        let mut ptrs = Vec::with_capacity(places.len());
        let mut ranges: Vec<(usize, usize, bool)> = vec![];
        for (b, p) in e.buffers.iter().zip(places) {
            let need = usize::try_from(b.bytes()).map_err(|_| bad(format!("%{} is too large", b.name)))?;
            match *p {
                Place::Arena { offset, bytes } => {
                    if bytes < need || offset.checked_add(bytes).is_none_or(|end| end > total) {
                        return Err(bad(format!("%{} needs {need} bytes at {offset}, the arena has {total}", b.name)));
                    }
                    ranges.push((offset, offset + need, b.access.writes()));
                    // SAFETY: offset + need ≤ the arena's length (checked above).
                    ptrs.push(unsafe { base.add(offset) });
                }
                Place::Const(bytes) => {
                    if b.access.writes() {
                        return Err(bad(format!("%{} is written but given a constant", b.name)));
                    }
                    if bytes.len() < need {
                        return Err(bad(format!("%{} needs {need} bytes, the constant has {}", b.name, bytes.len())));
                    }
                    ptrs.push(bytes.as_ptr() as *mut u8);
                }
            }
        }
        for (i, a) in ranges.iter().enumerate() {
            for c in &ranges[i + 1..] {
                let overlap = a.0 < c.1 && c.0 < a.1;
                if overlap && (a.2 || c.2) {
                    return Err(bad("a written buffer overlaps another buffer".into()));
                }
            }
        }
        // SAFETY: `code` is the finalized entry of a function with the `KernelFn`
        // signature (the contract of `JitCode::new`), alive as long as `self`.
        let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(e.code) };
        Ok(Call { f, ptrs, extent: e.extent, _borrow: PhantomData })
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        // The code pointers live only in `self.entries` and in `Call`s, which borrow
        // `self`: none outlives this drop, so the owner may free the code now.
        self.entries.clear();
        drop(self.owner.take());
    }
}

/// Owns a Cranelift JIT module and frees its code when dropped.
pub(crate) struct ClifOwner(pub(crate) Option<cranelift_jit::JITModule>);

impl Drop for ClifOwner {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            // SAFETY: a `ClifOwner` is only ever the owner of a `JitCode`, dropped
            // after the entries that point into the module's code (see above).
            unsafe { m.free_memory() };
        }
    }
}

/// A kernel bound to its buffers, ready to run (on several threads at once for
/// disjoint ranges of its parallel loop).
pub struct Call<'a> {
    f: KernelFn,
    ptrs: Vec<*mut u8>,
    extent: u64,
    _borrow: PhantomData<&'a mut Arena>,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Call({} buffers, extent {})", self.ptrs.len(), self.extent)
    }
}

// SAFETY: see fact 3 of the module doc: concurrent runs of one call cover disjoint
// iterations of the parallel loop, which write disjoint memory.
unsafe impl Sync for Call<'_> {}
// SAFETY: the pointers are only dereferenced by kernel code; a call may move to
// another thread while the borrows it holds stay valid.
unsafe impl Send for Call<'_> {}

impl Call<'_> {
    /// The trip count of the kernel's parallel loop (1 without one).
    pub fn extent(&self) -> u64 {
        self.extent
    }

    /// Runs iterations `lo..hi` of the parallel loop (clamped to the extent); a
    /// kernel without a parallel loop runs whole for any non-empty range.
    pub fn run(&self, lo: u64, hi: u64) {
        let hi = hi.min(self.extent);
        if lo >= hi {
            return;
        }
        clean_upper_vector_state();
        (self.f)(self.ptrs.as_ptr(), lo as i64, hi as i64);
    }
}

/// Clears the upper halves of the AVX registers (`vzeroupper`) before a kernel runs.
///
/// Code elsewhere in the process (tract's assembly kernels do this) may return with
/// them dirty; legacy-SSE instructions, which Cranelift still emits for part of its
/// 128-bit vector code, then run at about half speed (measured: a Cranelift 512³
/// MatMul took 12.9 ms instead of 6.3 ms after tract had run in the same process).
/// Compilers put `vzeroupper` at the boundaries of AVX code for this reason; JIT
/// code is entered from Rust, so the caller does it. It costs a cycle or so.
#[inline]
fn clean_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked above); `vzeroupper` only zeroes bits
        // 128.. of the vector registers, all of which `clobber_abi("C")` declares
        // clobbered (as the kernel call right after it does anyway).
        unsafe { std::arch::asm!("vzeroupper", clobber_abi("C"), options(nomem, nostack, preserves_flags)) }
    }
}

/// Where one buffer of a call lives.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// `bytes` bytes of the arena from `offset`.
    Arena { offset: usize, bytes: usize },
    /// Read-only memory outside the arena (weights, packed constants).
    Const(&'a [u8]),
}

/// One cache line: the unit of [`Arena`] and [`ConstBytes`], so that both start
/// on a 64-byte boundary (AMX tile rows and AVX-512 vectors then never straddle
/// two lines; a tile load of misaligned rows runs at half speed).
#[repr(C, align(64))]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Line([u8; 64]);

const LINE: usize = std::mem::size_of::<Line>();

/// The memory kernels compute in: bytes aligned to a cache line.
#[derive(Clone, Default)]
pub struct Arena {
    mem: Vec<Line>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({} bytes)", self.len())
    }
}

impl Arena {
    /// Zeroed memory of at least `bytes` bytes.
    pub fn new(bytes: usize) -> Arena {
        Arena { mem: vec![Line([0; LINE]); bytes.div_ceil(LINE)] }
    }

    pub fn len(&self) -> usize {
        self.mem.len() * LINE
    }

    pub fn is_empty(&self) -> bool {
        self.mem.is_empty()
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: a `Vec<Line>` is `len * 64` initialized bytes; u8 has no alignment.
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr() as *const u8, self.len()) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, borrowed uniquely through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.mem.as_mut_ptr() as *mut u8, self.len()) }
    }
}

/// Read-only bytes, the constants of a program (`lower::BufKind::Const`):
/// made at compile time (packed or transformed weights), copied to start on a
/// cache line; or a graph's weight itself, shared without a copy (its elements
/// aligned, as every kernel's loads are). Derefs to `[u8]`.
#[derive(Clone)]
pub struct ConstBytes(Repr);

#[derive(Clone)]
enum Repr {
    Lines { mem: Vec<Line>, len: usize },
    Tensor(std::sync::Arc<smelt_ir::Tensor>),
}

impl ConstBytes {
    pub fn new(bytes: &[u8]) -> ConstBytes {
        let mut mem = vec![Line([0; LINE]); bytes.len().div_ceil(LINE)];
        for (line, chunk) in mem.iter_mut().zip(bytes.chunks(LINE)) {
            line.0[..chunk.len()].copy_from_slice(chunk);
        }
        ConstBytes(Repr::Lines { mem, len: bytes.len() })
    }

    /// The little-endian bytes of `v`, without an intermediate copy.
    pub fn from_f32(v: &[f32]) -> ConstBytes {
        let len = std::mem::size_of_val(v);
        let mut mem = vec![Line([0; LINE]); len.div_ceil(LINE)];
        for (line, chunk) in mem.iter_mut().zip(v.chunks(LINE / 4)) {
            for (i, x) in chunk.iter().enumerate() {
                line.0[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
            }
        }
        ConstBytes(Repr::Lines { mem, len })
    }

    /// A tensor's little-endian bytes, shared without a copy where its storage
    /// is them ([`tensor_bytes`]), else copied.
    pub fn shared(t: std::sync::Arc<smelt_ir::Tensor>) -> ConstBytes {
        match tensor_bytes(&t) {
            Some(_) => ConstBytes(Repr::Tensor(t)),
            None => ConstBytes::new(&t.data().to_le_bytes()),
        }
    }
}

/// The little-endian bytes of a tensor's elements, where its storage is them
/// (f32, i32, i64, i8, u8 on a little-endian host).
pub fn tensor_bytes(t: &smelt_ir::Tensor) -> Option<&[u8]> {
    use smelt_ir::Data;
    if cfg!(target_endian = "big") {
        return None;
    }
    Some(match t.data() {
        Data::F32(v) => bytemuck::cast_slice(v),
        Data::I32(v) => bytemuck::cast_slice(v),
        Data::I64(v) => bytemuck::cast_slice(v),
        Data::I8(v) => bytemuck::cast_slice(v),
        Data::U8(v) => v,
        _ => return None,
    })
}

impl std::ops::Deref for ConstBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            // SAFETY: `mem` holds `len.div_ceil(64) * 64` ≥ `len` initialized bytes.
            Repr::Lines { mem, len } => unsafe { std::slice::from_raw_parts(mem.as_ptr() as *const u8, *len) },
            Repr::Tensor(t) => tensor_bytes(t).expect("shared only where the storage is the bytes"),
        }
    }
}

impl PartialEq for ConstBytes {
    fn eq(&self, other: &ConstBytes) -> bool {
        **self == **other
    }
}

impl Eq for ConstBytes {}

impl std::fmt::Debug for ConstBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConstBytes({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared tensor reads as its little-endian bytes, whatever its dtype.
    #[test]
    fn shared_tensors_are_their_bytes() {
        use smelt_ir::{Data, Tensor};
        let datas = [
            Data::F32(vec![1.5, -2.0, f32::NAN]),
            Data::from_f32(smelt_ir::DType::F16, &[0.5, -1.0, 2.0]),
            Data::I8(vec![-1, 2, -128]),
            Data::I64(vec![-5, 1 << 40, 7]),
            Data::Bool(vec![true, false, true]),
        ];
        for d in datas {
            let t = Tensor::new(vec![3], d).unwrap();
            let want = t.data().to_le_bytes();
            let c = ConstBytes::shared(std::sync::Arc::new(t));
            assert_eq!(&c[..], &want[..]);
            assert_eq!(c, ConstBytes::new(&want));
        }
        let v = [1.0f32, -0.0, 3.25, f32::INFINITY, 7.0];
        assert_eq!(&ConstBytes::from_f32(&v)[..], &Data::F32(v.to_vec()).to_le_bytes()[..]);
    }

    /// Arenas and constants start on a cache line (module doc of `Line`), and
    /// constants keep their bytes and length.
    #[test]
    fn memory_is_line_aligned() {
        let a = Arena::new(100);
        assert!((a.bytes().as_ptr() as usize).is_multiple_of(64));
        assert_eq!(a.len(), 128);
        for n in [0usize, 1, 63, 64, 65, 1000] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let c = ConstBytes::new(&v);
            assert_eq!(&c[..], &v[..]);
            assert!(n == 0 || (c.as_ptr() as usize).is_multiple_of(64), "{n} bytes");
        }
    }
}
