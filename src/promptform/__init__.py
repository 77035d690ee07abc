"""promptform: Terraform-style plan/apply for image prompts kept in git."""

__version__ = "0.1.0"
