//! [`Sampler`]: which requests are traced. The OpenTelemetry samplers by their
//! `OTEL_TRACES_SAMPLER` names, deciding from the trace id alone so that every service using
//! the same ratio keeps the same traces.

use std::fmt;
use std::str::FromStr;

use crate::trace::context::TraceId;

/// A sampling rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// This fraction of traces, chosen by trace id (the SDKs' `TraceIdRatioBased`).
    Ratio(f64),
    /// The caller's decision when the request carried one; `root` for requests that start a
    /// trace (or whose caller deferred the decision).
    ParentBased(Root),
}

/// The rule of a parent-based sampler for requests without a parent decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Root {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// This fraction.
    Ratio(f64),
}

impl Default for Sampler {
    /// `parentbased_always_on`, the OpenTelemetry default.
    fn default() -> Sampler {
        Sampler::ParentBased(Root::AlwaysOn)
    }
}

impl Sampler {
    /// Whether to record the trace `trace_id`, whose caller decided `parent` (`None`: no
    /// caller, or no decision).
    pub fn samples(self, parent: Option<bool>, trace_id: &TraceId) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::Ratio(ratio) => by_ratio(ratio, trace_id),
            Sampler::ParentBased(root) => match (parent, root) {
                (Some(decision), _) => decision,
                (None, Root::AlwaysOn) => true,
                (None, Root::AlwaysOff) => false,
                (None, Root::Ratio(ratio)) => by_ratio(ratio, trace_id),
            },
        }
    }

    /// The sampler named by `OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG` (the ratio of
    /// the ratio samplers; 1.0 when absent, as the spec says).
    ///
    /// # Errors
    ///
    /// An unknown name, or a ratio that is not a number in [0, 1].
    pub fn from_env_values(name: &str, arg: Option<&str>) -> Result<Sampler, SamplerError> {
        let ratio = || -> Result<f64, SamplerError> {
            let Some(arg) = arg.map(str::trim).filter(|a| !a.is_empty()) else {
                return Ok(1.0);
            };
            match arg.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
                _ => Err(SamplerError::Ratio(arg.to_owned())),
            }
        };
        Ok(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::Ratio(ratio()?),
            "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
            "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
            "parentbased_traceidratio" => Sampler::ParentBased(Root::Ratio(ratio()?)),
            other => return Err(SamplerError::Name(other.to_owned())),
        })
    }
}

impl FromStr for Sampler {
    type Err = SamplerError;

    /// `NAME` or `NAME:RATIO`, e.g. `parentbased_traceidratio:0.01`.
    fn from_str(text: &str) -> Result<Sampler, SamplerError> {
        match text.split_once(':') {
            Some((name, arg)) => Sampler::from_env_values(name, Some(arg)),
            None => Sampler::from_env_values(text, None),
        }
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampler::AlwaysOn => f.write_str("always_on"),
            Sampler::AlwaysOff => f.write_str("always_off"),
            Sampler::Ratio(ratio) => write!(f, "traceidratio:{ratio}"),
            Sampler::ParentBased(Root::AlwaysOn) => f.write_str("parentbased_always_on"),
            Sampler::ParentBased(Root::AlwaysOff) => f.write_str("parentbased_always_off"),
            Sampler::ParentBased(Root::Ratio(ratio)) => {
                write!(f, "parentbased_traceidratio:{ratio}")
            }
        }
    }
}

/// A sampler setting that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SamplerError {
    /// Not one of the OpenTelemetry sampler names.
    #[error(
        "unknown sampler {0:?}: expected always_on, always_off, traceidratio, \
         parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
    )]
    Name(String),
    /// Not a ratio.
    #[error("sampler ratio {0:?} is not a number between 0 and 1")]
    Ratio(String),
}

/// The SDKs' `TraceIdRatioBased` rule: the trace id's last 8 bytes, as a 63-bit number, below
/// `ratio` × 2^63.
fn by_ratio(ratio: f64, trace_id: &TraceId) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let value = u64::from_be_bytes(low) >> 1;
    // 2^63 as a float is exact; the bound saturates at u64::MAX for ratios ≥ 1.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    value < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u64) -> TraceId {
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        id[0] = 1;
        id
    }

    #[test]
    fn a_ratio_keeps_about_that_fraction() {
        let sampler = Sampler::Ratio(0.25);
        let kept = (0..10_000u64)
            .filter(|&seed| sampler.samples(None, &id(seed)))
            .count();
        assert!((2_250..2_750).contains(&kept), "{kept}");
        assert!(!Sampler::Ratio(0.0).samples(None, &id(3)));
        assert!(Sampler::Ratio(1.0).samples(None, &id(3)));
    }

    #[test]
    fn parent_based_follows_the_caller() {
        let sampler = Sampler::ParentBased(Root::AlwaysOff);
        assert!(sampler.samples(Some(true), &id(1)));
        assert!(!sampler.samples(None, &id(1)));
        assert!(!Sampler::ParentBased(Root::AlwaysOn).samples(Some(false), &id(1)));
        // Plain ratio ignores the caller.
        assert!(!Sampler::Ratio(0.0).samples(Some(true), &id(1)));
    }

    #[test]
    fn env_names_parse() {
        assert_eq!(
            "parentbased_traceidratio:0.01".parse(),
            Ok(Sampler::ParentBased(Root::Ratio(0.01)))
        );
        assert_eq!(
            Sampler::from_env_values("traceidratio", None),
            Ok(Sampler::Ratio(1.0))
        );
        assert_eq!(
            Sampler::from_env_values("traceidratio", Some("2")),
            Err(SamplerError::Ratio("2".to_owned()))
        );
        assert!(matches!(
            Sampler::from_env_values("jaeger_remote", None),
            Err(SamplerError::Name(_))
        ));
        assert_eq!(Sampler::default().to_string(), "parentbased_always_on");
    }
}
