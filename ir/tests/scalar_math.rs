//! The scalar reference functions at their edges: erf at 0 (where a series test of
//! `term < ε·sum` never stops), its symmetry and known values; gelu through it.

use smelt_ir::UnaryOp;
use smelt_ir::ops::elementwise::erf;

#[test]
fn erf_edges_and_values() {
    assert_eq!(erf(0.0), 0.0);
    assert_eq!(erf(-0.0), 0.0);
    // erf(1) and erf(3) to 15 digits (Abramowitz & Stegun table 7.1).
    assert!((erf(1.0) - 0.842_700_792_949_715).abs() < 1e-15);
    assert!((erf(3.0) - 0.999_977_909_503_001).abs() < 1e-15);
    for x in [0.1, 0.7, 2.4, 2.6, 5.0] {
        assert_eq!(erf(-x), -erf(x));
    }
    assert_eq!(erf(40.0), 1.0);
    assert!(erf(f64::NAN).is_nan());
    assert_eq!(UnaryOp::Gelu.eval(0.0), 0.0);
    assert!((UnaryOp::Gelu.eval(1.0) - 0.841_344_7).abs() < 1e-6);
}
