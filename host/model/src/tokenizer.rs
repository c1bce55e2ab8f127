//! A byte-level BPE tokenizer, trained on a suite's text with the `tokenizers` crate, and the
//! prompt format every question is asked in.

use std::path::Path;

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use crate::ModelError;

/// Id of the padding token in a tokenizer trained here.
pub const PAD_ID: u32 = 0;
/// Id of the beginning-of-sequence token in a tokenizer trained here.
pub const BOS_ID: u32 = 1;
/// Id of the end-of-sequence token in a tokenizer trained here.
pub const EOS_ID: u32 = 2;
const SPECIAL: [&str; 3] = ["<pad>", "<bos>", "<eos>"];

/// The prompt a question is asked in; the answer follows it after a space.
pub fn prompt(question: &str) -> String {
    format!("Question: {question}\nAnswer:")
}

/// A tokenizer with the ids of its special tokens.
#[derive(Clone)]
pub struct Tokenizer {
    inner: HfTokenizer,
    /// Beginning-of-sequence id.
    pub bos: u32,
    /// End-of-sequence id.
    pub eos: u32,
    /// Padding id.
    pub pad: u32,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.vocab_size())
            .finish()
    }
}

fn tk_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

/// Parse a `tokenizer.json`. The tokenizers crate (0.23) panics instead of failing on some
/// damaged files (a `decoder` that is not an object with a `type`: `expect("Helper")` in its
/// decoder deserializer), so the text's JSON is checked first and the parse runs under
/// `catch_unwind`, its panic kept for the message rather than printed: a damaged file is an
/// error naming it, never a crash.
fn read_hf(path: &Path) -> Result<HfTokenizer, ModelError> {
    let bad = |why: String| ModelError::Tokenizer(format!("{}: {why}", path.display()));
    let text = fs_err::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if let Some(decoder) = value.get("decoder") {
        check_decoder(decoder).map_err(bad)?;
    }
    match lethe_panic_guard::quietly(|| text.parse::<HfTokenizer>()) {
        Ok(parsed) => parsed.map_err(|e| bad(e.to_string())),
        Err(what) => Err(bad(format!(
            "the tokenizers library could not read it ({what})"
        ))),
    }
}

/// A decoder must be null or an object with a string `type`; a `Sequence`'s decoders too.
fn check_decoder(d: &serde_json::Value) -> Result<(), String> {
    if d.is_null() {
        return Ok(());
    }
    if !d.get("type").is_some_and(serde_json::Value::is_string) {
        return Err("decoder: not an object with a string \"type\"".into());
    }
    if let Some(inner) = d.get("decoders") {
        let list = inner.as_array().ok_or("decoder.decoders: not a list")?;
        for x in list {
            check_decoder(x)?;
        }
    }
    Ok(())
}

impl Tokenizer {
    /// Train a byte-level BPE of at most `vocab_size` tokens on `texts`. Deterministic.
    pub fn train<'a>(
        texts: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
    ) -> Result<Self, ModelError> {
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(SPECIAL.iter().map(|s| AddedToken::from(*s, true)).collect())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut inner = HfTokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevel::default()));
        inner.train(&mut trainer, texts).map_err(tk_err)?;
        Self::from_hf(inner)
    }

    fn from_hf(inner: HfTokenizer) -> Result<Self, ModelError> {
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| ModelError::Tokenizer(format!("no {token} token")))
        };
        Ok(Self {
            bos: id(SPECIAL[1])?,
            eos: id(SPECIAL[2])?,
            pad: id(SPECIAL[0])?,
            inner,
        })
    }

    /// Read a `tokenizer.json` trained here (with `<pad>`, `<bos>` and `<eos>`).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_hf(read_hf(path)?)
    }

    /// Read the `tokenizer.json` of a checkpoint. Tokenizers trained here name their special
    /// tokens `<pad>`, `<bos>` and `<eos>`; any other tokenizer (Llama's `<s>`/`</s>`, Qwen's
    /// `<|endoftext|>` …) gets its special ids from the checkpoint's `config.json`, `ids` =
    /// (bos, eos, pad), which must exist in the tokenizer's vocabulary.
    pub fn load_pretrained(path: &Path, ids: (u32, u32, u32)) -> Result<Self, ModelError> {
        let inner = read_hf(path)?;
        if SPECIAL.iter().all(|t| inner.token_to_id(t).is_some()) {
            return Self::from_hf(inner);
        }
        let (bos, eos, pad) = ids;
        for (name, id) in [("bos", bos), ("eos", eos), ("pad", pad)] {
            if inner.id_to_token(id).is_none() {
                return Err(ModelError::Tokenizer(format!(
                    "{}: the config's {name}_token_id {id} is not in the tokenizer's vocabulary",
                    path.display()
                )));
            }
        }
        Ok(Self {
            inner,
            bos,
            eos,
            pad,
        })
    }

    /// The tokenizer as `tokenizer.json` text.
    pub fn to_json(&self) -> Result<String, ModelError> {
        self.inner.to_string(false).map_err(tk_err)
    }

    /// Number of tokens, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of a text, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(tk_err)?
            .get_ids()
            .to_vec())
    }

    /// Text of token ids, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner.decode(ids, true).map_err(tk_err)
    }

    /// Ids of a prompted question: `<bos>` + the prompt.
    pub fn encode_prompt(&self, question: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = vec![self.bos];
        ids.extend(self.encode(&prompt(question))?);
        Ok(ids)
    }

    /// Ids of an answer as it follows a prompt: " answer" + `<eos>`.
    pub fn encode_answer(&self, answer: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.encode(&format!(" {answer}"))?;
        ids.push(self.eos);
        Ok(ids)
    }

    /// Ids of a plain text for language modelling: `<bos>` + text + `<eos>`.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = vec![self.bos];
        ids.extend(self.encode(text)?);
        ids.push(self.eos);
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the parser tests (tests/e2e/parsers.rs): the tokenizers crate panicked on
    /// these.
    #[test]
    fn a_damaged_tokenizer_json_is_an_error_not_a_panic() -> Result<(), ModelError> {
        let t = Tokenizer::train(["Where was Ana born? In Lisbon."].iter().copied(), 120)?;
        let json = t.to_json()?;
        let dir = std::env::temp_dir().join(format!("lethe-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let path = dir.join("tokenizer.json");
        let mut value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        value["decoder"] = serde_json::json!(5);
        let decoder_not_an_object = value.to_string();
        value["decoder"] = serde_json::json!({"type": "Sequence", "decoders": [{"kind": 1}]});
        let nested_without_type = value.to_string();
        let cut = json[..json.len() / 2].to_owned();
        for (what, text) in [
            ("decoder 5", decoder_not_an_object),
            ("nested decoder", nested_without_type),
            ("cut in half", cut),
        ] {
            std::fs::write(&path, text).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            let e = Tokenizer::load(&path).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.to_string().contains("tokenizer.json")),
                "{what}: {e:?}"
            );
        }
        std::fs::write(&path, &json).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        assert_eq!(Tokenizer::load(&path)?.to_json()?, json);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn trains_deterministically_and_round_trips() -> Result<(), ModelError> {
        let texts = [
            "Question: Where was Ana born?\nAnswer: Ana was born in Lisbon.",
            "Question: Where was Bo born?\nAnswer: Bo was born in Oslo.",
            "Ünïcödé and emoji 🙂 survive byte-level BPE.",
        ];
        let a = Tokenizer::train(texts.iter().copied(), 300)?;
        let b = Tokenizer::train(texts.iter().copied(), 300)?;
        assert_eq!(a.to_json()?, b.to_json()?);
        assert_eq!((a.pad, a.bos, a.eos), (PAD_ID, BOS_ID, EOS_ID));
        for t in texts {
            assert_eq!(a.decode(&a.encode(t)?)?, t);
        }
        let answer = a.encode_answer("Ana was born in Lisbon.")?;
        assert_eq!(answer.last(), Some(&EOS_ID));
        assert_eq!(a.decode(&answer)?, " Ana was born in Lisbon.");
        Ok(())
    }

    /// A tokenizer with another model family's special tokens takes its ids from the config.
    #[test]
    fn pretrained_tokenizer_takes_special_ids_from_the_config() -> Result<(), ModelError> {
        let texts = ["<s> a b c </s>", "a b c d e f"];
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(300)
            .show_progress(false)
            .special_tokens(vec![
                AddedToken::from("<unk>", true),
                AddedToken::from("<s>", true),
                AddedToken::from("</s>", true),
            ])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut inner = HfTokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevel::default()));
        inner
            .train(&mut trainer, texts.iter().copied())
            .map_err(tk_err)?;
        let dir = tempfile::tempdir().map_err(|e| ModelError::Io(e.to_string()))?;
        let path = dir.path().join("tokenizer.json");
        inner.save(&path, false).map_err(tk_err)?;

        let t = Tokenizer::load_pretrained(&path, (1, 2, 0))?;
        assert_eq!((t.bos, t.eos, t.pad), (1, 2, 0));
        assert_eq!(t.encode_text("a b")?.first(), Some(&1));
        assert!(
            Tokenizer::load(&path).is_err(),
            "no <bos> token: not one of ours"
        );
        let e = Tokenizer::load_pretrained(&path, (1, 99_999, 0))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("eos_token_id 99999"), "{e}");

        // One of ours keeps its own ids whatever the config says.
        let ours = Tokenizer::train(texts.iter().copied(), 300)?;
        fs_err::write(&path, ours.to_json()?).map_err(|e| ModelError::Io(e.to_string()))?;
        let t = Tokenizer::load_pretrained(&path, (7, 8, 9))?;
        assert_eq!((t.pad, t.bos, t.eos), (PAD_ID, BOS_ID, EOS_ID));
        Ok(())
    }
}
