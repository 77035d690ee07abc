"""Image providers: one small interface (base.py), an OpenAI-compatible HTTP one and an offline one."""
