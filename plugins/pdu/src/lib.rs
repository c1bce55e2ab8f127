//! PDU (Entesari et al., 2025, "Constrained Entropic Unlearning: A Primal-Dual Framework"):
//! unlearning as a constrained problem — flatten the forget logits while the retain loss stays
//! under a bound ε. The forget term is the squared gap between the largest and the mean logit
//! at each answer position, `L_forget = mean_t (max_k z_t,k − mean_k z_t,k)²`; the retain term
//! is the answer NLL; the step minimises `L_forget + λ·L_retain` and the retain weight follows
//! dual ascent, `λ ← max(0, λ + η·(L_retain − ε))`, after every step.
//!
//! ε has no default: it is the utility a user is willing to give up, in retain NLL nats.

use lethe_plugin_sdk::losses;
use lethe_plugin_sdk::prelude::*;

fn one() -> f64 {
    1.0
}

/// PDU's knobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The bound ε on the retain NLL (required).
    #[schemars(range(min = 0.0))]
    pub epsilon: f64,
    /// The dual step size η.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub eta: f64,
    /// The retain weight λ at the first step.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub lambda_init: f64,
}

/// The PDU method.
pub struct Pdu;

/// `mean_t (max_k z_t,k − mean_k z_t,k)²` over a batch's answer positions.
pub fn forget_loss(forget: &Batch) -> Result<Tensor> {
    let logits = forget.logits(Model::Current)?;
    let gap = logits.max_dim(2)?.sub(&logits.mean_dim(2)?)?;
    let mask = forget.answer_mask();
    gap.sqr().mul(&mask)?.sum()?.div(&mask.sum()?)
}

/// One dual-ascent update of the retain weight.
pub fn dual_ascent(lambda: f64, eta: f64, retain_loss: f64, epsilon: f64) -> f64 {
    (lambda + eta * (retain_loss - epsilon)).max(0.0)
}

impl Method for Pdu {
    type Config = Config;
    const NAME: &'static str = "pdu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Flatten forget logits under a bound on the retain NLL, the \
         retain weight set by dual ascent.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        let mut lambda = config.lambda_init;
        while session.steps_left() > 0 {
            let forget = session.next_batch("forget")?;
            let retain = session.next_batch("retain")?;
            let retain_loss = losses::answer_nll(&retain)?;
            // The retain value before the step: the constraint is checked where the primal
            // step was taken, as in a Lagrangian descent-ascent.
            let observed = retain_loss.to_scalar()?;
            let loss = forget_loss(&forget)?.add(&retain_loss.scale(lambda))?;
            session.step(&loss)?;
            lambda = dual_ascent(lambda, config.eta, observed, config.epsilon);
        }
        Ok(())
    }
}

export_method!(Pdu);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn epsilon_is_required_and_the_rest_defaults_to_one() {
        assert!(serde_json::from_str::<Config>("{}").is_err());
        let c: Config = serde_json::from_str(r#"{"epsilon": 0.5}"#).unwrap();
        assert_eq!((c.epsilon, c.eta, c.lambda_init), (0.5, 1.0, 1.0));
        assert!(serde_json::from_str::<Config>(r#"{"epsilon": 1, "rho": 1}"#).is_err());
    }

    #[test]
    fn the_retain_weight_rises_above_the_bound_and_falls_to_zero_below_it() {
        assert_eq!(dual_ascent(1.0, 0.5, 3.0, 1.0), 2.0);
        assert_eq!(dual_ascent(1.0, 0.5, 0.0, 1.0), 0.5);
        assert_eq!(dual_ascent(0.2, 1.0, 0.0, 1.0), 0.0);
    }
}
