"""Model calls. Only llm/client.py imports litellm."""
