"""The leaves: configuration, errors, atomic writes, hashing, pricing and model rules, images, output.

Nothing here imports another promptform package; everything else may import from here.
"""
