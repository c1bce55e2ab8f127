//! ROC AUC of scores separating two groups.
