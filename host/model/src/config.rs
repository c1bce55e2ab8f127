//! The model's shape, read from and written to a Hugging Face `config.json`.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The shape of a Llama-family decoder (Llama, TinyLlama, SmolLM, Mistral, Qwen2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (fewer than query heads: grouped-query attention).
    pub num_key_value_heads: usize,
    /// Epsilon of RMSNorm.
    pub rms_norm_eps: f64,
    /// Base of the rotary embedding's frequencies.
    pub rope_theta: f64,
    /// Longest sequence the rotary table covers.
    pub max_position_embeddings: usize,
    /// Whether the output projection shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections have a bias (Qwen2).
    pub attention_bias: bool,
    /// Beginning-of-sequence token.
    pub bos_token_id: u32,
    /// End-of-sequence token.
    pub eos_token_id: u32,
    /// Padding token (for batches; never attended to).
    pub pad_token_id: u32,
    /// The architecture name written to `config.json` ("LlamaForCausalLM", "Qwen2ForCausalLM").
    #[serde(skip)]
    pub architecture: String,
}

impl Config {
    /// The embedded default: small enough to train from scratch on two CPU cores in minutes.
    pub fn small(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            hidden_size: 128,
            intermediate_size: 352,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: 4,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 256,
            tie_word_embeddings: false,
            attention_bias: false,
            bos_token_id: crate::tokenizer::BOS_ID,
            eos_token_id: crate::tokenizer::EOS_ID,
            pad_token_id: crate::tokenizer::PAD_ID,
            architecture: "LlamaForCausalLM".to_owned(),
        }
    }

    /// A very small shape for tests: trains in seconds.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            hidden_size: 64,
            intermediate_size: 176,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            ..Self::small(vocab_size)
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Check that the shape is consistent.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!("head dimension {} is odd", self.head_dim()));
        }
        for (name, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if id as usize >= self.vocab_size {
                return bad(format!(
                    "{name} {id} is outside the vocabulary ({})",
                    self.vocab_size
                ));
            }
        }
        if self.vocab_size == 0 || self.num_hidden_layers == 0 || self.intermediate_size == 0 {
            return bad(
                "vocab_size, num_hidden_layers and intermediate_size must be positive".into(),
            );
        }
        Ok(())
    }

    /// Parse a Hugging Face `config.json` (both `rope_theta` at top level and transformers 5's
    /// `rope_parameters.rope_theta`).
    pub fn from_hf_json(text: &str) -> Result<Self, ModelError> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| ModelError::Config(e.to_string()))?;
        let architecture = raw
            .architectures
            .as_ref()
            .and_then(|a| a.first().cloned())
            .unwrap_or_else(|| "LlamaForCausalLM".to_owned());
        let qwen = architecture.starts_with("Qwen2") || raw.model_type.as_deref() == Some("qwen2");
        let rope_theta = raw
            .rope_theta
            .or_else(|| raw.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(10_000.0);
        let cfg = Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            attention_bias: raw.attention_bias.unwrap_or(qwen),
            bos_token_id: raw.bos_token_id.and_then(TokenIds::first).unwrap_or(1),
            eos_token_id: raw.eos_token_id.and_then(TokenIds::first).unwrap_or(2),
            pad_token_id: raw.pad_token_id.unwrap_or(0),
            architecture,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Serialise as a Hugging Face `config.json` that transformers can load.
    pub fn to_hf_json(&self) -> String {
        let value = serde_json::json!({
            "architectures": [self.architecture],
            "model_type": if self.architecture.starts_with("Qwen2") { "qwen2" } else { "llama" },
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
            "hidden_act": "silu",
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "torch_dtype": "float32",
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    bos_token_id: Option<TokenIds>,
    eos_token_id: Option<TokenIds>,
    pad_token_id: Option<u32>,
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
}

/// `eos_token_id` is a number or a list in the wild.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    fn first(self) -> Option<u32> {
        match self {
            Self::One(id) => Some(id),
            Self::Many(ids) => ids.first().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_rope_styles() -> Result<(), ModelError> {
        let top = r#"{"vocab_size":512,"hidden_size":128,"intermediate_size":256,
            "num_hidden_layers":2,"num_attention_heads":4,"rope_theta":500000.0}"#;
        let nested = r#"{"vocab_size":512,"hidden_size":128,"intermediate_size":256,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
            "rope_parameters":{"rope_theta":500000.0,"rope_type":"default"}}"#;
        assert_eq!(Config::from_hf_json(top)?.rope_theta, 500000.0);
        let cfg = Config::from_hf_json(nested)?;
        assert_eq!(cfg.rope_theta, 500000.0);
        assert_eq!(cfg.num_key_value_heads, 2);
        Ok(())
    }

    #[test]
    fn round_trips_through_hf_json() -> Result<(), ModelError> {
        let cfg = Config::tiny(300);
        assert_eq!(Config::from_hf_json(&cfg.to_hf_json())?, cfg);
        Ok(())
    }

    #[test]
    fn rejects_inconsistent_heads() {
        let cfg = Config {
            num_key_value_heads: 3,
            ..Config::tiny(300)
        };
        assert!(cfg.validate().is_err());
    }
}
