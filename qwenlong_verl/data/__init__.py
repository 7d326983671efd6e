"""Data tools: a local tiny Qwen2 model builder, synthetic long-context DocQA, dataset preparation."""
