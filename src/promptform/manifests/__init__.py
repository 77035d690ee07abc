"""What the manifests declare: reading YAML documents, the manifest model, sandboxed Jinja rendering,
and expanding manifests into targets (the exact requests to send).

Imports only promptform.core.
"""
