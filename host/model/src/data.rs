//! Tokenised sequences and padded batches.

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
    /// A question and its answer: the loss covers the answer and `<eos>` only.
    pub fn qa(tokenizer: &Tokenizer, question: &str, answer: &str) -> Result<Self, ModelError> {
        let mut ids = tokenizer.encode_prompt(question)?;
        let loss_from = ids.len();
        ids.extend(tokenizer.encode_answer(answer)?);
        Ok(Self { ids, loss_from })
    }

    /// Plain text: the loss covers every token after `<bos>`.
    pub fn text(tokenizer: &Tokenizer, text: &str) -> Result<Self, ModelError> {
        Ok(Self {
            ids: tokenizer.encode_text(text)?,
            loss_from: 1,
        })
    }

    /// Cut to at most `max_len` tokens, keeping the start.
    pub fn truncated(mut self, max_len: usize) -> Self {
        self.ids.truncate(max_len.max(2));
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
    use super::*;

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
