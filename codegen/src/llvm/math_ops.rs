//! [`MathOps`] over the LLVM emitter: the transcendentals of [`crate::math`] emitted
//! inline for f32 scalars or vectors of any width. The trait's operations cannot
//! fail, so the first builder error is kept and reported by [`LlvmMath::finish`].

use super::emit::{Emitter, V};
use crate::kernel::{Lit, Scalar, Ty};
use crate::math::MathOps;
use inkwell::FloatPredicate;
use inkwell::values::InstructionOpcode as Op;

/// Emits math for one lane count.
pub(super) struct LlvmMath<'e, 'a, 'ctx> {
    e: &'e mut Emitter<'a, 'ctx>,
    lanes: u32,
    err: Option<String>,
    /// A placeholder returned after an error (never reaches the module's code).
    dummy: V<'ctx>,
}

impl<'e, 'a, 'ctx> LlvmMath<'e, 'a, 'ctx> {
    pub(super) fn new(e: &'e mut Emitter<'a, 'ctx>, lanes: u32) -> LlvmMath<'e, 'a, 'ctx> {
        let dummy = e.cx.f32_type().const_zero().into();
        LlvmMath { e, lanes, err: None, dummy }
    }

    /// The result, or the first error met while emitting it.
    pub(super) fn finish(self, r: V<'ctx>) -> Result<V<'ctx>, String> {
        match self.err {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }

    fn keep(&mut self, r: Result<V<'ctx>, String>) -> V<'ctx> {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.err.get_or_insert(e);
                self.dummy
            }
        }
    }

    fn bin(&mut self, op: Op, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        if self.err.is_some() {
            return self.dummy;
        }
        let r = self.e.binop(op, a, b);
        self.keep(r)
    }

    fn f(&self) -> Ty {
        Ty::vec(Scalar::F32, self.lanes)
    }

    fn i(&self) -> Ty {
        Ty::vec(Scalar::I32, self.lanes)
    }

    fn un(&mut self, name: &str, a: V<'ctx>) -> V<'ctx> {
        if self.err.is_some() {
            return self.dummy;
        }
        let r = self.e.intrinsic1(name, a);
        self.keep(r)
    }

    fn fcmp(&mut self, p: FloatPredicate, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        if self.err.is_some() {
            return self.dummy;
        }
        let r = self.e.fcmp(p, a, b);
        self.keep(r)
    }

    fn cast(&mut self, op: Op, a: V<'ctx>, t: Ty) -> V<'ctx> {
        if self.err.is_some() {
            return self.dummy;
        }
        let tt = super::emit::llvm_type(self.e.cx, t);
        let r = super::emit::ok(self.e.b.build_cast(op, a, tt, "cv"));
        self.keep(r)
    }
}

impl<'ctx> MathOps for LlvmMath<'_, '_, 'ctx> {
    type F = V<'ctx>;
    type I = V<'ctx>;
    type M = V<'ctx>;

    fn fconst(&mut self, c: f32) -> V<'ctx> {
        let r = self.e.konst(self.f(), Lit::F32(c));
        self.keep(r)
    }
    fn iconst(&mut self, c: i32) -> V<'ctx> {
        let r = self.e.konst(self.i(), Lit::Int(c as i64, Scalar::I32));
        self.keep(r)
    }
    fn fadd(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::FAdd, a, b)
    }
    fn fsub(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::FSub, a, b)
    }
    fn fmul(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::FMul, a, b)
    }
    fn fdiv(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::FDiv, a, b)
    }
    fn fma(&mut self, a: V<'ctx>, b: V<'ctx>, c: V<'ctx>) -> V<'ctx> {
        if self.err.is_some() {
            return self.dummy;
        }
        let r = self.e.intrinsic("llvm.fma", &[a.get_type()], &[a, b, c]);
        self.keep(r)
    }
    fn fneg(&mut self, a: V<'ctx>) -> V<'ctx> {
        let r = self.e.fneg(a);
        self.keep(r)
    }
    fn fabs(&mut self, a: V<'ctx>) -> V<'ctx> {
        self.un("llvm.fabs", a)
    }
    fn floor(&mut self, a: V<'ctx>) -> V<'ctx> {
        self.un("llvm.floor", a)
    }
    fn fmin(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        let m = self.flt(a, b);
        self.select(m, a, b)
    }
    fn fmax(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        let m = self.flt(b, a);
        self.select(m, a, b)
    }
    fn flt(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.fcmp(FloatPredicate::OLT, a, b)
    }
    fn feq(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.fcmp(FloatPredicate::OEQ, a, b)
    }
    fn fisnan(&mut self, a: V<'ctx>) -> V<'ctx> {
        self.fcmp(FloatPredicate::UNO, a, a)
    }
    fn mor(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::Or, a, b)
    }
    fn mand(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::And, a, b)
    }
    fn select(&mut self, m: V<'ctx>, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        if self.err.is_some() {
            return self.dummy;
        }
        let r = self.e.select(m, a, b);
        self.keep(r)
    }
    fn f2i(&mut self, a: V<'ctx>) -> V<'ctx> {
        // Saturating, as `llvm.fptosi.sat` (so a NaN or huge input gives a
        // defined value; a plain `fptosi` would give poison), but written as a
        // plain `fptosi` of the input moved into range: LLVM 14 scalarizes the
        // vector `fptosi.sat` into a converted, compared and inserted lane at a
        // time, which made `exp` (and sigmoid, softmax, …) several times slower
        // (WaveNet's sigmoid: 0.28 ms for 2¹⁸ elements, tanh 0.08).
        let nan = self.fisnan(a);
        let zero = self.fconst(0.0);
        let x = self.select(nan, zero, a);
        let lo = self.fconst(-2_147_483_648.0);
        let x = self.fmax(x, lo);
        // The largest f32 below 2³¹; from 2³¹ on the result is i32::MAX.
        let hi = self.fconst(2_147_483_520.0);
        let x = self.fmin(x, hi);
        let t = self.i();
        let r = self.cast(Op::FPToSI, x, t);
        let two31 = self.fconst(2_147_483_648.0);
        let big = self.fcmp(FloatPredicate::OGE, a, two31);
        let max = self.iconst(i32::MAX);
        self.select(big, max, r)
    }
    fn i2f(&mut self, a: V<'ctx>) -> V<'ctx> {
        let t = self.f();
        self.cast(Op::SIToFP, a, t)
    }
    fn fbits(&mut self, a: V<'ctx>) -> V<'ctx> {
        let t = self.i();
        self.cast(Op::BitCast, a, t)
    }
    fn bitsf(&mut self, a: V<'ctx>) -> V<'ctx> {
        let t = self.f();
        self.cast(Op::BitCast, a, t)
    }
    fn iadd(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::Add, a, b)
    }
    fn isub(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::Sub, a, b)
    }
    fn iand(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::And, a, b)
    }
    fn ior(&mut self, a: V<'ctx>, b: V<'ctx>) -> V<'ctx> {
        self.bin(Op::Or, a, b)
    }
    fn ishl(&mut self, a: V<'ctx>, n: u32) -> V<'ctx> {
        let c = self.iconst(n as i32);
        self.bin(Op::Shl, a, c)
    }
    fn isra(&mut self, a: V<'ctx>, n: u32) -> V<'ctx> {
        let c = self.iconst(n as i32);
        self.bin(Op::AShr, a, c)
    }
}
