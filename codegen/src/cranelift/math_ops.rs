//! [`MathOps`] over a cranelift [`FunctionBuilder`]: the transcendentals of
//! [`crate::math`] emitted inline for `F32` or `F32X4` values.

use crate::math::MathOps;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

/// Emits math for one lane count.
pub struct ClifMath<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    f: Type,
    i: Type,
}

impl std::fmt::Debug for ClifMath<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClifMath({})", self.f)
    }
}

impl<'a, 'b> ClifMath<'a, 'b> {
    pub fn new(b: &'a mut FunctionBuilder<'b>, lanes: u32) -> Result<ClifMath<'a, 'b>, String> {
        let (f, i) = match lanes {
            1 => (types::F32, types::I32),
            4 => (types::F32X4, types::I32X4),
            n => return Err(format!("math on {n} lanes")),
        };
        Ok(ClifMath { b, f, i })
    }

    fn vector(&self) -> bool {
        self.f.is_vector()
    }

    fn little() -> MemFlagsData {
        MemFlagsData::new().with_endianness(Endianness::Little)
    }
}

impl MathOps for ClifMath<'_, '_> {
    type F = Value;
    type I = Value;
    type M = Value;

    fn fconst(&mut self, c: f32) -> Value {
        let s = self.b.ins().f32const(c);
        if self.vector() { self.b.ins().splat(self.f, s) } else { s }
    }
    fn iconst(&mut self, c: i32) -> Value {
        let s = self.b.ins().iconst(types::I32, c as i64);
        if self.vector() { self.b.ins().splat(self.i, s) } else { s }
    }
    fn fadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    fn fsub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    fn fmul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    fn fdiv(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }
    fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        self.b.ins().fma(a, b, c)
    }
    fn fneg(&mut self, a: Value) -> Value {
        self.b.ins().fneg(a)
    }
    fn fabs(&mut self, a: Value) -> Value {
        self.b.ins().fabs(a)
    }
    fn floor(&mut self, a: Value) -> Value {
        self.b.ins().floor(a)
    }
    fn fmin(&mut self, a: Value, b: Value) -> Value {
        // a < b ? a : b — cheaper than the NaN-exact `fmin` (operands are not NaN).
        let m = self.flt(a, b);
        self.select(m, a, b)
    }
    fn fmax(&mut self, a: Value, b: Value) -> Value {
        let m = self.flt(b, a);
        self.select(m, a, b)
    }
    fn flt(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(FloatCC::LessThan, a, b)
    }
    fn feq(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(FloatCC::Equal, a, b)
    }
    fn fisnan(&mut self, a: Value) -> Value {
        self.b.ins().fcmp(FloatCC::Unordered, a, a)
    }
    fn mor(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    fn mand(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }
    fn select(&mut self, m: Value, a: Value, b: Value) -> Value {
        if self.vector() {
            let mf = self.b.ins().bitcast(self.f, Self::little(), m);
            self.b.ins().bitselect(mf, a, b)
        } else {
            self.b.ins().select(m, a, b)
        }
    }
    fn f2i(&mut self, a: Value) -> Value {
        self.b.ins().fcvt_to_sint_sat(self.i, a)
    }
    fn i2f(&mut self, a: Value) -> Value {
        self.b.ins().fcvt_from_sint(self.f, a)
    }
    fn fbits(&mut self, a: Value) -> Value {
        self.b.ins().bitcast(self.i, Self::little(), a)
    }
    fn bitsf(&mut self, a: Value) -> Value {
        self.b.ins().bitcast(self.f, Self::little(), a)
    }
    fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().iadd(a, b)
    }
    fn isub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().isub(a, b)
    }
    fn iand(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }
    fn ior(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    fn ishl(&mut self, a: Value, n: u32) -> Value {
        self.b.ins().ishl_imm_u(a, n as i64)
    }
    fn isra(&mut self, a: Value, n: u32) -> Value {
        self.b.ins().sshr_imm_u(a, n as i64)
    }
}
