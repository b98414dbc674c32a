//! ONNX tensors and types to smelt's: `TensorProto` → [`Tensor`] (raw or typed data,
//! external data beside the model), element types → [`DType`], and
//! `TypeProto` shapes → smelt [`Shape`]s with symbolic dims.

use super::error::{Error, Result};
use super::proto::{TensorProto, TypeProto, tensor_proto::DataType};
use smelt_ir::{DType, Data, Tensor};
use std::path::Path;

/// The ONNX name of an element type (`FLOAT`, `DOUBLE`, …), for messages.
pub fn onnx_dtype_name(code: i32) -> String {
    DataType::try_from(code).map(|d| d.as_str_name().to_string()).unwrap_or_else(|_| format!("data type {code}"))
}

/// The smelt dtype of an ONNX element type; the error says why not (smelt has no f64,
/// no 16-bit or unsigned 32/64-bit integers, no strings, no 8/4/2-bit floats or ints).
pub fn dtype(code: i32) -> std::result::Result<DType, String> {
    let d = DataType::try_from(code).map_err(|_| format!("unknown ONNX data type {code}"))?;
    Ok(match d {
        DataType::Float => DType::F32,
        DataType::Float16 => DType::F16,
        DataType::Bfloat16 => DType::BF16,
        DataType::Int8 => DType::I8,
        DataType::Uint8 => DType::U8,
        DataType::Int32 => DType::I32,
        DataType::Int64 => DType::I64,
        DataType::Bool => DType::Bool,
        other => return Err(format!("smelt has no {} tensors", other.as_str_name())),
    })
}

/// The ONNX element type of a smelt dtype.
pub fn onnx_dtype(d: DType) -> DataType {
    match d {
        DType::F32 => DataType::Float,
        DType::F16 => DataType::Float16,
        DType::BF16 => DataType::Bfloat16,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::Uint8,
        DType::I32 => DataType::Int32,
        DType::I64 => DataType::Int64,
        DType::Bool => DataType::Bool,
    }
}

/// Converts a tensor. `base` is the model's folder, for external data; `None`
/// refuses external data.
pub fn from_proto(t: &TensorProto, base: Option<&Path>) -> Result<Tensor> {
    let name = t.name().to_string();
    let err = |message: String| Error::Tensor { name: name.clone(), message };
    let d = dtype(t.data_type()).map_err(err)?;
    let mut shape = Vec::with_capacity(t.dims.len());
    for &n in &t.dims {
        if n < 0 || n as u64 > smelt_ir::shape::MAX_DIM {
            return Err(err(format!("bad dimension {n} in {:?}", t.dims)));
        }
        shape.push(n as usize);
    }
    let numel =
        shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n)).ok_or_else(|| err("too many elements".into()))?;
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }
    let external;
    let raw: Option<&[u8]> = if t.data_location() == super::proto::tensor_proto::DataLocation::External {
        external = read_external(t, base, numel.saturating_mul(d.size())).map_err(err)?;
        Some(&external)
    } else {
        t.raw_data.as_deref()
    };
    let data = match raw {
        Some(b) => {
            let want = numel.checked_mul(d.size()).ok_or_else(|| err("too many elements".into()))?;
            if b.len() != want {
                return Err(err(format!("raw data has {} bytes, expected {want} for {d}{shape:?}", b.len())));
            }
            Data::from_le_bytes(d, b).ok_or_else(|| err(format!("malformed {d} raw data")))?
        }
        None => typed(t, d, numel).map_err(err)?,
    };
    Tensor::new(shape, data).map_err(|e| err(e.to_string()))
}

/// The data of a tensor stored in its typed fields.
fn typed(t: &TensorProto, d: DType, numel: usize) -> std::result::Result<Data, String> {
    let len = |n: usize| if n == numel { Ok(()) } else { Err(format!("has {n} values, expected {numel}")) };
    Ok(match d {
        DType::F32 => {
            len(t.float_data.len())?;
            Data::F32(t.float_data.clone())
        }
        DType::I64 => {
            len(t.int64_data.len())?;
            Data::I64(t.int64_data.clone())
        }
        // The rest are stored in int32_data: 16-bit floats as their bits.
        DType::F16 => {
            len(t.int32_data.len())?;
            Data::F16(t.int32_data.iter().map(|&b| half::f16::from_bits(b as u16)).collect())
        }
        DType::BF16 => {
            len(t.int32_data.len())?;
            Data::BF16(t.int32_data.iter().map(|&b| half::bf16::from_bits(b as u16)).collect())
        }
        DType::I8 | DType::U8 | DType::I32 | DType::Bool => {
            len(t.int32_data.len())?;
            let v: Vec<i64> = t.int32_data.iter().map(|&x| x as i64).collect();
            if let Some((lo, hi)) = d.int_range()
                && v.iter().any(|&x| x < lo || x > hi)
            {
                return Err(format!("int32_data holds values outside {d}"));
            }
            if d == DType::Bool && v.iter().any(|&x| !(0..=1).contains(&x)) {
                return Err("bool data holds values other than 0 and 1".into());
            }
            Data::from_i64(d, &v)
        }
    })
}

/// Reads a tensor's bytes from the file its `external_data` names, relative to `base`.
fn read_external(t: &TensorProto, base: Option<&Path>, want: usize) -> std::result::Result<Vec<u8>, String> {
    let base = base.ok_or("external data needs the model's folder; import the model from a file")?;
    let get = |k: &str| t.external_data.iter().find(|e| e.key() == k).map(|e| e.value().to_string());
    let loc = get("location").ok_or("external data without a `location`")?;
    let num = |k: &str| -> std::result::Result<Option<usize>, String> {
        get(k).map(|s| s.parse::<usize>().map_err(|_| format!("external data `{k}` is not a size: {s}"))).transpose()
    };
    let (offset, length) = (num("offset")?.unwrap_or(0), num("length")?);
    let rel = Path::new(&loc);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("external data location `{loc}` must be a path inside the model's folder"));
    }
    let path = base.join(rel);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read external data {}: {e}", path.display()))?;
    let len = length.unwrap_or(want);
    let end = offset.checked_add(len).filter(|&e| e <= bytes.len());
    let end = end.ok_or_else(|| format!("external data {} is shorter than offset {offset} + {len}", path.display()))?;
    Ok(bytes[offset..end].to_vec())
}

/// The element type and dims of a tensor-typed value. A dim is `Ok(size)`, or
/// `Err(Some(name))` for a named symbolic dim, `Err(None)` for an unknown one.
#[allow(clippy::type_complexity)]
pub fn value_type(
    t: Option<&TypeProto>,
) -> std::result::Result<(i32, Option<Vec<Result<u64, Option<String>>>>), String> {
    use super::proto::tensor_shape_proto::dimension::Value as D;
    use super::proto::type_proto::Value as V;
    let tt = match t.and_then(|t| t.value.as_ref()) {
        Some(V::TensorType(tt)) => tt,
        Some(V::SequenceType(_)) => return Err("sequence values are not supported".into()),
        Some(V::MapType(_)) => return Err("map values are not supported".into()),
        Some(V::OptionalType(_)) => return Err("optional values are not supported".into()),
        Some(V::SparseTensorType(_)) => return Err("sparse tensors are not supported".into()),
        None => return Err("the value has no type".into()),
    };
    let dims = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(D::DimValue(n)) if *n >= 0 => Ok(*n as u64),
                Some(D::DimParam(p)) if !p.is_empty() => Err(Some(p.clone())),
                _ => Err(None),
            })
            .collect()
    });
    Ok((tt.elem_type(), dims))
}

/// Encodes a smelt tensor as an ONNX `TensorProto` (raw little-endian data), e.g. to
/// write test inputs.
pub fn to_proto(t: &Tensor, name: &str) -> TensorProto {
    TensorProto {
        dims: t.shape().iter().map(|&n| n as i64).collect(),
        data_type: Some(onnx_dtype(t.dtype()) as i32),
        name: Some(name.to_string()),
        raw_data: Some(t.data().to_le_bytes().into()),
        ..Default::default()
    }
}
