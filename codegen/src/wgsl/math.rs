//! The transcendentals of [`crate::math`] as WGSL helper functions: the same
//! polynomial and rational approximations as the CPU backends (so the same stated
//! maximum errors), written through [`MathOps`] as a sequence of `let`s.

use crate::kernel::Intrinsic;
use crate::math::{self, MathOps};

/// Collects `let tN = …;` lines; values are the temporaries' numbers.
struct Lets {
    lines: Vec<String>,
    lanes: u32,
}

impl Lets {
    fn t(&mut self, rhs: String) -> u32 {
        let n = self.lines.len() as u32;
        self.lines.push(format!("  let t{n} = {rhs};"));
        n
    }
    fn f(&self) -> String {
        if self.lanes == 1 { "f32".into() } else { format!("vec{}<f32>", self.lanes) }
    }
    fn i(&self) -> String {
        if self.lanes == 1 { "i32".into() } else { format!("vec{}<i32>", self.lanes) }
    }
    fn u(&self, n: u32) -> String {
        if self.lanes == 1 { format!("{n}u") } else { format!("vec{}<u32>({n}u)", self.lanes) }
    }
}

impl MathOps for Lets {
    type F = u32;
    type I = u32;
    type M = u32;
    fn fconst(&mut self, c: f32) -> u32 {
        let f = self.f();
        self.t(format!("{f}({})", super::lit::f32_lit(c)))
    }
    fn iconst(&mut self, c: i32) -> u32 {
        let i = self.i();
        self.t(format!("{i}({})", super::lit::int_lit(c as i64, crate::kernel::Scalar::I32)))
    }
    fn fadd(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} + t{b}"))
    }
    fn fsub(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} - t{b}"))
    }
    fn fmul(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} * t{b}"))
    }
    fn fdiv(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} / t{b}"))
    }
    fn fma(&mut self, a: u32, b: u32, c: u32) -> u32 {
        self.t(format!("fma(t{a}, t{b}, t{c})"))
    }
    fn fneg(&mut self, a: u32) -> u32 {
        self.t(format!("-t{a}"))
    }
    fn fabs(&mut self, a: u32) -> u32 {
        self.t(format!("abs(t{a})"))
    }
    fn floor(&mut self, a: u32) -> u32 {
        self.t(format!("floor(t{a})"))
    }
    fn fmin(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("min(t{a}, t{b})"))
    }
    fn fmax(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("max(t{a}, t{b})"))
    }
    fn flt(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} < t{b}"))
    }
    fn feq(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} == t{b}"))
    }
    fn fisnan(&mut self, a: u32) -> u32 {
        self.t(format!("!(t{a} == t{a})"))
    }
    fn mor(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} | t{b}"))
    }
    fn mand(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} & t{b}"))
    }
    fn select(&mut self, m: u32, a: u32, b: u32) -> u32 {
        self.t(format!("select(t{b}, t{a}, t{m})"))
    }
    fn f2i(&mut self, a: u32) -> u32 {
        let i = self.i();
        self.t(format!("{i}(t{a})"))
    }
    fn i2f(&mut self, a: u32) -> u32 {
        let f = self.f();
        self.t(format!("{f}(t{a})"))
    }
    fn fbits(&mut self, a: u32) -> u32 {
        let i = self.i();
        self.t(format!("bitcast<{i}>(t{a})"))
    }
    fn bitsf(&mut self, a: u32) -> u32 {
        let f = self.f();
        self.t(format!("bitcast<{f}>(t{a})"))
    }
    fn iadd(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} + t{b}"))
    }
    fn isub(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} - t{b}"))
    }
    fn iand(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} & t{b}"))
    }
    fn ior(&mut self, a: u32, b: u32) -> u32 {
        self.t(format!("t{a} | t{b}"))
    }
    fn ishl(&mut self, a: u32, n: u32) -> u32 {
        let s = self.u(n);
        self.t(format!("t{a} << {s}"))
    }
    fn isra(&mut self, a: u32, n: u32) -> u32 {
        let s = self.u(n);
        self.t(format!("t{a} >> {s}"))
    }
}

/// `fn NAME(x[, y]) -> f32 or vecN<f32>` computing intrinsic `f`.
pub fn function(name: &str, f: Intrinsic, lanes: u32) -> String {
    let mut o = Lets { lines: vec![], lanes };
    let ty = o.f();
    // The arguments are t0 (and t1).
    let x = o.t("x".into());
    let r = match f {
        Intrinsic::Exp => math::exp(&mut o, x),
        Intrinsic::Log => math::log(&mut o, x),
        Intrinsic::Tanh => math::tanh(&mut o, x),
        Intrinsic::Erf => math::erf(&mut o, x),
        Intrinsic::Sin => math::sin(&mut o, x),
        Intrinsic::Cos => math::cos(&mut o, x),
        Intrinsic::Sigmoid => math::sigmoid(&mut o, x),
        Intrinsic::Softplus => math::softplus(&mut o, x),
        Intrinsic::Pow => {
            let y = o.t("y".into());
            math::pow(&mut o, x, y)
        }
        Intrinsic::DotPairsI16 | Intrinsic::DotQuadsU8I8 | Intrinsic::DotQuadsU8I8Narrow => {
            unreachable!("the integer dot products are refused by `math_fn`")
        }
    };
    let params = if f.arity() == 2 { format!("x: {ty}, y: {ty}") } else { format!("x: {ty}") };
    format!("fn {name}({params}) -> {ty} {{\n{}\n  return t{r};\n}}\n", o.lines.join("\n"))
}
