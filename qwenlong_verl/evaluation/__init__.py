"""Long-context DocQA evaluation against any OpenAI-compatible server."""
