//! The LMS method (Cole's Box-Cox power, median, coefficient of variation) by which the WHO 2006
//! Child Growth Standards are published, and WHO's restricted application of it beyond ±3 SD.

/// Box-Cox power `l`, median `m` and coefficient of variation `s` at one age or length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lms {
    pub l: f64,
    pub m: f64,
    pub s: f64,
}

impl Lms {
    /// The z-score of measurement `y`: ((y/M)^L − 1) / (L·S), or ln(y/M)/S when L = 0.
    pub fn z(&self, y: f64) -> f64 {
        if self.l == 0.0 {
            (y / self.m).ln() / self.s
        } else {
            ((y / self.m).powf(self.l) - 1.0) / (self.l * self.s)
        }
    }

    /// The measurement whose z-score is `z` (the inverse of [`Lms::z`]).
    pub fn centile(&self, z: f64) -> f64 {
        if self.l == 0.0 {
            self.m * (self.s * z).exp()
        } else {
            self.m * (1.0 + self.l * self.s * z).powf(1.0 / self.l)
        }
    }

    /// The z-score with WHO's restriction for skewed (weight-based) indicators.
    ///
    /// The fitted LMS curves are not trusted in their tails, so beyond ±3 SD WHO measures the
    /// distance from the ±3 SD centile in units of the gap between the 2 and 3 SD centiles
    /// ("SD23"): z = 3 + (y − SD3)/(SD3 − SD2), and symmetrically below −3. Within ±3 SD it is
    /// the plain LMS z-score, so the result is continuous at ±3.
    pub fn restricted_z(&self, y: f64) -> f64 {
        let z = self.z(y);
        if z > 3.0 {
            let sd3 = self.centile(3.0);
            3.0 + (y - sd3) / (sd3 - self.centile(2.0))
        } else if z < -3.0 {
            let sd3 = self.centile(-3.0);
            -3.0 + (y - sd3) / (self.centile(-2.0) - sd3)
        } else {
            z
        }
    }

    /// Linear interpolation between `self` (at fraction 0) and `next` (at fraction 1), each of
    /// L, M and S separately, as WHO's software does between two tabulated lengths.
    pub fn lerp(&self, next: &Lms, fraction: f64) -> Lms {
        let mix = |a: f64, b: f64| a + fraction * (b - a);
        Lms {
            l: mix(self.l, next.l),
            m: mix(self.m, next.m),
            s: mix(self.s, next.s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lms;

    // Boys' weight-for-age at birth, WHO 2006.
    const WFA_BOY_BIRTH: Lms = Lms {
        l: 0.3487,
        m: 3.3464,
        s: 0.14602,
    };

    #[test]
    fn median_has_z_zero_and_centile_inverts_z() {
        assert!(WFA_BOY_BIRTH.z(3.3464).abs() < 1e-12);
        for z in [-2.5, -1.0, 0.5, 2.9] {
            let y = WFA_BOY_BIRTH.centile(z);
            assert!((WFA_BOY_BIRTH.z(y) - z).abs() < 1e-9, "z {z}");
        }
    }

    #[test]
    fn zero_power_uses_the_log_form() {
        let lms = Lms {
            l: 0.0,
            m: 10.0,
            s: 0.1,
        };
        assert!((lms.z(10.0 * 0.2f64.exp()) - 2.0).abs() < 1e-12);
        assert!((lms.centile(-1.5) - 10.0 * (-0.15f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn restricted_rule_measures_beyond_three_sd_in_sd23_units() {
        let lms = WFA_BOY_BIRTH;
        // Hand-computed from the published formula, independent of `centile`.
        let at = |k: f64| 3.3464 * (1.0 + 0.3487 * 0.14602 * k).powf(1.0 / 0.3487);
        let (sd2, sd3) = (at(2.0), at(3.0));
        let y = sd3 + 1.5 * (sd3 - sd2);
        assert!((lms.restricted_z(y) - 4.5).abs() < 1e-9);
        // The unrestricted curve says something else out there: the rule matters.
        assert!((lms.z(y) - 4.5).abs() > 0.05);

        let (sdm2, sdm3) = (at(-2.0), at(-3.0));
        let y = sdm3 - 0.5 * (sdm2 - sdm3);
        assert!((lms.restricted_z(y) + 3.5).abs() < 1e-9);
        assert!((lms.z(y) + 3.5).abs() > 0.01);

        // Inside ±3 SD nothing changes, and the rule is continuous at the boundary.
        assert_eq!(lms.restricted_z(at(1.7)), lms.z(at(1.7)));
        assert!((lms.restricted_z(sd3 + 1e-9) - 3.0).abs() < 1e-6);
        assert!((lms.restricted_z(sdm3 - 1e-9) + 3.0).abs() < 1e-6);
    }

    #[test]
    fn lerp_mixes_each_parameter() {
        let a = Lms {
            l: -0.4,
            m: 8.0,
            s: 0.08,
        };
        let b = Lms {
            l: -0.2,
            m: 9.0,
            s: 0.10,
        };
        let mid = a.lerp(&b, 0.25);
        assert!((mid.l + 0.35).abs() < 1e-12);
        assert!((mid.m - 8.25).abs() < 1e-12);
        assert!((mid.s - 0.085).abs() < 1e-12);
        assert_eq!(a.lerp(&b, 0.0), a);
    }
}
