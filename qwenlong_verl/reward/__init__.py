"""Hybrid reward: rule match by data_source family, an OpenAI-compatible LLM judge, DAPO overlong shaping."""
