"""Tools for reviewers and designers built on the engine: the report and gallery, previews, adopt,
import-curl, cost and gc.

Imports the engine and below; never commands or the CLI.
"""
