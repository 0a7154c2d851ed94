"""CDKTF constructs of the project and pipeline stacks, one per concern."""
