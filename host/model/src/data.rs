//! Tokenised sequences and padded batches.
//!
//! A sequence longer than the model's context is cut by [`Sequence::truncated`]: a question
//! and answer loses the oldest tokens of its prompt, so the answer (what the loss learns) and
//! its `<eos>` survive; plain text keeps its start.

use candle_core::{Device, Tensor};

use crate::{ModelError, Tokenizer};

/// A token sequence and where its loss starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// The tokens, `<bos>` first.
    pub ids: Vec<u32>,
    /// Index of the first token that is predicted in the loss (the first answer token; 1 for
    /// plain text, so that everything after `<bos>` is learned).
    pub loss_from: usize,
}

impl Sequence {
    /// A question and its answer: the loss covers the answer and `<eos>` only. An answer
    /// with no text is refused ([`ModelError::EmptyAnswer`]): there would be nothing to learn
    /// but `<eos>`, and a batch of such rows has an empty loss.
    pub fn qa(tokenizer: &Tokenizer, question: &str, answer: &str) -> Result<Self, ModelError> {
        if answer.trim().is_empty() {
            return Err(ModelError::EmptyAnswer {
                question: question.to_owned(),
            });
        }
        let mut ids = tokenizer.encode_prompt(question)?;
        let loss_from = ids.len();
        ids.extend(tokenizer.encode_answer(answer)?);
        Ok(Self { ids, loss_from })
    }

    /// A question and its answer cut to a context of `max_len` tokens
    /// ([`Sequence::qa`], then [`Sequence::truncated`]): what every training feed of
    /// questions uses, the model's `max_position_embeddings` being the limit.
    pub fn qa_within(
        tokenizer: &Tokenizer,
        question: &str,
        answer: &str,
        max_len: usize,
    ) -> Result<Self, ModelError> {
        Ok(Self::qa(tokenizer, question, answer)?.truncated(max_len))
    }

    /// Plain text: the loss covers every token after `<bos>`.
    pub fn text(tokenizer: &Tokenizer, text: &str) -> Result<Self, ModelError> {
        Ok(Self {
            ids: tokenizer.encode_text(text)?,
            loss_from: 1,
        })
    }

    /// Cut to at most `max_len` tokens.
    ///
    /// - Plain text (`loss_from` ≤ 1) keeps its start: `<bos>` and the first `max_len − 1`
    ///   tokens (at least 2 tokens are kept).
    /// - A prompt and answer (`loss_from` ≥ 2) keeps `<bos>`, drops the oldest prompt tokens and
    ///   keeps the whole answer with its `<eos>`, so the loss sees every answer token; the end of
    ///   a prompt holds the question and "Answer:". When the answer alone does not fit (it needs
    ///   `max_len − 2` tokens or fewer), the result is `<bos>` + the last prompt token + the
    ///   answer's first `max_len − 2` tokens: the answer loses its end and `<eos>`, and at
    ///   least 3 tokens are kept. `loss_from` moves with the prompt's cut.
    pub fn truncated(mut self, max_len: usize) -> Self {
        if self.ids.len() <= max_len {
            return self;
        }
        if self.loss_from <= 1 {
            self.ids.truncate(max_len.max(2));
            return self;
        }
        let max_len = max_len.max(3);
        let prompt_end = self.loss_from.min(self.ids.len());
        let answer_len = self.ids.len() - prompt_end;
        // Prompt tokens after <bos> that fit beside the whole answer; at least the last one.
        let keep_prompt = max_len.saturating_sub(1 + answer_len).max(1);
        let drop_from = 1;
        let drop_to = prompt_end - keep_prompt.min(prompt_end - 1);
        self.ids.drain(drop_from..drop_to);
        self.loss_from = prompt_end - (drop_to - drop_from);
        self.ids.truncate(max_len);
        self
    }

    /// Number of tokens predicted in the loss.
    pub fn loss_tokens(&self) -> usize {
        self.ids.len().saturating_sub(self.loss_from.max(1))
    }
}

/// A right-padded batch for teacher forcing.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// Inputs, `[B, T]` u32: each sequence without its last token.
    pub input: Tensor,
    /// Targets, `[B, T]` u32: each sequence without its first token (padding where masked).
    pub labels: Tensor,
    /// 1.0 where the target is in the loss, `[B, T]` f32.
    pub mask: Tensor,
    /// The same mask as plain data, row by row.
    pub mask_rows: Vec<Vec<bool>>,
}

impl TokenBatch {
    /// Pad sequences on the right into one batch.
    pub fn collate(seqs: &[&Sequence], pad: u32, device: &Device) -> Result<Self, ModelError> {
        let b = seqs.len();
        let t = seqs
            .iter()
            .map(|s| s.ids.len().saturating_sub(1))
            .max()
            .unwrap_or(0)
            .max(1);
        let mut input = vec![pad; b * t];
        let mut labels = vec![pad; b * t];
        let mut mask = vec![0f32; b * t];
        let mut mask_rows = Vec::with_capacity(b);
        for (row, s) in seqs.iter().enumerate() {
            let mut bits = vec![false; t];
            for pos in 0..s.ids.len().saturating_sub(1) {
                input[row * t + pos] = s.ids[pos];
                labels[row * t + pos] = s.ids[pos + 1];
                if pos + 1 >= s.loss_from.max(1) {
                    mask[row * t + pos] = 1.0;
                    bits[pos] = true;
                }
            }
            mask_rows.push(bits);
        }
        Ok(Self {
            input: Tensor::from_vec(input, (b, t), device)?,
            labels: Tensor::from_vec(labels, (b, t), device)?,
            mask: Tensor::from_vec(mask, (b, t), device)?,
            mask_rows,
        })
    }

    /// Batch size.
    pub fn len(&self) -> usize {
        self.mask_rows.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.mask_rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `<bos>` = 1, prompt 100…, answer 200…, `<eos>` = 2.
    fn long_qa(prompt: usize, answer: usize) -> Sequence {
        let mut ids = vec![1];
        ids.extend((0..prompt as u32).map(|i| 100 + i));
        let loss_from = ids.len();
        ids.extend((0..answer as u32).map(|i| 200 + i));
        ids.push(2);
        Sequence { ids, loss_from }
    }

    #[test]
    fn a_prompt_longer_than_the_context_loses_its_start_not_the_answer() {
        // 1 + 40 prompt + 5 answer + <eos> = 47 tokens into a context of 16.
        let s = long_qa(40, 5).truncated(16);
        let mut want = vec![1];
        want.extend(131..140); // the last 9 prompt tokens: 1 + 9 + 5 + 1 = 16
        want.extend(200..205);
        want.push(2);
        assert_eq!(s.ids, want);
        assert_eq!(s.loss_from, 10);
        assert_eq!(s.loss_tokens(), 6, "the whole answer and <eos>");
        let batch = TokenBatch::collate(&[&s], 0, &Device::Cpu).unwrap();
        let masked: Vec<u32> = batch.labels.to_vec2::<u32>().unwrap()[0]
            .iter()
            .zip(&batch.mask_rows[0])
            .filter(|(_, on)| **on)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(masked, vec![200, 201, 202, 203, 204, 2]);
    }

    #[test]
    fn an_answer_longer_than_the_context_keeps_its_start_after_the_last_prompt_token() {
        let s = long_qa(40, 30).truncated(16);
        let mut want = vec![1, 139];
        want.extend(200..214);
        assert_eq!(s.ids, want);
        assert_eq!(s.loss_from, 2);
        assert_eq!(s.loss_tokens(), 14);
    }

    #[test]
    fn short_sequences_and_plain_text_keep_their_start() {
        let s = long_qa(4, 3);
        assert_eq!(s.clone().truncated(9), s);
        let text = Sequence {
            ids: (0..20).collect(),
            loss_from: 1,
        };
        assert_eq!(text.truncated(5).ids, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn an_answer_with_no_text_is_refused_naming_the_question() {
        let texts = ["Question: Where was Ana born?\nAnswer: Lisbon."];
        let tok = Tokenizer::train(texts.into_iter(), 120).unwrap();
        let e = Sequence::qa(&tok, "Where was Ana born?", "  ").unwrap_err();
        assert!(matches!(e, ModelError::EmptyAnswer { .. }), "{e}");
        assert!(e.to_string().contains("Where was Ana born?"), "{e}");
    }

    #[test]
    fn masks_only_predicted_answer_tokens() -> Result<(), ModelError> {
        let a = Sequence {
            ids: vec![1, 10, 11, 20, 21, 2],
            loss_from: 3,
        };
        let b = Sequence {
            ids: vec![1, 12, 22, 2],
            loss_from: 2,
        };
        let batch = TokenBatch::collate(&[&a, &b], 0, &Device::Cpu)?;
        assert_eq!(
            batch.input.to_vec2::<u32>()?,
            vec![vec![1, 10, 11, 20, 21], vec![1, 12, 22, 0, 0]]
        );
        assert_eq!(
            batch.labels.to_vec2::<u32>()?,
            vec![vec![10, 11, 20, 21, 2], vec![12, 22, 2, 0, 0]]
        );
        assert_eq!(
            batch.mask.to_vec2::<f32>()?,
            vec![vec![0., 0., 1., 1., 1.], vec![0., 1., 1., 0., 0.]]
        );
        assert_eq!(a.loss_tokens(), 3);
        Ok(())
    }
}
