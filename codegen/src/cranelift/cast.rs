//! Conversions between kernel scalars with smelt's semantics: float → int
//! truncates and saturates (NaN → 0), int → int saturates, to bool is `!= 0`,
//! bool → number is 0/1; vector forms for f32x4, i32x4 and masks. The storage
//! scalars f16 and bf16 (held as i16 bits) convert to and from f32 by bit
//! manipulation, rounding to nearest even exactly as the `half` crate.

use super::emit::{Emitter, mem_type};
use crate::kernel::{Scalar, Ty};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};

impl Emitter<'_, '_> {
    /// Conversions with smelt's semantics (see the kernel module doc).
    pub(super) fn cast(&mut self, from: Ty, to: Scalar, x: Value) -> Result<Value, String> {
        let fs = from.scalar;
        if fs == to {
            return Ok(x);
        }
        match (fs, to) {
            (Scalar::F16, Scalar::F32) => return Ok(self.f16_to_f32(x)),
            (Scalar::F32, Scalar::F16) => return Ok(self.f32_to_f16(x)),
            (Scalar::BF16, Scalar::F32) => return Ok(self.bf16_to_f32(x)),
            (Scalar::F32, Scalar::BF16) => return Ok(self.f32_to_bf16(x)),
            (Scalar::F16 | Scalar::BF16, _) | (_, Scalar::F16 | Scalar::BF16) => {
                return Err(format!("cast from {} to {}: storage scalars convert to and from f32 only", fs.name(), to.name()));
            }
            _ => {}
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

    /// `(m & bit) != 0 && (m & (3·bit − 1)) != 0` as 0/1 in i32: round half to
    /// even after dropping the bits below `bit`.
    fn round_up(&mut self, m: Value, bit: Value) -> Value {
        let ins = self.b.ins();
        let half = ins.band(m, bit);
        let three = self.b.ins().imul_imm_s(bit, 3);
        let mask = self.b.ins().iadd_imm_s(three, -1);
        let rest = self.b.ins().band(m, mask);
        let a = self.b.ins().icmp_imm_s(IntCC::NotEqual, half, 0);
        let c = self.b.ins().icmp_imm_s(IntCC::NotEqual, rest, 0);
        let both = self.b.ins().band(a, c);
        self.b.ins().uextend(types::I32, both)
    }

    /// f32 → f16 bits: `half::f16::from_f32` (NaN keeps its top payload bits and
    /// stays a NaN; overflow gives ±inf; subnormals rounded to nearest even).
    fn f32_to_f16(&mut self, v: Value) -> Value {
        let b = &mut *self.b;
        let x = b.ins().bitcast(types::I32, MemFlagsData::new(), v);
        let sign0 = b.ins().ushr_imm_u(x, 16);
        let sign = b.ins().band_imm_u(sign0, 0x8000);
        let exp0 = b.ins().ushr_imm_u(x, 23);
        let exp = b.ins().band_imm_u(exp0, 0xFF);
        let man = b.ins().band_imm_u(x, 0x007F_FFFF);
        let man13 = b.ins().ushr_imm_u(man, 13);
        // Inf and NaN.
        let has_man = b.ins().icmp_imm_s(IntCC::NotEqual, man, 0);
        let nan_bit = b.ins().uextend(types::I32, has_man);
        let nan_bit = b.ins().ishl_imm_u(nan_bit, 9);
        let special = b.ins().bor_imm_u(sign, 0x7C00);
        let special = b.ins().bor(special, nan_bit);
        let special = b.ins().bor(special, man13);
        // The exponent rebiased for f16.
        let hexp = b.ins().iadd_imm_s(exp, -112);
        let inf = b.ins().bor_imm_u(sign, 0x7C00);
        // Normal: sign | exp << 10 | man >> 13, plus the rounding.
        let e10 = b.ins().ishl_imm_u(hexp, 10);
        let normal = b.ins().bor(sign, e10);
        let normal = b.ins().bor(normal, man13);
        let rb = b.ins().iconst(types::I32, 0x1000);
        let up = self.round_up(man, rb);
        let normal = self.b.ins().iadd(normal, up);
        // Subnormal: the implicit bit shifted by 14 − hexp (≤ 24, else ±0).
        let b = &mut *self.b;
        let fourteen = b.ins().iconst(types::I32, 14);
        let shift = b.ins().isub(fourteen, hexp);
        let max = b.ins().iconst(types::I32, 24);
        let shift_c = b.ins().smin(shift, max);
        let m = b.ins().bor_imm_u(man, 0x0080_0000);
        let hm = b.ins().ushr(m, shift_c);
        let one = b.ins().iconst(types::I32, 1);
        let sm1 = b.ins().iadd_imm_s(shift_c, -1);
        let rbit = b.ins().ishl(one, sm1);
        let up = self.round_up(m, rbit);
        let b = &mut *self.b;
        let hm = b.ins().iadd(hm, up);
        let sub = b.ins().bor(sign, hm);
        let too_small = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, shift, 24);
        let sub = b.ins().select(too_small, sign, sub);
        // Pick by exponent.
        let is_sub = b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, hexp, 0);
        let r = b.ins().select(is_sub, sub, normal);
        let is_inf = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, hexp, 0x1F);
        let r = b.ins().select(is_inf, inf, r);
        let is_special = b.ins().icmp_imm_s(IntCC::Equal, exp, 0xFF);
        let r = b.ins().select(is_special, special, r);
        b.ins().ireduce(types::I16, r)
    }

    /// f16 bits → f32 (exact): normal numbers and inf/NaN by moving the fields,
    /// subnormals and zeros as `mantissa · 2^−24` with the sign.
    fn f16_to_f32(&mut self, h: Value) -> Value {
        let b = &mut *self.b;
        let i = b.ins().uextend(types::I32, h);
        let sign = b.ins().band_imm_u(i, 0x8000);
        let sign = b.ins().ishl_imm_u(sign, 16);
        let hexp = b.ins().band_imm_u(i, 0x7C00);
        let hman = b.ins().band_imm_u(i, 0x03FF);
        let man = b.ins().ishl_imm_u(hman, 13);
        // Normal: exponent + (127 − 15).
        let e = b.ins().ushr_imm_u(hexp, 10);
        let e = b.ins().iadd_imm_s(e, 112);
        let e = b.ins().ishl_imm_u(e, 23);
        let normal = b.ins().bor(sign, e);
        let normal = b.ins().bor(normal, man);
        // Inf / NaN (NaN made quiet, as `half`).
        let special = b.ins().bor_imm_u(sign, 0x7F80_0000);
        let nan = b.ins().bor_imm_u(special, 0x7FC0_0000);
        let nan = b.ins().bor(nan, man);
        let is_nan = b.ins().icmp_imm_s(IntCC::NotEqual, hman, 0);
        let special = b.ins().select(is_nan, nan, special);
        let is_special = b.ins().icmp_imm_s(IntCC::Equal, hexp, 0x7C00);
        let r = b.ins().select(is_special, special, normal);
        let rf = b.ins().bitcast(types::F32, MemFlagsData::new(), r);
        // Subnormal or zero: mantissa · 2^−24, then the sign bit.
        let mf = b.ins().fcvt_from_uint(types::F32, hman);
        let scale = b.ins().f32const(1.0 / 16_777_216.0);
        let sub = b.ins().fmul(mf, scale);
        let sub = b.ins().bitcast(types::I32, MemFlagsData::new(), sub);
        let sub = b.ins().bor(sub, sign);
        let sub = b.ins().bitcast(types::F32, MemFlagsData::new(), sub);
        let is_sub = b.ins().icmp_imm_s(IntCC::Equal, hexp, 0);
        b.ins().select(is_sub, sub, rf)
    }

    /// f32 → bf16 bits: `half::bf16::from_f32` (the top 16 bits rounded to
    /// nearest even; NaN stays a quiet NaN).
    fn f32_to_bf16(&mut self, v: Value) -> Value {
        let b = &mut *self.b;
        let x = b.ins().bitcast(types::I32, MemFlagsData::new(), v);
        let top = b.ins().ushr_imm_u(x, 16);
        let rb = b.ins().iconst(types::I32, 0x8000);
        let up = self.round_up(x, rb);
        let b = &mut *self.b;
        let rounded = b.ins().iadd(top, up);
        let nan = b.ins().bor_imm_u(top, 0x0040);
        let abs = b.ins().band_imm_u(x, 0x7FFF_FFFF);
        let is_nan = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThan, abs, 0x7F80_0000);
        let r = b.ins().select(is_nan, nan, rounded);
        b.ins().ireduce(types::I16, r)
    }

    /// bf16 bits → f32 (exact): the bits shifted into the top half.
    fn bf16_to_f32(&mut self, h: Value) -> Value {
        let b = &mut *self.b;
        let i = b.ins().uextend(types::I32, h);
        let i = b.ins().ishl_imm_u(i, 16);
        b.ins().bitcast(types::F32, MemFlagsData::new(), i)
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
