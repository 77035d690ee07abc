"""Builders and fakes shared by the tests of every layer: one place, imported explicitly."""
