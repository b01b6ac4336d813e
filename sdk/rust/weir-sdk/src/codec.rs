//! How accumulators and per-key state become bytes (the host stores bytes).

use crate::error::{Error, Result};

/// A value the host can store for you: an accumulator or a key's state.
///
/// Implemented for integers, floats, `bool`, `String`, `Vec<u8>`, `Option`
/// and tuples of up to four; implement it for your own types (any encoding
/// will do, as long as `decode` reads what `encode` wrote).
pub trait Codec: Sized {
    /// Appends the bytes of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads a value from `input`, advancing it past what was read.
    fn decode(input: &mut &[u8]) -> Result<Self>;
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if input.len() < n {
        return Err(Error::failed(format!("stored state is truncated (needed {n} more bytes)")));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

macro_rules! fixed {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(input: &mut &[u8]) -> Result<Self> {
                let b = take(input, std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(b.try_into().expect("exact size")))
            }
        }
    )*};
}

fixed!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl Codec for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Result<Self> {
        Ok(take(input, 1)?[0] != 0)
    }
}

impl Codec for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        out.extend_from_slice(self);
    }
    fn decode(input: &mut &[u8]) -> Result<Self> {
        let n = u32::decode(input)? as usize;
        Ok(take(input, n)?.to_vec())
    }
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self> {
        let n = u32::decode(input)? as usize;
        String::from_utf8(take(input, n)?.to_vec())
            .map_err(|e| Error::failed(format!("stored string is not UTF-8: {e}")))
    }
}

impl<T: Codec> Codec for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self> {
        match take(input, 1)?[0] {
            0 => Ok(None),
            _ => Ok(Some(T::decode(input)?)),
        }
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: Codec),+> Codec for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.encode(out);)+
            }
            fn decode(input: &mut &[u8]) -> Result<Self> {
                Ok(($($name::decode(input)?,)+))
            }
        }
    };
}

tuple!(A);
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);

/// Encodes a value on its own.
pub fn to_bytes<T: Codec>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

/// Decodes a value that must use all of `bytes`.
pub fn from_bytes<T: Codec>(mut bytes: &[u8]) -> Result<T> {
    let v = T::decode(&mut bytes)?;
    if !bytes.is_empty() {
        return Err(Error::failed(format!("stored state has {} bytes left over", bytes.len())));
    }
    Ok(v)
}
