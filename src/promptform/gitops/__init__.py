"""The git and GitHub side: the local repository, the GitHub API client, the approval gate and
publishing apply results (commit and push).

Imports state and below.
"""
