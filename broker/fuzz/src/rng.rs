//! A small deterministic PRNG (SplitMix64), so a run is reproducible from its seed and every
//! case from `(seed, case index)` alone, with no dependency whose stream could change.

/// Deterministic random numbers; never used for anything secret.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for one fuzz case: the same `(seed, case)` always yields the same stream.
    pub fn for_case(seed: u64, case: u64) -> Rng {
        let mut rng = Rng {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        };
        let mixed = rng.next_u64() ^ case.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng { state: mixed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.next_u64() % 100 < u64::from(percent)
    }

    /// One element of a non-empty slice (None when empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// Between `min` and `min + spread - 1` random bytes.
    pub fn bytes_between(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let n = min + self.below(spread);
        self.bytes(n)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_same_seed_and_case_give_the_same_stream() {
        let a: Vec<u64> = {
            let mut r = Rng::for_case(7, 3);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::for_case(7, 3);
        assert_eq!(a, (0..5).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(a[0], Rng::for_case(7, 4).next_u64());
        assert_ne!(a[0], Rng::for_case(8, 3).next_u64());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::for_case(1, 1);
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert_eq!(r.below(0), 0);
    }
}
