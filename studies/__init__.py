"""Study code behind one recipe each: the PEFT comparison, MLM pre-training, the before/after table and the
entity-bias mitigation comparison; recipes/ hold only their defaults and one call."""
