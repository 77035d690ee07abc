"""The state on disk: promptform.lock (its shards: reading, writing, merging, converting the single
file of version 1), outputs and their drift, the render cache, the apply lock and the .promptform/
directory.

Imports manifests and core, never the engine that decides what to change.
"""
