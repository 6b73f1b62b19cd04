//! Small sampling helpers. Answers that should correlate are drawn from one latent normal
//! "wealth" score: each ordinal answer is a cut of `ρ·wealth + noise` at thresholds that
//! reproduce the answer's overall distribution.

use rand::Rng;

/// A standard normal draw (Box–Muller).
pub(crate) fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The standard normal distribution function (Abramowitz and Stegun 7.1.26, error < 1.5e-7).
pub(crate) fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// True with probability `Φ(score)`: a probit link, so a higher score makes `true` likelier.
pub(crate) fn probit<R: Rng>(rng: &mut R, score: f64) -> bool {
    rng.random::<f64>() < phi(score)
}

/// One of `shares.len()` ordered categories: category `i` overall has probability `shares[i]`
/// (when `wealth` is standard normal), and a higher `wealth` moves the draw up with correlation
/// `rho`.
pub(crate) fn ordinal<R: Rng>(rng: &mut R, wealth: f64, rho: f64, shares: &[f64]) -> usize {
    let z = rho * wealth + (1.0 - rho * rho).sqrt() * normal(rng);
    let u = phi(z);
    let total: f64 = shares.iter().sum();
    let mut acc = 0.0;
    for (i, s) in shares.iter().enumerate() {
        acc += s / total;
        if u < acc {
            return i;
        }
    }
    shares.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn phi_is_the_normal_cdf() {
        assert!((phi(0.0) - 0.5).abs() < 1e-6);
        assert!((phi(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((phi(-1.96) - 0.024_997_9).abs() < 1e-6);
    }

    #[test]
    fn ordinal_reproduces_shares_and_follows_wealth() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let shares = [0.2, 0.5, 0.3];
        let mut counts = [0usize; 3];
        let (mut poor, mut rich) = (0usize, 0usize);
        for _ in 0..20_000 {
            let w = normal(&mut rng);
            let c = ordinal(&mut rng, w, 0.7, &shares);
            counts[c] += 1;
            if c == 2 {
                if w > 0.0 {
                    rich += 1
                } else {
                    poor += 1
                }
            }
        }
        for (c, s) in counts.iter().zip(shares) {
            let got = *c as f64 / 20_000.0;
            assert!((got - s).abs() < 0.02, "{got} vs {s}");
        }
        assert!(rich > 3 * poor, "top category: {rich} rich, {poor} poor");
    }
}
