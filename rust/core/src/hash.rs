//! Streaming digests of files in constant memory, for the fixed-size
//! algorithms that `hashlib` names canonically (`hashlib.new(x).name`).
//!
//! Name resolution (aliases such as `'SHA256'` or `'sha-256'`, availability
//! under the interpreter's OpenSSL, the XOF rejection) stays with `hashlib`
//! in the binding; this module only answers for canonical names.

use std::fs::File;
use std::io::{self, Read};
use std::mem::MaybeUninit;

use sha2::Digest;

/// Size of each read while hashing; the memory used never depends on the
/// size of the input.
// 256 KiB, as the Python reference reads: a 1 MiB file in 5 reads, not 17.
const READ_SIZE: usize = 1 << 18;

/// The algorithms hashed in Rust, by `hashlib`'s canonical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    /// BLAKE2b with its default 64-byte digest.
    Blake2b,
    /// BLAKE2s with its default 32-byte digest.
    Blake2s,
}

impl HashAlgorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [HashAlgorithm; 14] = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha224,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha512_224,
        HashAlgorithm::Sha512_256,
        HashAlgorithm::Sha3_224,
        HashAlgorithm::Sha3_256,
        HashAlgorithm::Sha3_384,
        HashAlgorithm::Sha3_512,
        HashAlgorithm::Blake2b,
        HashAlgorithm::Blake2s,
    ];

    /// The algorithm `hashlib` calls `name` (its canonical `.name`, exactly;
    /// no case folding or alias resolution here).
    pub fn from_canonical_name(name: &str) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.canonical_name() == name)
    }

    /// `hashlib`'s canonical name.
    pub fn canonical_name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha224 => "sha224",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sha512_224 => "sha512_224",
            HashAlgorithm::Sha512_256 => "sha512_256",
            HashAlgorithm::Sha3_224 => "sha3_224",
            HashAlgorithm::Sha3_256 => "sha3_256",
            HashAlgorithm::Sha3_384 => "sha3_384",
            HashAlgorithm::Sha3_512 => "sha3_512",
            HashAlgorithm::Blake2b => "blake2b",
            HashAlgorithm::Blake2s => "blake2s",
        }
    }

    /// Length of the digest in bytes.
    pub fn digest_size(self) -> usize {
        match self {
            HashAlgorithm::Md5 => 16,
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha224 | HashAlgorithm::Sha512_224 | HashAlgorithm::Sha3_224 => 28,
            HashAlgorithm::Sha256
            | HashAlgorithm::Sha512_256
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Blake2s => 32,
            HashAlgorithm::Sha384 | HashAlgorithm::Sha3_384 => 48,
            HashAlgorithm::Sha512 | HashAlgorithm::Sha3_512 | HashAlgorithm::Blake2b => 64,
        }
    }

    /// Digest of everything `reader` yields until end of input.
    pub fn digest_reader<R: Read>(self, reader: R) -> io::Result<Vec<u8>> {
        match self {
            HashAlgorithm::Md5 => digest_with::<md5::Md5, R>(reader),
            HashAlgorithm::Sha1 => digest_with::<sha1::Sha1, R>(reader),
            HashAlgorithm::Sha224 => digest_with::<sha2::Sha224, R>(reader),
            HashAlgorithm::Sha256 => digest_with::<sha2::Sha256, R>(reader),
            HashAlgorithm::Sha384 => digest_with::<sha2::Sha384, R>(reader),
            HashAlgorithm::Sha512 => digest_with::<sha2::Sha512, R>(reader),
            HashAlgorithm::Sha512_224 => digest_with::<sha2::Sha512_224, R>(reader),
            HashAlgorithm::Sha512_256 => digest_with::<sha2::Sha512_256, R>(reader),
            HashAlgorithm::Sha3_224 => digest_with::<sha3::Sha3_224, R>(reader),
            HashAlgorithm::Sha3_256 => digest_with::<sha3::Sha3_256, R>(reader),
            HashAlgorithm::Sha3_384 => digest_with::<sha3::Sha3_384, R>(reader),
            HashAlgorithm::Sha3_512 => digest_with::<sha3::Sha3_512, R>(reader),
            HashAlgorithm::Blake2b => digest_with::<blake2::Blake2b512, R>(reader),
            HashAlgorithm::Blake2s => digest_with::<blake2::Blake2s256, R>(reader),
        }
    }

    /// Digest of an open file from its current position to end of file,
    /// read in place (no copy, no zeroed buffer); `size` is its `fstat` size
    /// if known, which only sizes the buffer.
    pub fn digest_file(self, file: &File, size: Option<u64>) -> io::Result<Vec<u8>> {
        match self {
            HashAlgorithm::Md5 => digest_file_with::<md5::Md5>(file, size),
            HashAlgorithm::Sha1 => digest_file_with::<sha1::Sha1>(file, size),
            HashAlgorithm::Sha224 => digest_file_with::<sha2::Sha224>(file, size),
            HashAlgorithm::Sha256 => digest_file_with::<sha2::Sha256>(file, size),
            HashAlgorithm::Sha384 => digest_file_with::<sha2::Sha384>(file, size),
            HashAlgorithm::Sha512 => digest_file_with::<sha2::Sha512>(file, size),
            HashAlgorithm::Sha512_224 => digest_file_with::<sha2::Sha512_224>(file, size),
            HashAlgorithm::Sha512_256 => digest_file_with::<sha2::Sha512_256>(file, size),
            HashAlgorithm::Sha3_224 => digest_file_with::<sha3::Sha3_224>(file, size),
            HashAlgorithm::Sha3_256 => digest_file_with::<sha3::Sha3_256>(file, size),
            HashAlgorithm::Sha3_384 => digest_file_with::<sha3::Sha3_384>(file, size),
            HashAlgorithm::Sha3_512 => digest_file_with::<sha3::Sha3_512>(file, size),
            HashAlgorithm::Blake2b => digest_file_with::<blake2::Blake2b512>(file, size),
            HashAlgorithm::Blake2s => digest_file_with::<blake2::Blake2s256>(file, size),
        }
    }

    /// Digest of a byte string.
    pub fn digest_bytes(self, bytes: &[u8]) -> Vec<u8> {
        match self.digest_reader(bytes) {
            Ok(digest) => digest,
            // Reading from a slice cannot fail.
            Err(err) => unreachable!("reading a byte slice failed: {err}"),
        }
    }
}

fn digest_with<D: Digest, R: Read>(mut reader: R) -> io::Result<Vec<u8>> {
    let mut hasher = D::new();
    let mut buffer = vec![0u8; READ_SIZE];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(k) => hasher.update(&buffer[..k]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(hasher.finalize().to_vec())
}

/// The read buffer for a file whose `fstat` size is `size`: room for the
/// whole file and one byte more (so the first read comes back short and the
/// next one sees end of file), at most [`READ_SIZE`], at least one page
/// (procfs and the like report size 0 and still have content).
fn file_buffer_size(size: Option<u64>) -> usize {
    const PAGE: usize = 4096;
    size.map_or(READ_SIZE, |size| {
        usize::try_from(size)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .clamp(PAGE, READ_SIZE)
    })
}

/// [`HashAlgorithm::digest_file`] for one digest type. The buffer is never
/// zeroed: each read initializes what it returns, and zeroing 256 KiB per
/// call cost more than hashing a small file.
fn digest_file_with<D: Digest>(file: &File, size: Option<u64>) -> io::Result<Vec<u8>> {
    let mut hasher = D::new();
    let mut buffer: Vec<MaybeUninit<u8>> = Vec::with_capacity(file_buffer_size(size));
    // SAFETY: `MaybeUninit` needs no initialization.
    unsafe { buffer.set_len(buffer.capacity()) };
    loop {
        match crate::sysread::read_uninit(file, &mut buffer)? {
            0 => break,
            // SAFETY: the read initialized the first `got` bytes.
            got => hasher
                .update(unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), got) }),
        }
    }
    Ok(hasher.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `hashlib.new(name, b'abc').hexdigest()` and `hashlib.new(name).hexdigest()`.
    const VECTORS: [(&str, &str, &str); 14] = [
        ("md5", "900150983cd24fb0d6963f7d28e17f72", "d41d8cd98f00b204e9800998ecf8427e"),
        ("sha1", "a9993e364706816aba3e25717850c26c9cd0d89d", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (
            "sha224",
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f",
        ),
        (
            "sha256",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "sha384",
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
        ),
        (
            "sha512",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        ),
        (
            "sha512_224",
            "4634270f707b6a54daae7530460842e20e37ed265ceee9a43e8924aa",
            "6ed0dd02806fa89e25de060c19d3ac86cabb87d6a0ddd05c333b84f4",
        ),
        (
            "sha512_256",
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23",
            "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a",
        ),
        (
            "sha3_224",
            "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf",
            "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7",
        ),
        (
            "sha3_256",
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
        ),
        (
            "sha3_384",
            "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
            "0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004",
        ),
        (
            "sha3_512",
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
            "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a615b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26",
        ),
        (
            "blake2b",
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
            "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce",
        ),
        (
            "blake2s",
            "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982",
            "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9",
        ),
    ];

    #[test]
    fn known_vectors() {
        for (name, abc, empty) in VECTORS {
            let algorithm = HashAlgorithm::from_canonical_name(name).unwrap();
            assert_eq!(algorithm.canonical_name(), name);
            assert_eq!(hex(&algorithm.digest_bytes(b"abc")), abc, "{name}('abc')");
            assert_eq!(hex(&algorithm.digest_bytes(b"")), empty, "{name}('')");
            assert_eq!(algorithm.digest_bytes(b"").len(), algorithm.digest_size());
        }
    }

    #[test]
    fn every_algorithm_has_a_vector() {
        assert_eq!(VECTORS.len(), HashAlgorithm::ALL.len());
    }

    #[test]
    fn only_canonical_names_are_known() {
        for name in [
            "SHA256",
            "sha-256",
            "sha3-256",
            "SHA3_256",
            "BLAKE2B",
            "shake_128",
            "",
        ] {
            assert_eq!(HashAlgorithm::from_canonical_name(name), None, "{name}");
        }
    }

    #[test]
    fn input_longer_than_one_read_is_streamed() {
        // sha256 of one million 'a' (FIPS 180-2 test vector).
        let input = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&HashAlgorithm::Sha256
                .digest_reader(input.as_slice())
                .unwrap()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn read_errors_are_returned() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        let err = HashAlgorithm::Md5.digest_reader(Failing).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
    }

    #[test]
    fn a_file_hashes_as_its_bytes_whatever_the_size_hint() {
        let dir = tempfile::tempdir().unwrap();
        // Debug builds hash slowly: a few sizes around a page and the buffer.
        for size in [0usize, 1, 4096, 4097, READ_SIZE + 7] {
            let content: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &content).unwrap();
            for algorithm in HashAlgorithm::ALL {
                let expected = algorithm.digest_bytes(&content);
                // The right size, none, and a wrong one (the file changed
                // after `fstat`): the hint sizes the buffer, never the answer.
                for hint in [Some(size as u64), None, Some(0), Some(3)] {
                    let file = File::open(&path).unwrap();
                    assert_eq!(
                        algorithm.digest_file(&file, hint).unwrap(),
                        expected,
                        "{algorithm:?} {size} {hint:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_buffer_holds_a_small_file_and_one_byte_more() {
        assert_eq!(file_buffer_size(Some(1024)), 4096);
        assert_eq!(file_buffer_size(Some(10_000)), 10_001);
        assert_eq!(file_buffer_size(Some(1 << 30)), READ_SIZE);
        assert_eq!(file_buffer_size(Some(u64::MAX)), READ_SIZE);
        assert_eq!(file_buffer_size(None), READ_SIZE);
    }
}
