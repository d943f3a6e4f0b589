"""Study code behind one recipe each (PEFT comparison, MLM pre-training)."""
