//! Conversions between kernel scalars with smelt's semantics, for scalars and
//! vectors of any width: float → int truncates and saturates (NaN → 0, LLVM's
//! `fptosi.sat`/`fptoui.sat`), int → int saturates, to bool is `!= 0`, bool →
//! number is 0/1.

use super::emit::{Emitter, V, llvm_type, ok};
use crate::kernel::{Lit, Scalar, Ty};
use inkwell::values::InstructionOpcode as Op;
use inkwell::{FloatPredicate, IntPredicate};

impl<'ctx> Emitter<'_, 'ctx> {
    /// Converts `x` of type `from` to `to` (same lanes).
    pub(super) fn cast(&mut self, from: Ty, to: Scalar, x: V<'ctx>) -> Result<V<'ctx>, String> {
        let fs = from.scalar;
        if fs == to {
            return Ok(x);
        }
        let tt = llvm_type(self.cx, Ty { scalar: to, lanes: from.lanes });
        let cast = |e: &Self, op: Op, x: V<'ctx>, t| ok(e.b.build_cast(op, x, t, "cv"));
        Ok(match (fs, to) {
            (Scalar::F32, Scalar::F64) => cast(self, Op::FPExt, x, tt)?,
            (Scalar::F64, Scalar::F32) => cast(self, Op::FPTrunc, x, tt)?,
            (Scalar::F32 | Scalar::F64, Scalar::Bool) => {
                let z = self.konst(from, Lit::F32(0.0))?;
                self.fcmp(FloatPredicate::UNE, x, z)?
            }
            (Scalar::F32 | Scalar::F64, Scalar::U8) => self.intrinsic("llvm.fptoui.sat", &[tt, x.get_type()], &[x])?,
            (Scalar::F32 | Scalar::F64, _) => self.intrinsic("llvm.fptosi.sat", &[tt, x.get_type()], &[x])?,
            (Scalar::U8 | Scalar::Bool, Scalar::F32 | Scalar::F64) => cast(self, Op::UIToFP, x, tt)?,
            (_, Scalar::F32 | Scalar::F64) => cast(self, Op::SIToFP, x, tt)?,
            (_, Scalar::Bool) => {
                let z = self.konst(from, Lit::Int(0, fs))?;
                self.icmp(IntPredicate::NE, x, z)?
            }
            (_, _) => {
                // Integers through i64 (exact), clamped to the target's range.
                let wide = Ty { scalar: Scalar::I64, lanes: from.lanes };
                let w = match fs {
                    Scalar::I64 => x,
                    Scalar::U8 | Scalar::Bool => cast(self, Op::ZExt, x, llvm_type(self.cx, wide))?,
                    _ => cast(self, Op::SExt, x, llvm_type(self.cx, wide))?,
                };
                if to == Scalar::I64 {
                    return Ok(w);
                }
                let (lo, hi) = to.int_range().unwrap_or((0, 0));
                let (l, h) = (self.konst(wide, Lit::Int(lo, Scalar::I64))?, self.konst(wide, Lit::Int(hi, Scalar::I64))?);
                let c = self.icmp(IntPredicate::SLT, w, l)?;
                let w = self.select(c, l, w)?;
                let c = self.icmp(IntPredicate::SGT, w, h)?;
                let w = self.select(c, h, w)?;
                cast(self, Op::Trunc, w, tt)?
            }
        })
    }
}
