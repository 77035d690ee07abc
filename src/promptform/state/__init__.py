"""The state on disk: promptform.lock (reading, writing, merging), outputs and their drift, the
render cache, the apply lock and the .promptform/ directory.

Imports manifests and core, never the engine that decides what to change.
"""
