//! A small deterministic generator for the oracle tests' random inputs
//! (xorshift64: repeatable from its seed, no dependency).

/// Xorshift64 from a nonzero seed.
pub(crate) struct TestRng(u64);

impl TestRng {
    /// A generator from `seed` (a zero seed would stay zero: it is made one).
    pub(crate) fn new(seed: u64) -> TestRng {
        TestRng(seed.max(1))
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
