//! Representation Misdirection for Unlearning (RMU, Li et al., 2024 — the WMDP paper): push the
//! hidden state of the forget answers at one layer towards a fixed random direction, and keep
//! the retain hidden states where the frozen reference has them:
//!
//! `L = γ·mean_t ‖h_θ,L(t) − c‖²/d on forget + α·mean_t ‖h_θ,L(t) − h_ref,L(t)‖²/d on retain`,
//!
//! where `c = s·u/‖u‖`, `u ~ U[0,1)^d` drawn once per run from the host's seeded generator,
//! `h_·,L(t)` is the output of decoder layer L at a position t that holds an answer token (as
//! SPEC and the peer: the last prompt position, which predicts the first answer token, is
//! out, and the answer's last token, which predicts `<eos>`, is in), `d` is the hidden size and
//! each mean runs over all answer-token positions of the batch. Only the
//! MLP down-projections (the "out" projection of the SwiGLU block) of layers L−2..L are
//! trained.

use lethe_plugin_sdk::prelude::*;

/// RMU's knobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The decoder layer L (0-based) whose output is steered; by default the middle layer,
    /// `num_layers / 2`.
    pub layer: Option<u32>,
    /// Norm s of the random control direction c.
    #[schemars(range(min = 0.0))]
    pub steering_coeff: f64,
    /// Number of layers ending at L whose MLP down-projections are trained (3: L−2, L−1, L).
    #[schemars(range(min = 1))]
    pub trained_layers: u32,
    /// Weight γ of the forget term.
    #[schemars(range(min = 0.0))]
    pub gamma: f64,
    /// Weight α of the retain term.
    #[schemars(range(min = 0.0))]
    pub alpha: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            layer: None,
            steering_coeff: 20.0,
            trained_layers: 3,
            gamma: 1.0,
            alpha: 1.0,
        }
    }
}

/// The RMU method.
pub struct Rmu;

/// The steered layer: the configured one, or the middle of `num_layers`.
pub fn steered_layer(config: &Config, num_layers: u32) -> Result<u32> {
    let layer = config.layer.unwrap_or(num_layers / 2);
    if layer >= num_layers {
        return Err(PluginError::InvalidConfig(format!(
            "layer {layer} does not exist: the model has {num_layers} layers (0..={})",
            num_layers.saturating_sub(1)
        )));
    }
    Ok(layer)
}

/// Parameter prefixes of the trained MLP down-projections: layers
/// `layer − trained_layers + 1 ..= layer`, clipped at layer 0.
pub fn trained_prefixes(layer: u32, trained_layers: u32) -> Vec<String> {
    let first = (layer + 1).saturating_sub(trained_layers.max(1));
    (first..=layer)
        .map(|l| format!("layers.{l}.mlp.down_proj"))
        .collect()
}

/// 1.0 at the positions whose input is an answer token. Position t predicts token t+1, so these
/// are the answer-prediction positions without each answer's first one. `[B, T]`
pub fn answer_token_positions(batch: &Batch) -> Tensor {
    batch.answer_mask_from(1)
}

/// `mean_t ‖a(t) − b(t)‖²/d` over a batch's answer-token positions; `a` is `[B, T, D]`, `b`
/// broadcasts to it.
pub fn masked_mean_sq_dist(a: &Tensor, b: &Tensor, batch: &Batch) -> Result<Tensor> {
    let mask = answer_token_positions(batch);
    a.sub(b)?
        .sqr()
        .mean_dim(2)?
        .mul(&mask)?
        .sum()?
        .div(&mask.sum()?)
}

/// The control direction `c = s·u/‖u‖` for `u ~ U[0,1)^d` from the host's seeded generator.
pub fn control_direction(hidden_size: u32, steering_coeff: f64) -> Result<Tensor> {
    let u = Tensor::uniform(&[hidden_size])?;
    let norm = u.sqr().sum()?.sqrt();
    Ok(u.div(&norm)?.scale(steering_coeff))
}

impl Method for Rmu {
    type Config = Config;
    const NAME: &'static str = "rmu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "Steer forget hidden states at a middle layer to a random \
         direction, keep retain hidden states; trains three MLP down-projections.";
    const SPLITS: &'static [&'static str] = &["forget", "retain"];
    const NEEDS_REFERENCE: bool = true;

    fn unlearn(config: Config, session: &mut Session) -> Result<()> {
        let layer = steered_layer(&config, session.num_layers())?;
        let prefixes = trained_prefixes(layer, config.trained_layers);
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        session.train_only(&refs)?;
        if session.steps_left() == 0 {
            return Ok(());
        }
        // c is drawn once, before any data is touched.
        let control = control_direction(session.hidden_size(), config.steering_coeff)?;
        let mut forget = session.next_batch("forget")?;
        loop {
            let retain = session.next_batch("retain")?;
            let h_forget = forget.hidden_state(Model::Current, layer)?;
            let forget_term = masked_mean_sq_dist(&h_forget, &control, &forget)?;
            let h_retain = retain.hidden_state(Model::Current, layer)?;
            let h_ref = retain.hidden_state(Model::Reference, layer)?;
            let retain_term = masked_mean_sq_dist(&h_retain, &h_ref, &retain)?;
            let loss = forget_term
                .scale(config.gamma)
                .add(&retain_term.scale(config.alpha))?;
            session.step(&loss)?;
            if session.steps_left() == 0 {
                return Ok(());
            }
            forget = session.next_batch("forget")?;
        }
    }
}

export_method!(Rmu);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let c: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(
            (c.steering_coeff, c.trained_layers, c.layer),
            (20.0, 3, None)
        );
        assert!(serde_json::from_str::<Config>(r#"{"steering": 1}"#).is_err());
    }

    #[test]
    fn the_middle_layer_is_steered_and_three_layers_ending_there_are_trained() {
        let c = Config::default();
        assert_eq!(steered_layer(&c, 8).unwrap(), 4);
        assert_eq!(steered_layer(&c, 2).unwrap(), 1);
        assert_eq!(
            trained_prefixes(4, 3),
            [
                "layers.2.mlp.down_proj",
                "layers.3.mlp.down_proj",
                "layers.4.mlp.down_proj"
            ]
        );
        // Near the bottom the window is clipped at layer 0.
        assert_eq!(
            trained_prefixes(1, 3),
            ["layers.0.mlp.down_proj", "layers.1.mlp.down_proj"]
        );
        assert_eq!(trained_prefixes(5, 1), ["layers.5.mlp.down_proj"]);
    }

    #[test]
    fn a_layer_beyond_the_model_is_a_config_error() {
        let c = Config {
            layer: Some(4),
            ..Config::default()
        };
        let e = steered_layer(&c, 4).unwrap_err();
        assert!(
            matches!(&e, PluginError::InvalidConfig(m) if m.contains("layer 4") && m.contains("4 layers")),
            "{e}"
        );
    }
}
