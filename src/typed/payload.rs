//! Typed payloads: a `T` archived with rkyv into a buffer's bytes, validated (bytecheck) before
//! it is read, then read in place.
//!
//! Every buffer a typed stage takes is validated once, by that stage, before anything of it is
//! read: the bytes may come from another process (an isolated worker, a `shmsrc`), or from a
//! dynamic element placed between typed stages, and must never be trusted. A valid archive is
//! then read where it lies, in the pool slot (in shared memory) it arrived in; nothing copies
//! it, except a buffer whose bytes are not aligned for `T` (heap bytes from a dynamic element),
//! which is copied once into aligned memory and counted by [`misaligned_copies`].

use std::sync::atomic::{AtomicU64, Ordering};

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::Error as RkyvError;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

/// Why a typed payload could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The bytes are not a valid archive of the type (a dynamic element changed them, a peer
    /// sent garbage).
    #[error("the buffer is not a valid `{ty}`: {source}")]
    Invalid {
        /// The type expected.
        ty: &'static str,
        /// What bytecheck found.
        #[source]
        source: RkyvError,
    },
    /// The value could not be archived.
    #[error("cannot archive a `{ty}`: {source}")]
    Encode {
        /// The type.
        ty: &'static str,
        /// What rkyv said.
        #[source]
        source: RkyvError,
    },
}

/// Buffers copied into aligned memory before they could be read (see the module doc).
static MISALIGNED_COPIES: AtomicU64 = AtomicU64::new(0);

/// How many typed buffers were copied because their bytes were not aligned for their type.
pub fn misaligned_copies() -> u64 {
    MISALIGNED_COPIES.load(Ordering::Relaxed)
}

/// A type that can travel through a typed pipeline: any rkyv type whose archive can be checked.
///
/// Implemented for every `T` with `#[derive(rkyv::Archive, rkyv::Serialize,
/// rkyv::Deserialize)]` (and for the primitives, strings and vectors rkyv supports).
pub trait Payload: rkyv::Archive + Sized + Send + 'static {
    /// Archives `self`.
    fn encode(&self) -> Result<AlignedVec, PayloadError>;

    /// Archives `self` into `out`, replacing what it held and reusing its memory (a stage's
    /// scratch: no allocation per item once it is large enough).
    fn encode_into(&self, out: &mut AlignedVec) -> Result<(), PayloadError>;

    /// Validates `bytes` as an archived `Self` and hands out the archive, read in place.
    fn view(bytes: &[u8]) -> Result<&Self::Archived, PayloadError>;

    /// Validates `bytes` and deserializes a `Self` from them.
    fn decode(bytes: &[u8]) -> Result<Self, PayloadError>;
}

impl<T> Payload for T
where
    T: rkyv::Archive + Send + 'static,
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, RkyvError>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, RkyvError>>
        + rkyv::Deserialize<T, HighDeserializer<RkyvError>>,
{
    fn encode(&self) -> Result<AlignedVec, PayloadError> {
        rkyv::to_bytes::<RkyvError>(self).map_err(|source| PayloadError::Encode {
            ty: std::any::type_name::<T>(),
            source,
        })
    }

    fn encode_into(&self, out: &mut AlignedVec) -> Result<(), PayloadError> {
        let mut reused = std::mem::take(out);
        reused.clear();
        *out = rkyv::api::high::to_bytes_in::<_, RkyvError>(self, reused).map_err(|source| {
            PayloadError::Encode {
                ty: std::any::type_name::<T>(),
                source,
            }
        })?;
        Ok(())
    }

    fn view(bytes: &[u8]) -> Result<&T::Archived, PayloadError> {
        rkyv::access::<T::Archived, RkyvError>(bytes).map_err(|source| PayloadError::Invalid {
            ty: std::any::type_name::<T>(),
            source,
        })
    }

    fn decode(bytes: &[u8]) -> Result<T, PayloadError> {
        let archived = T::view(bytes)?;
        rkyv::deserialize::<T, RkyvError>(archived).map_err(|source| PayloadError::Invalid {
            ty: std::any::type_name::<T>(),
            source,
        })
    }
}

/// Runs `read` on `bytes` where they lie when they are aligned for `T`, else on an aligned
/// copy (counted).
pub(crate) fn with_aligned<T: Payload, R>(bytes: &[u8], read: impl FnOnce(&[u8]) -> R) -> R {
    let align = std::mem::align_of::<T::Archived>().max(1);
    if (bytes.as_ptr() as usize) % align == 0 {
        read(bytes)
    } else {
        MISALIGNED_COPIES.fetch_add(1, Ordering::Relaxed);
        let mut copy = AlignedVec::<16>::with_capacity(bytes.len());
        copy.extend_from_slice(bytes);
        read(&copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
    struct Reading {
        sensor: u32,
        celsius: f32,
        label: String,
    }

    #[test]
    fn a_value_round_trips_and_is_read_in_place() {
        let r = Reading {
            sensor: 7,
            celsius: 21.5,
            label: "hall".into(),
        };
        let bytes = r.encode().unwrap();
        let view = Reading::view(&bytes).unwrap();
        assert_eq!(view.sensor, 7);
        assert_eq!(view.label.as_str(), "hall");
        // In place: the archive lies inside the bytes it was read from.
        let at = view as *const _ as usize;
        assert!(at >= bytes.as_ptr() as usize && at < bytes.as_ptr() as usize + bytes.len());
        assert_eq!(Reading::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn garbage_is_an_error_naming_the_type_not_a_crash() {
        let bytes = Reading {
            sensor: 1,
            celsius: 0.0,
            label: "abc".into(),
        }
        .encode()
        .unwrap();
        // The string's length now points past the end: bytecheck refuses it.
        let at = bytes.windows(3).position(|w| w == b"abc").unwrap();
        let short = &bytes[at + 1..];
        let err = Reading::decode(short).unwrap_err().to_string();
        assert!(err.contains("Reading"), "{err}");
        assert!(Reading::decode(&bytes[..2]).is_err());
        assert!(u64::decode(&[1, 2, 3]).is_err());
        assert!(bool::decode(&[2]).is_err());
    }
}
