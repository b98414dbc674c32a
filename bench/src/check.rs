//! Checking a system's outputs against ONNX Runtime's: max |actual − expected| /
//! max |expected| over each output (the scale-relative error, so that elements
//! near zero do not dominate), and the worst over all outputs.

/// One output's values and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The relative error of one output, or why it cannot be compared.
pub fn rel_err(actual: &Values, expected: &Values) -> Result<f64, String> {
    if actual.shape != expected.shape {
        return Err(format!("shape {:?}, expected {:?}", actual.shape, expected.shape));
    }
    if actual.data.len() != expected.data.len() {
        return Err(format!("{} values, expected {}", actual.data.len(), expected.data.len()));
    }
    let scale = expected.data.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
    let mut worst = 0f64;
    for (&a, &e) in actual.data.iter().zip(&expected.data) {
        if a.is_nan() != e.is_nan() {
            return Err("NaN where the reference has a number (or the reverse)".into());
        }
        let d = (f64::from(a) - f64::from(e)).abs();
        if d.is_nan() {
            continue; // both NaN
        }
        worst = worst.max(d);
    }
    Ok(if scale > 0.0 { worst / scale } else { worst })
}

/// The worst relative error over named outputs; `Err` names the first output that
/// could not be compared or is missing.
pub fn compare(actual: &[(String, Values)], expected: &[(String, Values)]) -> Result<f64, String> {
    let mut worst = 0f64;
    for (name, e) in expected {
        let Some((_, a)) = actual.iter().find(|(n, _)| n == name) else {
            return Err(format!("output {name} is missing"));
        };
        let r = rel_err(a, e).map_err(|m| format!("output {name}: {m}"))?;
        worst = worst.max(r);
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(shape: &[usize], data: &[f32]) -> Values {
        Values { shape: shape.to_vec(), data: data.to_vec() }
    }

    #[test]
    fn relative_to_the_largest_expected_value() {
        let e = v(&[3], &[10.0, -20.0, 0.0]);
        assert_eq!(rel_err(&v(&[3], &[10.0, -20.0, 0.0]), &e), Ok(0.0));
        let r = rel_err(&v(&[3], &[10.0, -20.0, 0.002]), &e).unwrap();
        assert!((r - 1e-4).abs() < 1e-9, "{r}");
        assert!(rel_err(&v(&[1, 3], &[10.0, -20.0, 0.0]), &e).unwrap_err().contains("shape"));
        assert!(rel_err(&v(&[3], &[f32::NAN, -20.0, 0.0]), &e).is_err());
    }

    #[test]
    fn worst_over_outputs_and_missing_ones() {
        let exp = vec![("a".to_string(), v(&[1], &[1.0])), ("b".to_string(), v(&[1], &[2.0]))];
        let act = vec![("b".to_string(), v(&[1], &[2.2])), ("a".to_string(), v(&[1], &[1.0]))];
        let r = compare(&act, &exp).unwrap();
        assert!((r - 0.1).abs() < 1e-6, "{r}");
        assert_eq!(compare(&act[..1], &exp), Err("output a is missing".to_string()));
    }
}
