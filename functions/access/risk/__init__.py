"""The risk agent: a deterministic score from level, sensitivity, request hour and justification."""
