"""The engine: load a project, plan what changed against the lockfile, and apply it through a
provider, with pacing and progress.

Imports gitops, state, manifests, providers and core; never review, commands or the CLI.
"""
