//! Template for a third-party Lethe unlearning method.
