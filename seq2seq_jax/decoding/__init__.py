"""Model-agnostic search over `step_fn(tokens, carry) -> (logits, carry)`: greedy, beam, sampling."""
