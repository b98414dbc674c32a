//! Conversions between kernel scalars with smelt's semantics: float → int
//! truncates and saturates (NaN → 0), int → int saturates, to bool is `!= 0`,
//! bool → number is 0/1; vector forms for f32x4, i32x4 and masks.

use super::emit::{Emitter, mem_type};
use crate::kernel::{Scalar, Ty};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Type, Value, types};

impl Emitter<'_, '_> {
    /// Conversions with smelt's semantics (see the kernel module doc).
    pub(super) fn cast(&mut self, from: Ty, to: Scalar, x: Value) -> Result<Value, String> {
        let fs = from.scalar;
        if fs == to {
            return Ok(x);
        }
        let lanes = from.lanes;
        if lanes > 1 {
            let ins = self.b.ins();
            return Ok(match (fs, to) {
                (Scalar::F32, Scalar::I32) => ins.fcvt_to_sint_sat(types::I32X4, x),
                (Scalar::I32, Scalar::F32) => ins.fcvt_from_sint(types::F32X4, x),
                (Scalar::F32, Scalar::Bool) => {
                    let z = ins.f32const(0.0);
                    let z = self.b.ins().splat(types::F32X4, z);
                    self.b.ins().fcmp(FloatCC::NotEqual, x, z)
                }
                (Scalar::I32, Scalar::Bool) => {
                    let z = ins.iconst(types::I32, 0);
                    let z = self.b.ins().splat(types::I32X4, z);
                    self.b.ins().icmp(IntCC::NotEqual, x, z)
                }
                (Scalar::Bool, Scalar::I32) => ins.ineg(x),
                (Scalar::Bool, Scalar::F32) => {
                    let one = ins.f32const(1.0);
                    let one = self.b.ins().splat(types::F32X4, one);
                    let zero = self.b.ins().f32const(0.0);
                    let zero = self.b.ins().splat(types::F32X4, zero);
                    return self.select(Ty::vec(Scalar::F32, lanes), x, one, zero);
                }
                _ => return Err(format!("vector cast from {} to {}", fs.name(), to.name())),
            });
        }
        let tt = mem_type(to);
        Ok(match (fs, to) {
            (Scalar::F32, Scalar::F64) => self.b.ins().fpromote(types::F64, x),
            (Scalar::F64, Scalar::F32) => self.b.ins().fdemote(types::F32, x),
            (Scalar::F32 | Scalar::F64, Scalar::Bool) => {
                let z = if fs == Scalar::F32 { self.b.ins().f32const(0.0) } else { self.b.ins().f64const(0.0) };
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            }
            (Scalar::F32 | Scalar::F64, Scalar::I32 | Scalar::I64) => self.b.ins().fcvt_to_sint_sat(tt, x),
            (Scalar::F32 | Scalar::F64, Scalar::I8 | Scalar::U8) => {
                let w = self.b.ins().fcvt_to_sint_sat(types::I32, x);
                let (lo, hi) = to.int_range().unwrap_or((0, 0));
                let w = self.clamp_int(w, types::I32, lo, hi);
                self.b.ins().ireduce(types::I8, w)
            }
            (_, Scalar::F32 | Scalar::F64) => {
                // Integers and bools through i64 (exact), then rounded.
                let w = self.widen_int(fs, x);
                self.b.ins().fcvt_from_sint(tt, w)
            }
            (_, Scalar::Bool) => self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
            (_, _) => {
                let w = self.widen_int(fs, x);
                if to == Scalar::I64 {
                    w
                } else {
                    let (lo, hi) = to.int_range().unwrap_or((0, 0));
                    let w = self.clamp_int(w, types::I64, lo, hi);
                    self.b.ins().ireduce(tt, w)
                }
            }
        })
    }

    /// An integer or bool scalar as i64.
    fn widen_int(&mut self, s: Scalar, x: Value) -> Value {
        match s {
            Scalar::I64 => x,
            Scalar::U8 | Scalar::Bool => self.b.ins().uextend(types::I64, x),
            _ => self.b.ins().sextend(types::I64, x),
        }
    }

    fn clamp_int(&mut self, x: Value, t: Type, lo: i64, hi: i64) -> Value {
        let l = self.b.ins().iconst(t, lo);
        let h = self.b.ins().iconst(t, hi);
        let x = self.b.ins().smax(x, l);
        self.b.ins().smin(x, h)
    }
}
