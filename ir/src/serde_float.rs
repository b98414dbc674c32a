//! JSON cannot hold inf or NaN: these helpers write non-finite floats as the strings
//! `"inf"`, `"-inf"` and `"nan"` (the text format's spelling) and read both forms.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Repr {
    Num(f64),
    Str(String),
}

pub(crate) fn to_repr(x: f32) -> Repr {
    if x.is_finite() {
        Repr::Num(x as f64)
    } else if x.is_nan() {
        Repr::Str("nan".into())
    } else if x > 0.0 {
        Repr::Str("inf".into())
    } else {
        Repr::Str("-inf".into())
    }
}

pub(crate) fn from_repr<E: serde::de::Error>(r: Repr) -> Result<f32, E> {
    match r {
        Repr::Num(x) => Ok(x as f32),
        Repr::Str(s) => match s.as_str() {
            "inf" => Ok(f32::INFINITY),
            "-inf" => Ok(f32::NEG_INFINITY),
            "nan" => Ok(f32::NAN),
            _ => Err(E::custom(format!("expected a number, inf, -inf or nan, found {s:?}"))),
        },
    }
}

pub fn serialize<S: Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    to_repr(*x).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    from_repr(Repr::deserialize(d)?)
}
