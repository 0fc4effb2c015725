//! `base36_encode(hex_str)`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyString, PyTuple};
use sky_rs_core::base36;

use crate::checks::{type_error, type_name};
use crate::functions::Function;
use crate::guard::{guarded, Answer, Failure};

#[pyfunction]
#[pyo3(signature = (hex_str))]
pub fn base36_encode<'py>(
    py: Python<'py>,
    hex_str: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    #[cfg(feature = "leak-canary")]
    crate::canary::leak_bytes();
    #[cfg(feature = "counts-canary")]
    counts_canary();
    guarded(
        py,
        Function::Base36Encode,
        || encode(py, hex_str),
        || PyTuple::new(py, [hex_str]),
    )
}

fn encode<'py>(py: Python<'py>, hex_str: &Bound<'py, PyAny>) -> Answer<Bound<'py, PyAny>> {
    let plain = if let Ok(text) = hex_str.cast::<PyString>() {
        // A str with lone surrogates can't be UTF-8: Python's int() decides.
        match text.encode_utf8() {
            Ok(utf8) => base36::encode_plain_hex(utf8.as_bytes()),
            Err(_) => None,
        }
    } else if let Ok(bytes) = hex_str.cast::<PyBytes>() {
        base36::encode_plain_hex(bytes.as_bytes())
    } else if let Ok(array) = hex_str.cast::<PyByteArray>() {
        base36::encode_plain_hex(&array.to_vec())
    } else {
        return Err(type_error(format!(
            "hex_str must be str, bytes or bytearray, not {}",
            type_name(hex_str)?
        )));
    };
    if let Some(encoded) = plain {
        return Ok(PyString::new(py, &encoded).into_any());
    }
    // Whitespace, signs, '_', Unicode digits, invalid text: int(hex_str, 16).
    let value = py.get_type::<PyInt>().call1((hex_str, 16))?;
    if value.lt(0)? {
        return Err(Failure::Raise(PyValueError::new_err(
            "base36_encode() needs a non-negative value",
        )));
    }
    let bits: usize = value.call_method0("bit_length")?.extract()?;
    let bytes = value.call_method1("to_bytes", (bits.div_ceil(8), "big"))?;
    let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
    Ok(PyString::new(py, &base36::encode_be_bytes(bytes.as_bytes())).into_any())
}

/// Deliberate extra work (feature `counts-canary`): a few hundred instructions
/// and an allocation per call, which the counts check must report.
#[cfg(feature = "counts-canary")]
fn counts_canary() {
    let scratch: Vec<u64> = (0..64).map(std::hint::black_box).collect();
    std::hint::black_box(scratch);
}
